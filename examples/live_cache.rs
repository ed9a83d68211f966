//! A cache fleet that routes by the live member set (the book's sharded
//! cache, ch. 6, with membership from the servers themselves).
//!
//! Four cache-server processes register on etcd under `caches/`, each
//! under a renewed lease. The client watches the prefix and routes 10,000
//! keys through a live ring. Then one server is killed (SIGKILL): when its
//! lease runs out, it leaves the set, and only its keys move. It comes
//! back under the same name and its keys return.
//!
//! `cargo run --example live_cache --features full` starts a private etcd
//! on loopback (Debian: `apt-get install etcd-server`), or uses
//! `ETCD_ENDPOINT` (`http://127.0.0.1:2379`) if set. The example re-executes
//! itself for the servers.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::lease::{CasStore, LeaseConfig};
use weft::lease_etcd::EtcdStore;
use weft::members::{LiveSharder, Member, MemberSet, Registration, WatchConfig, Watcher};
use weft::shard::Ring;

const TTL: Duration = Duration::from_secs(2);
const KEYS: usize = 10_000;
const SERVERS: usize = 4;

async fn store(endpoint: &str) -> Result<Arc<dyn CasStore>, Box<dyn std::error::Error>> {
    let store =
        EtcdStore::connect_within(&[endpoint], "live-cache/", Duration::from_secs(10)).await?;
    Ok(Arc::new(store))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, endpoint, name] = &args[..]
        && role == "server"
    {
        return server(endpoint, name).await;
    }
    let (endpoint, etcd) = match std::env::var("ETCD_ENDPOINT") {
        Ok(e) => (e, None),
        Err(_) => {
            let (endpoint, child, dir) = start_etcd().await?;
            (endpoint, Some((child, dir)))
        }
    };
    let result = client(&endpoint).await;
    // Stop the server this example started, by its own handle.
    if let Some((mut etcd, dir)) = etcd {
        let _ = etcd.kill();
        let _ = etcd.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// A cache server: registers and stays until killed.
async fn server(endpoint: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = store(endpoint).await?;
    let me = Member::new(name, format!("127.0.0.1:{}", 11211 + name.len()))?;
    // A restarted server waits out its earlier life's record (one TTL).
    let _registration =
        Registration::register(store, "caches/", me, LeaseConfig::new(TTL), TTL * 3).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Who owns each key now.
fn owners(sharder: &LiveSharder<Ring>) -> Vec<String> {
    let mut reader = sharder.reader();
    (0..KEYS)
        .map(|k| {
            reader
                .route(&format!("user-{k}"), |l| l.member.name().to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn show(owners: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in owners {
        *counts.entry(o.as_str()).or_default() += 1;
    }
    for (name, n) in counts {
        println!("    {name}: {n} keys");
    }
}

/// Follows the watcher until `done` holds for the set, applying each one.
async fn until(
    watcher: &mut Watcher,
    sharder: &LiveSharder<Ring>,
    done: impl Fn(&MemberSet) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        let set = tokio::time::timeout(Duration::from_secs(30), watcher.next()).await??;
        sharder.apply(&set)?;
        let names: Vec<&str> = set.members().iter().map(|l| l.member.name()).collect();
        println!("  set {}: {}", set.epoch(), names.join(", "));
        if done(&set) {
            return Ok(());
        }
    }
}

async fn client(endpoint: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("etcd at {endpoint}");
    let me = std::env::current_exe()?;
    let spawn = |name: &str| -> std::io::Result<Child> {
        Command::new(&me)
            .args(["server", endpoint, name])
            .stdin(Stdio::null())
            .spawn()
    };
    let mut servers: Vec<(String, Child)> = Vec::new();
    for i in 0..SERVERS {
        let name = format!("cache-{i}");
        servers.push((name.clone(), spawn(&name)?));
    }
    let result = async {
        let store = store(endpoint).await?;
        let mut watcher = Watcher::new(store, "caches/", WatchConfig::new(TTL)?)?;
        let sharder = LiveSharder::<Ring>::new();
        println!("\nwaiting for {SERVERS} servers to register:");
        until(&mut watcher, &sharder, |s| s.len() == SERVERS).await?;
        let before = owners(&sharder);
        println!("\n{KEYS} keys over {SERVERS} servers:");
        show(&before);

        let (victim, child) = &mut servers[2];
        child.kill()?;
        child.wait()?;
        let killed = Instant::now();
        println!("\nkilled {victim} (SIGKILL); its record stays until its lease's {TTL:?} TTL runs out:");
        let gone = victim.clone();
        until(&mut watcher, &sharder, |s| s.get(&gone).is_none()).await?;
        println!("  {gone} left the set {:?} after the kill", killed.elapsed());
        let after = owners(&sharder);
        let moved: Vec<usize> = (0..KEYS).filter(|&k| before[k] != after[k]).collect();
        let from_victim = moved.iter().filter(|&&k| before[k] == gone).count();
        let victim_share = before.iter().filter(|o| **o == gone).count();
        println!(
            "\n{} keys moved, {from_victim} of them {gone}'s ({gone} had {victim_share}); every other key stayed:",
            moved.len()
        );
        show(&after);
        if from_victim != moved.len() || moved.len() != victim_share {
            return Err(format!("{} keys moved, {from_victim} from {gone}", moved.len()).into());
        }

        println!("\n{gone} restarts under its name:");
        *child = spawn(&gone)?;
        until(&mut watcher, &sharder, |s| s.get(&gone).is_some()).await?;
        let back = owners(&sharder);
        let returned = (0..KEYS).filter(|&k| back[k] != after[k]).count();
        let same = (0..KEYS).filter(|&k| back[k] == before[k]).count();
        println!("\n{returned} keys went back to {gone}; {same} of {KEYS} keys are where they started:");
        show(&back);
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    for (_, child) in &mut servers {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Starts a private single-node etcd on free loopback ports.
async fn start_etcd() -> Result<(String, Child, std::path::PathBuf), Box<dyn std::error::Error>> {
    let port = || -> std::io::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (client, peer) = (port()?, port()?);
    let dir = std::env::temp_dir().join(format!("weft-live-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = Command::new("etcd")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--name",
            "live-cache",
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-cluster",
            &format!("live-cache=http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start etcd ({e}): apt-get install etcd-server, or set ETCD_ENDPOINT")
        })?;
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", client))
            .await
            .is_ok()
        {
            return Ok((format!("http://127.0.0.1:{client}"), child, dir));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("etcd did not start listening".into())
}
