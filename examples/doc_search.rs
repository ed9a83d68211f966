//! The book's distributed document search: an index sharded over 4 leaves,
//! each with 3 replicas. The root sends a query to every shard, each shard
//! returns its best matches, and the root merges the top 5. During the last
//! query the replica serving shard 2 stalls (a GC pause, say); the root
//! hedges to another replica and the report says so.
//!
//! `cargo run --example doc_search`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weft::scatter::{Hedging, LeafContext, Plan, Scatter, ScatterConfig, ShardOutcome, Topology};
use weft::{Cause, Flatten, TopK};

/// Shard `s` holds documents `s, s + 4, s + 8, ...`; a document's score for
/// a term is a pure function of both.
fn search(shard: u32, term: &str) -> Vec<(u32, String)> {
    (0..50u32)
        .map(|i| shard + 4 * i)
        .map(|doc| {
            let score = weft::key_hash(&(term, doc)) % 1000;
            (score as u32, format!("doc-{doc:03}"))
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Leaves answer in 2 ms; while `stall` is set, the first replica asked
    // for shard 2 takes 300 ms.
    let stall = Arc::new(AtomicBool::new(false));
    let stalled = stall.clone();
    let leaf = move |term: &'static str, cx: LeafContext| {
        let slow = stalled.load(Ordering::Relaxed) && cx.shard.get() == 2 && cx.attempt == 1;
        async move {
            let delay = if slow { 300 } else { 2 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut hits = search(cx.shard.get(), term);
            hits.sort_unstable_by(|a, b| b.cmp(a));
            hits.truncate(5);
            // A real leaf maps its client's error: `.classified()?`.
            Ok::<_, Cause>(hits)
        }
    };
    let config = ScatterConfig::new(Duration::from_millis(500))
        .hedging(Hedging::adaptive().fallback(Duration::from_millis(20), 200))
        .max_extra_load(0.05);
    let root = Scatter::new(Topology::sharded(4, 3)?, leaf, config)?;
    // Merge the shards' lists: the best 5 overall, ties by document name.
    // Each shard answers a list; the root keeps the best 5 of all of them.
    let top_of_lists = Flatten::new(TopK::by_key(5, |hit: &(u32, String)| hit.0)?);

    // Earn the extra-load budget with ordinary queries first.
    for _ in 0..40 {
        root.gather(Plan::broadcast(4, "warmup"), &top_of_lists)
            .await?;
    }
    stall.store(true, Ordering::Relaxed);
    let gathered = root
        .gather(Plan::broadcast(4, "rust"), &top_of_lists)
        .await?;
    let report = gathered.report.clone();
    println!("top 5 for \"rust\":");
    for (score, doc) in gathered.require_complete()? {
        println!("  {doc}  score {score}");
    }
    println!(
        "\nreport: {} of {} shards answered in {:?} (hedge delay {:?})",
        report.answered(),
        report.asked(),
        report.elapsed,
        report.hedge_delay
    );
    for s in &report.shards {
        let how = match &s.outcome {
            ShardOutcome::Answered { replica, attempt } => {
                format!("answered by replica {replica} on attempt {attempt}")
            }
            other => format!("{other:?}"),
        };
        let hedged = if s.hedges > 0 { ", hedged" } else { "" };
        println!("  shard {}: {how}{hedged}", s.shard);
    }
    println!("\nas JSON: {}", serde_json::to_string(&report)?);
    Ok(())
}
