//! Word count as a sharded batch flow: lines become words, words are
//! sharded by the word itself so that each shard counts its own words in
//! parallel, and the shards' counts merge into the top words.
//!
//! `cargo run --example word_count`

use weft::flow::{Flow, FlowConfig};
use weft::shard::LevelJump;
use weft::{Combine, CountBy, TopK};

const TEXT: &str = "the quick brown fox jumps over the lazy dog
the dog barks and the fox runs
a quick brown dog and a lazy fox
the end of the story of the fox and the dog";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: Vec<String> = TEXT.lines().map(String::from).collect();
    let words = Flow::from_iter(lines, FlowConfig::new(64, 8)?).flat_map(|line| {
        line.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    });
    // Each word goes to the shard that owns it; each shard counts in its
    // own task, starting as soon as words arrive.
    let shards = words.shard(LevelJump::new(4)?, |w: &String| w.clone(), false)?;
    let counting: Vec<_> = shards
        .outputs
        .into_iter()
        .map(|shard| tokio::spawn(async move { shard.reduce(&CountBy::new()).await }))
        .collect();
    let words = CountBy::new();
    let mut total = words.create();
    for (i, task) in counting.into_iter().enumerate() {
        let counts = task.await??;
        println!("shard {i} counted {} distinct words", counts.len());
        words.merge(&mut total, counts);
    }
    let top = TopK::by_key(5, |e: &(u64, String)| e.0)?;
    println!("top words:");
    for (n, w) in top.extract(top.fold(total.into_iter().map(|(w, n)| (n, w)))) {
        println!("  {w:<6} {n}");
    }
    Ok(())
}
