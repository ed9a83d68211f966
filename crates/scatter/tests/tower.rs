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

#[tokio::test(start_paused = true)]
async fn a_service_per_replica_receives_only_its_replica_s_attempts() {
    // Replica r's client answers r; replica 0 refuses connections, so its
    // shard fails over to replica 1.
    let clients = (0..4usize)
        .map(|r| {
            tower::service_fn(move |_: ()| async move {
                if r == 0 {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                } else {
                    Ok(r)
                }
            })
        })
        .collect();
    let leaf =
        ServiceLeaf::per_replica(clients, |e: &std::io::Error| weft_core::Classify::class(e));
    let topology = Topology::sharded(2, 2).unwrap();
    let root = Scatter::new(
        topology.clone(),
        leaf,
        ScatterConfig::new(Duration::from_millis(50)),
    )
    .unwrap();
    for _ in 0..10 {
        let g = root
            .gather(Plan::broadcast(2, ()), &collect::<usize>())
            .await
            .unwrap();
        assert!(g.report.complete(), "{:?}", g.report);
        for (shard, line) in g.report.shards.iter().enumerate() {
            let ShardOutcome::Answered { replica, .. } = line.outcome else {
                panic!("{line:?}");
            };
            assert!(
                topology
                    .replicas_of(ShardId::new(shard as u32))
                    .contains(&replica)
            );
            assert_ne!(replica, 0, "the refusing replica never answers");
        }
        // Each answer came from the client of the replica that answered.
        let mut answers = g.output.clone();
        answers.sort_unstable();
        let mut replicas: Vec<usize> = g
            .report
            .shards
            .iter()
            .map(|l| match l.outcome {
                ShardOutcome::Answered { replica, .. } => replica,
                _ => usize::MAX,
            })
            .collect();
        replicas.sort_unstable();
        assert_eq!(answers, replicas);
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_replica_service_and_a_service_error_are_kept_and_named() {
    let leaf = ServiceLeaf::per_replica(
        vec![tower::service_fn(|_: ()| async {
            Err::<u32, _>(std::io::Error::other("disk on fire"))
        })],
        |_: &std::io::Error| ErrorClass::Permanent,
    );
    let root = Scatter::new(
        Topology::replicated(1, 2).unwrap(),
        leaf,
        ScatterConfig::new(Duration::from_millis(50)).hedging(weft_scatter::Hedging::off()),
    )
    .unwrap();
    for _ in 0..20 {
        let g = root
            .gather(Plan::broadcast(1, ()), &Count::new())
            .await
            .unwrap();
        let ShardOutcome::Failed { error, class } = &g.report.shards[0].outcome else {
            panic!("{:?}", g.report);
        };
        assert_eq!(*class, ErrorClass::Permanent);
        assert!(
            error == "disk on fire" || error == "no service for replica 1",
            "{error}"
        );
    }
    let err = weft_scatter::Leaf::call(
        &ServiceLeaf::new(
            tower::service_fn(|_: ()| async { Err::<u32, _>(std::io::Error::other("boom")) }),
            |_: &std::io::Error| ErrorClass::Transient,
        ),
        (),
        weft_scatter::LeafContext {
            shard: ShardId::new(0),
            replica: 0,
            attempt: 1,
            hedge: false,
            deadline: tokio::time::Instant::now(),
        },
    )
    .await
    .unwrap_err();
    let source = std::error::Error::source(&err).expect("the service's error is kept");
    assert_eq!(source.to_string(), "boom");
}

#[tokio::test(start_paused = true)]
async fn a_service_with_context_can_target_the_replica_itself() {
    let service = tower::service_fn(|(q, cx): (u32, weft_scatter::LeafContext)| async move {
        Ok::<_, std::io::Error>((q, cx.shard.get(), cx.replica))
    });
    let leaf =
        ServiceLeaf::with_context(service, |e: &std::io::Error| weft_core::Classify::class(e));
    let topology = Topology::sharded(3, 2).unwrap();
    let root = Scatter::new(
        topology.clone(),
        leaf,
        ScatterConfig::new(Duration::from_millis(50)),
    )
    .unwrap();
    let collect = Collect::<(u32, u32, usize)>(std::marker::PhantomData);
    let g = root
        .gather(Plan::broadcast(3, 7u32), &collect)
        .await
        .unwrap();
    assert_eq!(g.output.len(), 3);
    for (q, shard, replica) in g.output {
        assert_eq!(q, 7);
        assert!(topology.replicas_of(ShardId::new(shard)).contains(&replica));
    }
}

/// Collects every answer.
struct Collect<T>(std::marker::PhantomData<T>);

fn collect<T>() -> Collect<T> {
    Collect(std::marker::PhantomData)
}

impl<T> weft_core::Combine for Collect<T> {
    type Input = T;
    type Acc = Vec<T>;
    type Output = Vec<T>;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, input: T) {
        acc.push(input);
    }
    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
    fn extract(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }
}
