//! Sharder: route items by key through a sharding function.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use weft_core::{Health, ShardExt, ShardKey, Sharder};

use crate::fanout::fan_out;
use crate::{Flow, FlowError};

/// The outputs of [`Flow::shard`], one per shard, and their health.
#[derive(Debug)]
pub struct Shards<T> {
    /// Output `i` receives the items of shard `i`.
    pub outputs: Vec<Flow<T>>,
    health: Arc<[AtomicU8]>,
}

impl<T> Shards<T> {
    /// Marks an output's health; with spill-over on, items for a down
    /// output go to the next output that is not down.
    pub fn mark(&self, shard: usize, health: Health) {
        if let Some(h) = self.health.get(shard) {
            h.store(
                match health {
                    Health::Healthy => 0,
                    Health::Suspect => 1,
                    Health::Down => 2,
                },
                Ordering::Relaxed,
            );
        }
    }
}

impl<T: Send + 'static> Flow<T> {
    /// Routes each item to the output of its key's shard under `sharder`
    /// (any weft-shard function; shard ids must be `0..shard_count`), so
    /// all items of a key go to one output, in order.
    ///
    /// With `spill`, an item whose output is marked down
    /// ([`Shards::mark`]) goes to the next output that is not, trading the
    /// per-key order for availability (the book's sharder that spills work
    /// to healthy shards). Off by default: strict per-key order.
    ///
    /// ```text
    ///                    ┌──▶ shard 0
    /// in ──▶ hash(key) ──┼──▶ shard 1
    ///                    └──▶ shard 2
    /// ```
    ///
    /// # Backpressure
    ///
    /// Waits while a target output is full.
    ///
    /// # Errors
    ///
    /// [`FlowError::Config`] for a sharder over zero shards.
    pub fn shard<S, K, F>(self, sharder: S, key: F, spill: bool) -> Result<Shards<T>, FlowError>
    where
        S: Sharder + Send + Sync + 'static,
        K: ShardKey,
        F: Fn(&T) -> K + Send + 'static,
    {
        let n = sharder.shard_count();
        if n == 0 {
            return Err(FlowError::Config("the sharder has zero shards".into()));
        }
        let health: Arc<[AtomicU8]> = (0..n).map(|_| AtomicU8::new(0)).collect();
        let h = health.clone();
        let outputs = fan_out(self.stream, self.config, n, move |batch, buffers| {
            for item in batch {
                let mut target = sharder.shard_for(&key(&item)).index() % n;
                if spill
                    && h[target].load(Ordering::Relaxed) == 2
                    && let Some(next) = (1..n)
                        .map(|d| (target + d) % n)
                        .find(|&i| h[i].load(Ordering::Relaxed) != 2)
                {
                    target = next;
                }
                buffers[target].push(item);
            }
        });
        Ok(Shards { outputs, health })
    }
}
