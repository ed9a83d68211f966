//! The combinators: delivery, routing, completion, failure, backpressure.

use std::time::Duration;

use proptest::prelude::*;
use weft_core::Sharder;
use weft_core::{Combine, Count, Health, Histogram, ShardExt, Sum};
use weft_flow::{Flow, FlowConfig, FlowError, JoinOutcome, Unmatched, channel};
use weft_shard::{LevelJump, Memento};

fn cfg(capacity: usize, batch: usize) -> FlowConfig {
    FlowConfig::new(capacity, batch).unwrap()
}

#[tokio::test]
async fn the_copier_delivers_every_item_to_every_output_paced_by_the_slowest() {
    let items: Vec<u64> = (0..5000).collect();
    let mut outs = Flow::from_iter(items.clone(), cfg(64, 16)).copy(3).unwrap();
    let (c, b, a) = (
        outs.pop().unwrap(),
        outs.pop().unwrap(),
        outs.pop().unwrap(),
    );
    // Nobody reads `a` yet: the copier fills its edge to the capacity and
    // then waits, so `b` and `c` cannot run ahead by more than that.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        a.buffered(),
        Some(64),
        "the unread output holds exactly its capacity"
    );
    assert!(b.buffered().unwrap() <= 64 && c.buffered().unwrap() <= 64);
    let (ra, rb, rc) = tokio::join!(a.collect(), b.collect(), c.collect());
    assert_eq!(ra.unwrap(), items);
    assert_eq!(rb.unwrap(), items);
    assert_eq!(rc.unwrap(), items);
}

#[tokio::test]
async fn backpressure_bounds_every_edge_by_its_capacity() {
    let (tx, flow) = channel::<u32>(cfg(10, 5));
    let producer = tokio::spawn(async move {
        for i in 0..100 {
            assert!(tx.send(i).await);
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Nobody reads: the producer is stuck with exactly the capacity buffered.
    assert_eq!(flow.buffered(), Some(10));
    assert!(!producer.is_finished());
    let all = flow.collect().await.unwrap();
    assert_eq!(all.len(), 100);
    producer.await.unwrap();
}

#[tokio::test]
async fn the_splitter_routes_to_every_match_and_never_loses_unmatched_items() {
    let routes: Vec<weft_flow::Route<u32>> =
        vec![Box::new(|x| x % 2 == 0), Box::new(|x| x % 3 == 0)];
    let split = Flow::from_iter(0..30u32, cfg(8, 4))
        .split(routes, Unmatched::ToOutput)
        .unwrap();
    let mut outs = split.outputs;
    let other = split.unmatched.unwrap();
    let threes = outs.pop().unwrap();
    let evens = outs.pop().unwrap();
    let (e, t, o) = tokio::join!(evens.collect(), threes.collect(), other.collect());
    assert_eq!(
        e.unwrap(),
        (0..30).filter(|x| x % 2 == 0).collect::<Vec<_>>()
    );
    assert_eq!(
        t.unwrap(),
        (0..30).filter(|x| x % 3 == 0).collect::<Vec<_>>()
    );
    assert_eq!(
        o.unwrap(),
        (0..30)
            .filter(|x| x % 2 != 0 && x % 3 != 0)
            .collect::<Vec<_>>()
    );

    let routes: Vec<weft_flow::Route<u32>> = vec![Box::new(|x| *x < 5)];
    let split = Flow::from_iter(0..30u32, cfg(8, 4))
        .split(routes, Unmatched::Count)
        .unwrap();
    let counter = split.dropped_counter();
    let out = split
        .outputs
        .into_iter()
        .next()
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out, [0, 1, 2, 3, 4]);
    assert_eq!(
        counter.load(std::sync::atomic::Ordering::Relaxed),
        25,
        "unmatched items are counted"
    );
}

#[tokio::test]
async fn the_sharder_sends_each_key_to_its_shard_in_order_and_spills_only_when_asked() {
    let sharder = LevelJump::new(4).unwrap();
    let items: Vec<(u32, u32)> = (0..400).map(|i| (i % 37, i)).collect();
    let shards = Flow::from_iter(items.clone(), cfg(32, 8))
        .shard(sharder, |x: &(u32, u32)| x.0, false)
        .unwrap();
    let results = futures::future::join_all(shards.outputs.into_iter().map(|f| f.collect())).await;
    for (i, r) in results.into_iter().enumerate() {
        let got = r.unwrap();
        assert!(
            got.iter().all(|(k, _)| sharder.shard_for(k).index() == i),
            "a key went to the wrong shard"
        );
        for k in 0..37 {
            let seq: Vec<u32> = got
                .iter()
                .filter(|(key, _)| *key == k)
                .map(|(_, v)| *v)
                .collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]), "per-key order broken");
        }
    }
    // Spill-over: an output marked down gets nothing.
    let (tx, flow) = channel::<(u32, u32)>(cfg(32, 8));
    let shards = flow.shard(sharder, |x: &(u32, u32)| x.0, true).unwrap();
    shards.mark(1, Health::Down);
    let feeder = tokio::spawn(async move {
        tx.send_batch(items).await;
    });
    let results = futures::future::join_all(shards.outputs.into_iter().map(|f| f.collect())).await;
    feeder.await.unwrap();
    let sizes: Vec<usize> = results.into_iter().map(|r| r.unwrap().len()).collect();
    assert_eq!(sizes[1], 0, "the down output received items: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 400, "spill-over lost items");
}

