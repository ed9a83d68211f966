//! Plans by key over member-set sharders whose ids have holes.

use proptest::prelude::*;
use weft_core::{Count, ShardExt, Sharder};
use weft_scatter::{LeafContext, Plan, Scatter, ScatterConfig, Topology};
use weft_shard::Memento;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After members leave, every key is planned for its own member's id
    /// (holes included, never wrapped), and a topology of `id_bound()`
    /// shards sends each key to the leaf of that id.
    #[test]
    fn plans_by_key_keep_sparse_ids_and_reach_their_owners(
        members in 2usize..12,
        removed in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        keys in prop::collection::vec(any::<u64>(), 1..200),
    ) {
        let names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
        let mut set = Memento::new(names.clone()).unwrap();
        for r in removed {
            if set.len() > 1 {
                let _ = set.remove(&names[r.index(members)]);
            }
        }
        let plan = Plan::by_key(&set, keys.clone(), |ks| ks);
        let mut planned = 0;
        for (shard, ks) in plan.iter() {
            prop_assert!(set.contains(*shard), "{} is a hole", shard);
            for k in ks {
                prop_assert_eq!(set.shard_for(k), *shard);
            }
            planned += ks.len();
        }
        prop_assert_eq!(planned, keys.len());

        // Each leaf checks that the keys it got are its own.
        let owner = set.clone();
        let leaf = move |ks: Vec<u64>, cx: LeafContext| {
            let mine = ks.iter().all(|k| owner.shard_for(k) == cx.shard);
            async move {
                if mine { Ok(ks.len() as u64) } else { Err(std::io::Error::other("misrouted")) }
            }
        };
        let topology = Topology::sharded(set.id_bound(), 1).unwrap();
        let root = Scatter::new(topology, leaf, ScatterConfig::new(std::time::Duration::from_secs(1))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let gathered = rt.block_on(root.gather(plan, &Count::new())).unwrap();
        prop_assert!(gathered.report.complete(), "{:?}", gathered.report);
        prop_assert_eq!(gathered.report.failed(), 0);
    }
}
