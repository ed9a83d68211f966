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
    // b starts once a leads, read from a's own output: no timed guess.
    let mut a = spawn("a")?;
    let mut a_out = std::io::BufReader::new(a.stdout.take().ok_or("no stdout")?);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut a_out, &mut first)?;
    let b = spawn("b")?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut a_out, &mut rest)?;
    println!("--- replica a ({}) ---\n{first}{rest}", a.wait()?);
    let out = b.wait_with_output()?;
    println!("--- replica b ({}) ---", out.status);
    print!("{}", String::from_utf8_lossy(&out.stdout));
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
        // lease: a stop-the-world pause (as a long GC or a frozen VM), on
        // purpose a blocking sleep of the runtime's only thread, not an
        // await.
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
