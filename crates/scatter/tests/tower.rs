//! Leaves from a `tower::Service` (feature `tower`).
#![cfg(feature = "tower")]

use std::time::Duration;

use weft_core::{Count, ErrorClass, ShardId};
use weft_scatter::{Plan, Scatter, ScatterConfig, ServiceLeaf, ShardOutcome, Topology};

#[tokio::test(start_paused = true)]
async fn a_tower_service_serves_as_a_leaf_with_classified_errors() {
    let service = tower::service_fn(|shard: u32| async move {
        if shard == 2 {
            Err::<u32, String>("shard 2 refuses".into())
        } else {
            Ok(shard)
        }
    });
    let leaf = ServiceLeaf::new(service, |_: &String| ErrorClass::Permanent);
    let root = Scatter::new(
        Topology::sharded(4, 1).unwrap(),
        leaf,
        ScatterConfig::new(Duration::from_millis(50)),
    )
    .unwrap();
    let plan = Plan::new((0..4).map(|i| (ShardId::new(i), i)).collect());
    let g = root.gather(plan, &Count::new()).await.unwrap();
    assert_eq!(g.output, 3);
    assert_eq!(
        g.report.shards[2].outcome,
        ShardOutcome::Failed {
            error: "shard 2 refuses".into(),
            class: ErrorClass::Permanent
        }
    );
}