#[tokio::test]
async fn the_merger_completes_after_all_inputs_and_passes_failures_on() {
    let a = Flow::from_iter(0..100u32, cfg(16, 8));
    let b = Flow::from_iter(100..250u32, cfg(16, 8));
    let mut all = Flow::merge(vec![a, b]).unwrap().collect().await.unwrap();
    all.sort_unstable();
    assert_eq!(all, (0..250).collect::<Vec<_>>());

    let (tx, failing) = channel::<u32>(cfg(16, 8));
    tx.send(1).await;
    tx.fail(FlowError::Upstream(weft_core::Cause::message(
        "disk on fire",
        weft_core::ErrorClass::Transient,
    )));
    drop(tx);
    let merged = Flow::merge(vec![Flow::from_iter(0..10u32, cfg(16, 8)), failing]).unwrap();
    assert_eq!(
        merged.collect().await,
        Err(FlowError::Upstream(weft_core::Cause::message(
            "disk on fire",
            weft_core::ErrorClass::Transient
        )))
    );
}

#[tokio::test(start_paused = true)]
async fn join_releases_nothing_before_every_input_completes_and_reports_failures() {
    let (tx_slow, slow) = channel::<u32>(cfg(16, 8));
    let (tx_bad, bad) = channel::<u32>(cfg(16, 8));
    let quick = Flow::from_iter(0..5u32, cfg(16, 8));
    let join = tokio::spawn(Flow::join(vec![quick, slow, bad]));
    tx_bad.send(7).await;
    tx_bad.fail(FlowError::Upstream(weft_core::Cause::message(
        "worker crashed",
        weft_core::ErrorClass::Transient,
    )));
    drop(tx_bad);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !join.is_finished(),
        "join released before the slow input completed"
    );
    tx_slow.send(42).await;
    drop(tx_slow);
    let outcomes = join.await.unwrap();
    assert_eq!(outcomes[0], JoinOutcome::Completed((0..5).collect()));
    assert_eq!(outcomes[1], JoinOutcome::Completed(vec![42]));
    assert_eq!(
        outcomes[2],
        JoinOutcome::Failed {
            error: FlowError::Upstream(weft_core::Cause::message(
                "worker crashed",
                weft_core::ErrorClass::Transient
            )),
            partial: vec![7]
        }
    );
}

/// A sharding function over no shards at all.
struct NoShards;

