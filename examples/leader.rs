//! The book's master election: three replicas elect a leader over the
//! in-memory store; the leader's process is paused past its TTL; a new
//! leader takes over; the old leader wakes up and tries a late write, which
//! the fence rejects.
//!
//! Runs on paused tokio time, so it finishes at once:
//! `cargo run --example leader`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weft::lease::{
    CasFence, CasStore, Election, Entry, Fence, LeaseConfig, Limits, MemoryStore, StoreError, Swap,
    Version, async_trait,
};

/// One replica's view of the store, which the example can freeze as a GC
/// pause would: while paused, its calls wait (any `CasStore` can be
/// wrapped like this).
#[derive(Debug)]
struct Process {
    store: Arc<MemoryStore>,
    paused: AtomicBool,
}

impl Process {
    async fn wait_while_paused(&self) {
        while self.paused.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl CasStore for Process {
    fn limits(&self) -> Limits {
        self.store.limits()
    }
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.wait_while_paused().await;
        self.store.get(key).await
    }
    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.wait_while_paused().await;
        self.store.create(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.wait_while_paused().await;
        self.store.compare_and_swap(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.wait_while_paused().await;
        self.store.delete(key, expected).await
    }
    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.wait_while_paused().await;
        self.store.refresh(key, expected, ttl).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        self.wait_while_paused().await;
        self.store.list(prefix).await
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let ttl = Duration::from_secs(3);
    // The resource the leader writes to checks every write's token; its
    // fence lives in the store, so every process sees the same one.
    let fence = Arc::new(CasFence::new(
        store.clone(),
        "fences/",
        Duration::from_secs(3600),
    ));
    let t0 = tokio::time::Instant::now();
    let at = move || format!("t={:>5.1}s", t0.elapsed().as_secs_f64());

    // Each replica reaches the store through its own process (which we can
    // pause).
    let processes: Vec<Arc<Process>> = (0..3)
        .map(|_| {
            Arc::new(Process {
                store: store.clone(),
                paused: AtomicBool::new(false),
            })
        })
        .collect();
    let elections: Vec<Election> = processes
        .iter()
        .map(|p| Election::new(p.clone(), "config-service/leader", LeaseConfig::new(ttl)))
        .collect();

    let first = elections[0]
        .campaign(b"replica-1".to_vec(), Duration::from_secs(1))
        .await?;
    println!("{} replica-1 leads with token {}", at(), first.token());
    fence.check_and_advance("config", first.token()).await?;
    println!("{} replica-1 writes the config: accepted", at());

    // replica-2 and replica-3 queue up behind it.
    let mut waiters = Vec::new();
    for (i, e) in elections.iter().enumerate().skip(1) {
        let (e, fence) = (e.clone(), fence.clone());
        waiters.push(tokio::spawn(async move {
            let name = format!("replica-{}", i + 1);
            let l = e
                .campaign(name.clone().into_bytes(), Duration::from_secs(60))
                .await?;
            println!("{} {name} leads with token {}", at(), l.token());
            fence.check_and_advance("config", l.token()).await?;
            println!("{} {name} writes the config: accepted", at());
            tokio::time::sleep(Duration::from_secs(2)).await;
            l.resign().await?;
            Ok::<_, weft::lease::LeaseError>(())
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A long GC pause: replica-1's process stops for twice the TTL. It had
    // checked that it leads just before.
    assert!(first.is_leader());
    println!(
        "{} replica-1 checks it still leads (yes) and is paused",
        at()
    );
    processes[0].paused.store(true, Ordering::Relaxed);
    tokio::time::sleep(ttl * 2).await;
    processes[0].paused.store(false, Ordering::Relaxed);
    println!(
        "{} replica-1 resumes; leader by its own account: {}",
        at(),
        first.is_leader()
    );
    match fence.check_and_advance("config", first.token()).await {
        Ok(()) => println!(
            "{} replica-1's late write: ACCEPTED (this would be a bug)",
            at()
        ),
        Err(e) => println!(
            "{} replica-1's late write: rejected by the fence: {e}",
            at()
        ),
    }
    for w in waiters {
        w.await??;
    }
    Ok(())
}
