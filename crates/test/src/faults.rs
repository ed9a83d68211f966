//! A store wrapper that injects faults: delays, timeouts with unknown
//! outcome, and process pauses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::watch;
use weft_core::mix::{GAMMA, mix64, unit};
use weft_lease::{CasStore, Entry, Limits, PrefixEvent, StoreError, Swap, Version, WatchEvent};

/// Faults to inject, drawn per operation from a seeded sequence.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Every operation takes up to this long (uniform).
    pub max_delay: Duration,
    /// Chance that a write applies but its caller sees
    /// [`StoreError::Indeterminate`] (the answer was lost).
    pub lost_answer: f64,
    /// Chance that a write does not apply and its caller sees
    /// [`StoreError::Indeterminate`] (the request was lost).
    pub lost_request: f64,
    /// The seed.
    pub seed: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            max_delay: Duration::ZERO,
            lost_answer: 0.0,
            lost_request: 0.0,
            seed: 1,
        }
    }
}

/// A [`CasStore`] that passes calls to another one with injected faults,
/// and that can be paused: while paused, calls wait (as if the calling
/// process were stopped).
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn CasStore>,
    plan: FaultPlan,
    counter: AtomicU64,
    paused: watch::Sender<bool>,
    log: Mutex<Vec<String>>,
}

impl FaultyStore {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: Arc<dyn CasStore>, plan: FaultPlan) -> Self {
        FaultyStore {
            inner,
            plan,
            counter: AtomicU64::new(0),
            paused: watch::channel(false).0,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Pauses (`true`) or resumes (`false`) this client's calls.
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// What was injected, for a failing test's message.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn draw(&self) -> f64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        unit(mix64(self.plan.seed.wrapping_add(n.wrapping_mul(GAMMA))))
    }

    async fn gate(&self) {
        let mut rx = self.paused.subscribe();
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
        if !self.plan.max_delay.is_zero() {
            tokio::time::sleep(self.plan.max_delay.mul_f64(self.draw())).await;
        }
    }

    /// Runs a write with the plan's request and answer losses.
    async fn write<F>(&self, key: &str, op: F) -> Result<Swap, StoreError>
    where
        F: std::future::Future<Output = Result<Swap, StoreError>>,
    {
        self.gate().await;
        let lost = |what: &str| {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{what} for {key}"));
            StoreError::Indeterminate {
                store: "faulty".into(),
                key: key.to_string(),
                reason: format!("injected: {what}"),
                cause: None,
            }
        };
        if self.draw() < self.plan.lost_request {
            return Err(lost("lost request"));
        }
        let result = op.await;
        // The answer travels back through the (possibly paused) process.
        self.gate().await;
        if self.draw() < self.plan.lost_answer {
            return Err(lost("lost answer"));
        }
        result
    }
}

#[async_trait::async_trait]
impl CasStore for FaultyStore {
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.gate().await;
        self.inner.get(key).await
    }
    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.write(key, self.inner.create(key, value, ttl)).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.write(key, self.inner.compare_and_swap(key, expected, value, ttl))
            .await
    }
    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.write(key, self.inner.delete(key, expected)).await
    }
    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.write(key, self.inner.refresh(key, expected, ttl))
            .await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        self.gate().await;
        self.inner.list(prefix).await
    }
    fn watch(&self, key: &str) -> Option<BoxStream<'static, WatchEvent>> {
        self.inner.watch(key)
    }
    fn watch_prefix(&self, prefix: &str) -> Option<BoxStream<'static, PrefixEvent>> {
        self.inner.watch_prefix(prefix)
    }
}
