//! A watcher follows the store's prefix watch where the store has one:
//! changes arrive at once rather than at the next poll, and a watch that
//! ends (a lost connection) falls back to polling and is opened again.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use weft_lease::{
    CasStore, Entry, LeaseConfig, Limits, MemoryStore, PrefixEvent, StoreError, Swap, Version,
};
use weft_members::{Member, Registration, WatchConfig, Watcher};

const TTL: Duration = Duration::from_secs(3);

/// An in-memory store whose prefix watches can be cut, as a lost
/// connection would; counts the watches opened.
#[derive(Debug, Default)]
struct Cuttable {
    inner: MemoryStore,
    opened: AtomicUsize,
    cuts: Mutex<Vec<oneshot::Sender<()>>>,
}

impl Cuttable {
    /// Ends every open prefix watch.
    fn cut(&self) {
        for tx in self.cuts.lock().unwrap().drain(..) {
            let _ = tx.send(());
        }
    }
}

#[weft_lease::async_trait]
impl CasStore for Cuttable {
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.get(key).await
    }
    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.inner.create(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.inner.compare_and_swap(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.inner.delete(key, expected).await
    }
    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.inner.refresh(key, expected, ttl).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        self.inner.list(prefix).await
    }
    fn watch_prefix(&self, prefix: &str) -> Option<BoxStream<'static, PrefixEvent>> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let events = self.inner.watch_prefix(prefix)?;
        let (tx, rx) = oneshot::channel();
        self.cuts.lock().unwrap().push(tx);
        Some(events.take_until(rx).boxed())
    }
}

async fn register(store: Arc<dyn CasStore>, name: &str) -> Registration {
    let me = Member::new(name, "10.0.0.1:7000").unwrap();
    Registration::register(store, "svc/", me, LeaseConfig::new(TTL), TTL)
        .await
        .unwrap()
}

/// How long the watcher takes to yield a set with `n` members.
async fn until_len(watcher: &mut Watcher, n: usize) -> Duration {
    let started = Instant::now();
    loop {
        if watcher.next().await.unwrap().len() == n {
            return started.elapsed();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn changes_arrive_through_the_store_watch_before_the_next_poll() {
    let store = Arc::new(MemoryStore::new());
    // Polling every TTL: only the watch can bring a change sooner.
    let config = WatchConfig::new(TTL).unwrap().poll(TTL).unwrap();
    let mut watched = Watcher::new(store.clone(), "svc/", config.clone()).unwrap();
    let mut polled = Watcher::new(store.clone(), "svc/", config.poll_only()).unwrap();
    assert!(watched.next().await.unwrap().is_empty());
    assert!(polled.next().await.unwrap().is_empty());
    // Let the next poll be far off.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reg = register(store.clone(), "m-1").await;
    let seen = until_len(&mut watched, 1).await;
    assert!(
        seen < Duration::from_millis(5),
        "the watch brought the join after {seen:?}"
    );
    let polled_after = until_len(&mut polled, 1).await;
    assert!(
        polled_after > Duration::from_secs(2),
        "a polling watcher saw it after {polled_after:?}, not at its next poll"
    );
    reg.deregister().await.unwrap();
    let seen = until_len(&mut watched, 0).await;
    assert!(
        seen < Duration::from_millis(5),
        "the watch brought the drain after {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_ends_falls_back_to_polling_and_is_opened_again() {
    let store = Arc::new(Cuttable::default());
    let poll = Duration::from_millis(200);
    let config = WatchConfig::new(TTL).unwrap().poll(poll).unwrap();
    let mut watcher = Watcher::new(store.clone(), "svc/", config).unwrap();
    assert!(watcher.next().await.unwrap().is_empty());
    assert_eq!(store.opened.load(Ordering::SeqCst), 1);
    store.cut();
    // Let the watcher see the end.
    let _ = tokio::time::timeout(Duration::from_millis(1), watcher.next()).await;
    let _m1 = register(store.clone(), "m-1").await;
    let seen = until_len(&mut watcher, 1).await;
    assert!(
        seen <= poll + Duration::from_millis(5),
        "without a watch, the join came after {seen:?}, not within a poll period"
    );
    // Reopened after a poll period (200 ms here); changes come at once again.
    let _ = tokio::time::timeout(poll * 2, watcher.next()).await;
    assert_eq!(
        store.opened.load(Ordering::SeqCst),
        2,
        "the watch was opened again"
    );
    let _m2 = register(store.clone(), "m-2").await;
    let seen = until_len(&mut watcher, 2).await;
    assert!(
        seen < Duration::from_millis(5),
        "the reopened watch brought the join after {seen:?}"
    );
}
