//! Leader election over a real etcd: three replicas campaign, the leader
//! resigns, the next one takes over with a higher fencing token, and a
//! write with the old token is rejected.
//!
//! Start an etcd first, in one command (Debian: `apt-get install etcd-server`):
//!
//! ```text
//! etcd --data-dir /tmp/weft-etcd --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379
//! ```
//!
//! then `cargo run --example leader_etcd --features lease-etcd` (or set
//! `WEFT_ETCD=http://host:port`).

use std::sync::Arc;
use std::time::Duration;

use weft::lease::{CasStore, Election, Fence, LeaseConfig, MemoryFence};
use weft::lease_etcd::EtcdStore;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let endpoint = std::env::var("WEFT_ETCD").unwrap_or_else(|_| "http://127.0.0.1:2379".into());
    let store: Arc<dyn CasStore> = match EtcdStore::connect(&[&endpoint], "weft-example/").await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!(
                "no etcd answers at {endpoint}: {e}\nstart one as the doc comment of examples/leader_etcd.rs shows"
            );
            std::process::exit(1);
        }
    };
    if let Err(e) = run(store).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(store: Arc<dyn CasStore>) -> Result<(), weft::lease::LeaseError> {
    let election = Election::new(
        store,
        "config-service",
        LeaseConfig::new(Duration::from_secs(3)),
    );
    let fence = MemoryFence::new();
    let first = election
        .campaign(b"replica-1".to_vec(), Duration::from_secs(5))
        .await?;
    println!("replica-1 leads with token {}", first.token());
    fence.check_and_advance("config", first.token()).await?;
    let old = first.token();
    let second = {
        let election = election.clone();
        tokio::spawn(async move {
            election
                .campaign(b"replica-2".to_vec(), Duration::from_secs(30))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.resign().await?;
    println!("replica-1 resigned");
    let second = second.await.expect("campaign task")?;
    println!("replica-2 leads with token {}", second.token());
    fence.check_and_advance("config", second.token()).await?;
    match fence.check_and_advance("config", old).await {
        Ok(()) => println!("a late write with replica-1's token was accepted (a bug)"),
        Err(e) => println!("a late write with replica-1's token: {e}"),
    }
    second.resign().await
}