impl weft_core::Sharder for NoShards {
    fn shard_count(&self) -> usize {
        0
    }
    fn shard_for_hash(&self, _hash: u64) -> weft_core::ShardId {
        weft_core::ShardId::new(0)
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        FlowConfig::new(0, 1),
        Err(FlowError::Invalid { setting: "capacity", value, .. }) if value == "0"
    ));
    assert!(matches!(
        FlowConfig::new(10, 0),
        Err(FlowError::Invalid { setting: "batch size", value, .. }) if value == "0"
    ));
    assert!(matches!(
        FlowConfig::new(10, 11),
        Err(FlowError::Invalid { setting: "batch size", value, expected }) if value == "11" && expected.contains("1 to 10")
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(matches!(
            Flow::from_iter(0..3u32, FlowConfig::default()).copy_n::<0>(),
            Err(FlowError::Invalid {
                setting: "copier outputs",
                ..
            })
        ));
        assert!(matches!(
            Flow::from_iter(0..3u32, FlowConfig::default()).copy(0),
            Err(FlowError::Invalid {
                setting: "copier outputs",
                ..
            })
        ));
        assert!(matches!(
            Flow::from_iter(0..3u32, FlowConfig::default()).split(vec![], Unmatched::Count),
            Err(FlowError::Invalid {
                setting: "splitter routes",
                ..
            })
        ));
        assert!(matches!(
            Flow::<u32>::merge(vec![]),
            Err(FlowError::Invalid {
                setting: "merger inputs",
                ..
            })
        ));
        assert!(matches!(
            Flow::from_iter(0..3u32, FlowConfig::default()).shard(NoShards, |x: &u32| *x, false),
            Err(FlowError::Invalid {
                setting: "shard count",
                ..
            })
        ));
        assert!(matches!(
            Flow::from_iter(0..3u32, FlowConfig::default())
                .reduce_parallel(Count::new(), 0)
                .await,
            Err(FlowError::Invalid { value, .. }) if value == "0"
        ));
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reduce_as_a_tree_equals_the_sequential_fold(
        xs in prop::collection::vec(0.0f64..1000.0, 0..400),
        parallelism in 1usize..6,
        batch in 1usize..20,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let h = Histogram::new([1.0, 10.0, 100.0, 500.0]).unwrap();
        let sequential = h.extract(h.fold(xs.iter().copied())).unwrap();
        let tree = rt.block_on(Flow::from_iter(xs.clone(), cfg(batch * 4, batch)).reduce_parallel(h.clone(), parallelism)).unwrap().unwrap();
        prop_assert_eq!(tree, sequential);
        let s = Sum::<f64>::new();
        let exact = rt.block_on(Flow::from_iter(xs.clone(), cfg(batch * 4, batch)).reduce_parallel(s.clone(), parallelism)).unwrap();
        prop_assert_eq!(exact, s.extract(s.fold(xs.iter().copied())));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Member-set sharders leave holes in their ids when members leave: each
    /// key still reaches its own member's output, holes get nothing, and
    /// nothing is lost.
    #[test]
    fn the_sharder_routes_by_id_when_members_leave_holes(
        members in 2usize..12,
        removed in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        keys in prop::collection::vec(any::<u64>(), 1..300),
    ) {
        let names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
        let mut set = Memento::new(names.clone()).unwrap();
        for r in removed {
            if set.len() > 1 {
                let _ = set.remove(&names[r.index(members)]);
            }
        }
        let bound = set.id_bound();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let outputs: Vec<Vec<u64>> = rt.block_on(async {
            let shards = Flow::from_iter(keys.clone(), cfg(32, 8))
                .shard(set.clone(), |k: &u64| *k, false)
                .unwrap();
            let all = futures::future::join_all(shards.outputs.into_iter().map(|f| f.collect()));
            all.await.into_iter().map(Result::unwrap).collect()
        });
        prop_assert_eq!(outputs.len(), bound);
        let mut delivered = 0;
        for (id, got) in outputs.iter().enumerate() {
            if !set.contains(weft_core::ShardId::new(id as u32)) {
                prop_assert!(got.is_empty(), "the hole {} received items", id);
            }
            for k in got {
                prop_assert_eq!(set.shard_for(k).index(), id, "key {} misrouted", k);
            }
            delivered += got.len();
        }
        prop_assert_eq!(delivered, keys.len());
    }
}

/// A sharder that breaks its own contract: an id at its bound.
struct OffTheEnd;

impl weft_core::Sharder for OffTheEnd {
    fn shard_count(&self) -> usize {
        2
    }
    fn shard_for_hash(&self, _: u64) -> weft_core::ShardId {
        weft_core::ShardId::new(2)
    }
}

#[tokio::test]
async fn a_sharder_id_outside_its_bound_fails_the_flow_instead_of_wrapping() {
    let shards = Flow::from_iter(0..10u32, cfg(16, 8))
        .shard(OffTheEnd, |x: &u32| *x, false)
        .unwrap();
    for out in shards.outputs {
        let err = out.collect().await.unwrap_err();
        assert!(
            matches!(&err, FlowError::ShardOutOfBounds { id: 2, bound: 2 }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn stage_sizes_beyond_the_limits_are_refused_before_allocating() {
    assert!(matches!(
        FlowConfig::new(usize::MAX, 1),
        Err(FlowError::Invalid { setting: "capacity", expected, .. }) if expected.contains("at most")
    ));
    assert!(FlowConfig::new(FlowConfig::MAX_CAPACITY, 512).is_ok());
    assert!(matches!(
        Flow::from_iter(0..3u32, FlowConfig::default()).copy(usize::MAX),
        Err(FlowError::Invalid { expected, .. }) if expected.contains("65536")
    ));
    assert!(matches!(
        Flow::from_iter(0..3u32, FlowConfig::default())
            .reduce_parallel(Count::new(), weft_flow::MAX_OUTPUTS + 1)
            .await,
        Err(FlowError::Invalid { expected, .. }) if expected.contains("65536")
    ));
}

#[tokio::test]
async fn a_source_error_keeps_its_class_and_itself_through_the_flow() {
    use std::io;
    for (kind, class) in [
        (io::ErrorKind::InvalidData, weft_core::ErrorClass::Permanent),
        (io::ErrorKind::TimedOut, weft_core::ErrorClass::Transient),
    ] {
        let items = vec![Ok(1u64), Ok(2), Err(io::Error::from(kind))];
        let flow = Flow::from_stream(futures::stream::iter(items), cfg(8, 4)).map(|x| x * 2);
        let err = flow.collect().await.unwrap_err();
        assert_eq!(weft_core::Classify::class(&err), class, "{err}");
        let FlowError::Upstream(cause) = &err else {
            panic!("expected an upstream failure, got {err}");
        };
        assert_eq!(
            cause.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(kind)
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[tokio::test]
async fn sharding_by_a_borrowed_key_routes_as_sharding_by_the_owned_key() {
    #[derive(Debug, Clone, PartialEq)]
    struct Order {
        customer: String,
        amount: u32,
    }
    let orders: Vec<Order> = (0..300u32)
        .map(|i| Order {
            customer: format!("customer-{}", i % 17),
            amount: i,
        })
        .collect();
    let by_owned = Flow::from_iter(orders.clone(), cfg(64, 16))
        .shard(
            LevelJump::new(4).unwrap(),
            |o: &Order| o.customer.clone(),
            false,
        )
        .unwrap();
    // The key borrows from the item: no String built per item.
    let by_borrowed = Flow::from_iter(orders, cfg(64, 16))
        .shard_by_hash(
            LevelJump::new(4).unwrap(),
            |o: &Order| weft_core::key_hash(&o.customer),
            false,
        )
        .unwrap();
    // Every output of a stage is read at once.
    let (a, b) = tokio::join!(
        Flow::collect_all(by_owned.outputs),
        Flow::collect_all(by_borrowed.outputs)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.iter().map(Vec::len).sum::<usize>(), 300);
    assert_eq!(a, b, "the same items reach the same outputs, in order");
}

/// An item that counts how often it is cloned.
#[derive(Debug)]
struct Counted(u64, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted(self.0, self.1.clone())
    }
}

fn counted(n: u64) -> (Vec<Counted>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let clones = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    ((0..n).map(|i| Counted(i, clones.clone())).collect(), clones)
}

#[tokio::test]
async fn the_copier_shares_batches_so_only_an_output_read_while_another_holds_them_copies() {
    use std::sync::atomic::Ordering::Relaxed;
    // One output read, two dropped: nothing is ever cloned.
    let (items, clones) = counted(1000);
    let [kept, gone_a, gone_b] = Flow::from_iter(items, cfg(64, 16)).copy_n().unwrap();
    drop((gone_a, gone_b));
    let got: Vec<u64> = kept.collect().await.unwrap().iter().map(|c| c.0).collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(
        clones.load(Relaxed),
        0,
        "an output nobody reads costs no copy"
    );

    // Two outputs on one thread, the edges big enough for everything:
    // the first reader copies each item, the second takes the originals.
    let (items, clones) = counted(1000);
    let [first, second] = Flow::from_iter(items, cfg(1024, 16)).copy_n().unwrap();
    tokio::task::yield_now().await;
    let a: Vec<u64> = first.collect().await.unwrap().iter().map(|c| c.0).collect();
    assert_eq!(
        clones.load(Relaxed),
        1000,
        "one copy per item, made by the first reader"
    );
    let b: Vec<u64> = second
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        clones.load(Relaxed),
        1000,
        "the last reader takes the batches themselves"
    );
    assert_eq!(a, b);
    assert_eq!(a.len(), 1000);

    // Three outputs read in place, in parallel: nothing is cloned.
    let (items, clones) = counted(5000);
    let outs = Flow::from_iter(items, cfg(64, 16)).copy(3).unwrap();
    let readers: Vec<_> = outs
        .into_iter()
        .map(|out| {
            tokio::spawn(async move {
                let mut sum = 0;
                out.for_each_batch(|items| sum += items.iter().map(|c| c.0).sum::<u64>())
                    .await
                    .unwrap();
                sum
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (0..5000).sum::<u64>());
    }
    assert_eq!(clones.load(Relaxed), 0, "readers in place copy nothing");
}

#[tokio::test]
async fn a_batch_grown_past_the_capacity_is_copied_whole_to_every_output() {
    // Each item becomes 40 items: batches of 160 on edges of 32.
    let outs = Flow::from_iter(0..100u64, cfg(32, 4))
        .flat_map(|x| (0..40).map(move |i| x * 40 + i))
        .copy(3)
        .unwrap();
    let all = Flow::collect_all(outs).await.unwrap();
    for out in all {
        assert_eq!(out, (0..4000).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn items_sent_one_at_a_time_move_on_as_batches_in_order_with_the_failure_last() {
    use futures::StreamExt;
    let (tx, flow) = channel::<u32>(cfg(64, 4));
    for i in 0..10 {
        assert!(tx.send(i).await);
    }
    assert!(tx.send_batch(vec![10, 11, 12, 13, 14, 15]).await);
    assert!(tx.send(16).await);
    tx.fail(FlowError::Upstream(weft_core::Cause::message(
        "the feed broke",
        weft_core::ErrorClass::Permanent,
    )));
    drop(tx);
    let mut got: Vec<Result<Vec<u32>, FlowError>> = flow.into_batches().collect().await;
    assert!(
        matches!(got.pop(), Some(Err(FlowError::Upstream(_)))),
        "the failure comes last"
    );
    let batches: Vec<Vec<u32>> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        batches,
        [
            vec![0, 1, 2, 3],
            vec![4, 5, 6, 7],
            vec![8, 9],
            vec![10, 11, 12, 13, 14, 15],
            vec![16]
        ],
        "waiting single items are taken together, up to the batch size, and a batch stays whole"
    );
}

#[tokio::test]
async fn a_shared_batch_larger_than_the_next_edge_still_arrives_whole() {
    // The merge takes the small flow's configuration: the copier's shared
    // batches of 512 meet a boundary edge of 64 items.
    let [a, b] = Flow::from_iter(0..2000u64, cfg(1024, 512))
        .copy_n()
        .unwrap();
    let small = Flow::from_iter(std::iter::empty::<u64>(), cfg(64, 16));
    let merged = Flow::merge(vec![small, a]).unwrap().boundary();
    let (got, other) = tokio::join!(merged.collect(), b.collect());
    assert_eq!(got.unwrap(), (0..2000).collect::<Vec<_>>());
    assert_eq!(other.unwrap().len(), 2000);
}
