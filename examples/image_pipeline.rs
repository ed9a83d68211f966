//! The book's coordinated-batch image pipeline (ch. 12): a splitter sends
//! photos and scans down different paths, sharded workers tag images
//! (simulated work), a join waits until every worker has finished, and a
//! reduce turns all the tags into a histogram of tag counts.
//!
//! `cargo run --example image_pipeline`

use std::time::Duration;

use weft::CountBy;
use weft::flow::{Flow, FlowConfig, JoinOutcome, Route, Unmatched};
use weft::shard::LevelJump;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Image {
    id: u32,
    kind: &'static str,
}

/// The simulated model: a few tags per image.
fn tag(image: &Image) -> Vec<&'static str> {
    const TAGS: [&str; 6] = ["cat", "dog", "tree", "car", "person", "text"];
    let h = weft::key_hash(&image.id);
    let mut tags = vec![TAGS[(h % 6) as usize]];
    if image.kind == "scan" {
        tags.push("text");
    }
    if h.is_multiple_of(3) {
        tags.push(TAGS[((h >> 8) % 6) as usize]);
    }
    tags
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = FlowConfig::new(32, 8)?;
    let images: Vec<Image> = (0..200)
        .map(|id| Image {
            id,
            kind: if id.is_multiple_of(5) {
                "scan"
            } else {
                "photo"
            },
        })
        .collect();
    // Splitter: photos and scans take different paths; nothing else exists,
    // but anything unexpected would be counted, not lost.
    let routes: Vec<Route<Image>> = vec![
        Box::new(|i| i.kind == "photo"),
        Box::new(|i| i.kind == "scan"),
    ];
    let split = Flow::from_iter(images, config).split(routes, Unmatched::Count)?;
    let mut paths = split.outputs;
    let scans = paths.pop().expect("two routes");
    let photos = paths.pop().expect("two routes");
    // Photos are tagged by 3 sharded workers (by image id); scans by one.
    let shards = photos.shard(LevelJump::new(3)?, |i: &Image| i.id, false)?;
    let mut workers: Vec<Flow<&'static str>> = shards
        .outputs
        .into_iter()
        .map(|s| s.flat_map(|img| tag(&img)).boundary())
        .collect();
    workers.push(scans.flat_map(|img| tag(&img)).boundary());
    // Simulated work time, so the join has something to wait for.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Join: nothing is released until every worker has finished.
    let outcomes = Flow::join(workers).await;
    let mut all_tags = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            JoinOutcome::Completed(tags) => {
                println!("worker {i} finished: {} tags", tags.len());
                all_tags.extend(tags);
            }
            other => println!("worker {i} did not finish: {other:?}"),
        }
    }
    // Reduce into the histogram of tags, as a tree of partial counts.
    let histogram = Flow::from_iter(all_tags, config)
        .reduce_parallel(CountBy::new(), 4)
        .await?;
    println!("tag histogram:");
    for (tag, n) in histogram {
        println!("  {tag:<7} {n:>4} {}", "#".repeat((n / 4) as usize));
    }
    Ok(())
}
