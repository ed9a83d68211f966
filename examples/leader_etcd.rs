//! Leader election over a real etcd, across two OS processes: replica a
//! leads and writes the shared config with its fencing token, then its
//! whole process stops (as in a long GC pause) past its lease; replica b
//! takes over with a higher token and writes; a wakes up and tries its next
//! write, which the fence kept in etcd rejects.
//!
//! Start an etcd first, in one command (Debian: `apt-get install etcd-server`):
//!
//! ```text
//! etcd --data-dir /tmp/weft-etcd --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379
//! ```
//!
//! then `cargo run --example leader_etcd --features lease-etcd` (or set
//! `WEFT_ETCD=http://host:port`). The example starts the two replicas as
//! child processes of itself and prints what each saw.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use weft::lease::{CasFence, CasStore, Election, LeaseConfig, LeaseError};
use weft::lease_etcd::EtcdStore;

const TTL: Duration = Duration::from_secs(2);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = args
        .iter()
        .position(|a| a == "--replica")
        .and_then(|i| args.get(i + 1))
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return Ok(runtime.block_on(replica(name))?);
    }
    // The parent: a clean slate, then the two replicas as processes.
    let me = std::env::current_exe()?;
    let spawn = |name: &str| {
        Command::new(&me)
            .args(["--replica", name])
            .stdout(Stdio::piped())
            .spawn()
    };
    let a = spawn("a")?;
    std::thread::sleep(Duration::from_millis(500)); // a campaigns first
    let b = spawn("b")?;
    for (name, child) in [("a", a), ("b", b)] {
        let out = child.wait_with_output()?;
        println!("--- replica {name} ({}) ---", out.status);
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// One replica process.
async fn replica(name: &str) -> Result<(), LeaseError> {
    let endpoint = std::env::var("WEFT_ETCD").unwrap_or_else(|_| "http://127.0.0.1:2379".into());
    let store: Arc<dyn CasStore> = Arc::new(
        EtcdStore::connect_within(&[&endpoint], "weft-example/", Duration::from_secs(5)).await?,
    );
    let election = Election::new(store.clone(), "config-service", LeaseConfig::new(TTL));
    // The resource's fence lives in etcd: both processes check the same
    // record, atomically with the write.
    let fence = CasFence::new(store, "weft-example/fences/", Duration::from_secs(3600));
    let leader = election
        .campaign(name.as_bytes().to_vec(), Duration::from_secs(30))
        .await?;
    let token = leader.token();
    println!("{name} leads with token {token}");
    fence
        .write("config", token, format!("written by {name}").into_bytes())
        .await?;
    println!("{name} wrote the config with token {token}");
    if name == "a" {
        // The whole process stops, renewals included, for longer than the
        // lease: a stop-the-world pause, not an await.
        std::thread::sleep(TTL * 3);
        println!(
            "{name} wakes up; leader by its own account: {}",
            leader.is_leader()
        );
        match fence
            .write("config", token, b"late write by a".to_vec())
            .await
        {
            Ok(()) => println!("{name}'s late write was ACCEPTED (this would be a bug)"),
            Err(e) => println!("{name}'s late write was rejected: {e}"),
        }
    } else {
        tokio::time::sleep(TTL * 3).await; // lead while a wakes up
        leader.resign().await?;
        println!("{name} resigned");
    }
    if let Some((high, value)) = fence.read("config").await? {
        println!(
            "{name} reads the config: {:?} at token {high}",
            String::from_utf8_lossy(&value)
        );
    }
    Ok(())
}
