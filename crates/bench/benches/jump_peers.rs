//! `LevelJump` against the peer crates of its kind, side by side in one
//! run: JumpBackHash (`jump-back-hash`, Ertl 2024) and FlipHash
//! (`fliphash`, Datadog), with weft's own `Jump` (Lamping and Veach) and
//! one hash of the key for scale.
//!
//! Every function maps the same 2²⁰ key hashes (uniform 64-bit words) to
//! `n` buckets; a row is nanoseconds per key, the fastest of the
//! interleaved rounds (`WEFT_BENCH_RUNS`, default 7). JumpBackHash takes a
//! random generator seeded with the key's hash: SplitMix64 here, the
//! cheapest generator that passes for it, so the peer is measured at its
//! fastest.
//!
//! `cargo bench -p weft-bench --bench jump_peers`; results in
//! docs/sharding.md.

use std::hint::black_box;
use std::time::Instant;

use weft_core::{Sharder, key_hash};
use weft_shard::{Jump, LevelJump};

const KEYS: u64 = 1 << 20;

/// SplitMix64 as a `rand_core` 0.5 generator, seeded with a key's hash.
struct SplitMix(u64);

impl rand_core_05::RngCore for SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_05::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

type Row = (&'static str, Box<dyn Fn(&[u64], u32) -> u64>);

fn rows() -> Vec<Row> {
    vec![
        (
            "one hash of the key (key_hash of a u64)",
            Box::new(|keys: &[u64], _n| keys.iter().fold(0u64, |a, k| a.wrapping_add(key_hash(k)))),
        ),
        (
            "weft LevelJump",
            Box::new(|hashes: &[u64], n| {
                hashes
                    .iter()
                    .fold(0u64, |a, &h| a + u64::from(LevelJump::bucket(h, n)))
            }),
        ),
        (
            "jump-back-hash 0.1 (SplitMix64)",
            Box::new(|hashes: &[u64], n| {
                hashes.iter().fold(0u64, |a, &h| {
                    a + u64::from(jump_back_hash::bucket(&mut SplitMix(h), n))
                })
            }),
        ),
        (
            "fliphash 0.1",
            Box::new(|hashes: &[u64], n| {
                let end = u64::from(n - 1);
                hashes
                    .iter()
                    .fold(0u64, |a, &h| a + fliphash::fliphash_64(h, ..=end))
            }),
        ),
        (
            "weft Jump (Lamping–Veach)",
            Box::new(|hashes: &[u64], n| {
                let jump = Jump::new(n).expect("n > 0");
                hashes
                    .iter()
                    .fold(0u64, |a, &h| a + u64::from(jump.shard_for_hash(h).get()))
            }),
        ),
    ]
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let keys: Vec<u64> = (0..KEYS).collect();
    let hashes: Vec<u64> = keys.iter().map(key_hash).collect();
    let rows = rows();
    println!("ns per key over {KEYS} key hashes, the fastest of {runs} interleaved rounds.\n");
    print!("| n |");
    for (name, _) in &rows {
        print!(" {name} |");
    }
    println!(" LevelJump ÷ best peer | LevelJump ÷ one hash |");
    println!("|---:|{}---:|---:|", "---:|".repeat(rows.len()));
    for n in [2u32, 10, 100, 1000, 10_000, 100_000, 1_000_000, 1 << 30] {
        let mut best = vec![f64::INFINITY; rows.len()];
        for _ in 0..runs {
            for (i, (name, f)) in rows.iter().enumerate() {
                let input = if i == 0 { &keys } else { &hashes };
                let t = Instant::now();
                let sum = black_box(f(black_box(input), n));
                let ns = t.elapsed().as_nanos() as f64 / KEYS as f64;
                // The buckets are in range: their sum is below n per key.
                assert!(
                    i == 0 || sum < u64::from(n) * KEYS,
                    "{name}: bucket out of range"
                );
                best[i] = best[i].min(ns);
            }
        }
        print!("| {n} |");
        for ns in &best {
            print!(" {ns:.2} |");
        }
        let peer = best[2].min(best[3]);
        println!(" {:.2} | {:.2} |", best[1] / peer, best[1] / best[0]);
    }
}
