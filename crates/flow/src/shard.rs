//! Sharder: route items by key through a sharding function.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use weft_core::{Health, ShardId, ShardKey, Sharder, key_hash};

use crate::fanout::fan_out;
use crate::{Flow, FlowError, MAX_OUTPUTS};

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
            h.store(health.as_u8(), Ordering::Relaxed);
        }
    }
}

impl<T: Send + 'static> Flow<T> {
    /// Routes each item to the output of its key's shard under `sharder`
    /// (any weft-shard function), so all items of a key go to one output,
    /// in order.
    ///
    /// Output `i` is shard id `i`: there are [`Sharder::id_bound`] outputs,
    /// so a member-set function with holes after a removal (ids `0` and `2`
    /// of a set that lost member `1`) routes every key to its own member's
    /// output. The output of a hole receives nothing and starts down, so
    /// spill-over never picks it.
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
    /// [`FlowError::Invalid`] for a sharder over zero shards, or whose id
    /// bound is below its shard count or above [`MAX_OUTPUTS`]. A sharder
    /// that returns an id at or above its own bound (a broken `Sharder`)
    /// fails the flow with [`FlowError::ShardOutOfBounds`] on every output, naming the
    /// id, instead of sending the item elsewhere.
    pub fn shard<S, K, F>(self, sharder: S, key: F, spill: bool) -> Result<Shards<T>, FlowError>
    where
        S: Sharder + Send + Sync + 'static,
        K: ShardKey,
        F: Fn(&T) -> K + Send + 'static,
    {
        self.shard_by_hash(sharder, move |item| key_hash(&key(item)), spill)
    }

    /// [`shard`](Flow::shard) with a key that borrows from the item: `hash`
    /// returns the item's key hash, `weft_core::key_hash(&item.customer)`,
    /// so no key is built or cloned per item. Routes exactly as `shard`
    /// with the same key.
    ///
    /// # Backpressure
    ///
    /// As [`shard`](Flow::shard).
    ///
    /// # Errors
    ///
    /// As [`shard`](Flow::shard).
    pub fn shard_by_hash<S, F>(
        self,
        sharder: S,
        hash: F,
        spill: bool,
    ) -> Result<Shards<T>, FlowError>
    where
        S: Sharder + Send + Sync + 'static,
        F: Fn(&T) -> u64 + Send + 'static,
    {
        let count = sharder.shard_count();
        let n = sharder.id_bound();
        if count == 0 {
            return Err(FlowError::invalid("shard count", 0, "at least one shard"));
        }
        if n < count || n > MAX_OUTPUTS {
            return Err(FlowError::invalid(
                "sharder id bound",
                n,
                format!("{count} (its shard count) to {MAX_OUTPUTS} (the output limit)"),
            ));
        }
        let health: Arc<[AtomicU8]> = (0..n)
            .map(|i| {
                // invariant: n <= MAX_OUTPUTS < u32::MAX.
                let live = sharder.contains(ShardId::new(i as u32));
                AtomicU8::new(if live { 0 } else { DOWN })
            })
            .collect();
        let h = health.clone();
        let outputs = fan_out(self.stream, self.config, n, move |batch, buffers| {
            for item in batch {
                let id = sharder.shard_for_hash(hash(&item));
                let mut target = id.index();
                if target >= n {
                    return Err(FlowError::ShardOutOfBounds {
                        id: id.get(),
                        bound: n,
                    });
                }
                if spill
                    && h[target].load(Ordering::Relaxed) == DOWN
                    && let Some(next) = (1..n)
                        .map(|d| (target + d) % n)
                        .find(|&i| h[i].load(Ordering::Relaxed) != DOWN)
                {
                    target = next;
                }
                buffers[target].push(item);
            }
            Ok(())
        });
        Ok(Shards { outputs, health })
    }
}

/// The health byte of a down output.
const DOWN: u8 = Health::Down.as_u8();
