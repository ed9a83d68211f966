//! A cache warm-up job that bypasses the proxies in front of its caches: it
//! must put every key on the server the proxy would pick, or the warmed
//! entries are never read. Here a memcached pool behind twemproxy, an HTTP
//! cache behind nginx `hash $key consistent` and a session tier behind
//! HAProxy, each read from its own configuration lines; then what a failed
//! server costs each of them.
//!
//! `cargo run --example proxy_warmup --features shard`

use std::collections::BTreeMap;

use weft::shard::compat::{
    Distribution, Haproxy, NginxHash, NginxHashMode, Twemproxy, TwemproxyHash,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys: Vec<String> = (0..30_000).map(|i| format!("/item/{i}")).collect();

    // nutcracker.yml: `servers:` lines, ketama, the default fnv1a_64.
    let memcached = Twemproxy::parse_servers(
        "- 10.0.1.1:11211:1 mc-a\n- 10.0.1.2:11211:1 mc-b\n- 10.0.1.3:11211:2 mc-c",
        Distribution::Ketama,
        TwemproxyHash::Fnv1a_64,
    )?;
    // nginx.conf: upstream { hash $request_uri consistent; server …; }
    let http = NginxHash::parse_servers(
        "server 10.0.2.1:8080;\nserver 10.0.2.2:8080;\nserver 10.0.2.3:8080 weight=2;",
        NginxHashMode::Consistent,
    )?;
    // haproxy.cfg: balance hdr(X-Session), hash-type consistent.
    let sessions = Haproxy::parse_servers(
        "server s1 10.0.3.1:80 weight 10 check\nserver s2 10.0.3.2:80 weight 10 check\nserver s3 10.0.3.3:80 weight 20 check",
        "hash-type consistent".parse()?,
    )?;

    // The warm-up batches: keys grouped by the server each proxy picks.
    let mut batches: BTreeMap<String, usize> = BTreeMap::new();
    for key in &keys {
        let k = key.as_bytes();
        *batches
            .entry(format!(
                "twemproxy {}",
                memcached.server_for(k).point_name()
            ))
            .or_default() += 1;
        if let Some(s) = http.server_for(k) {
            *batches
                .entry(format!("nginx     {}", s.address()))
                .or_default() += 1;
        }
        if let Some(s) = sessions.server_for(k) {
            *batches
                .entry(format!("haproxy   {}", s.name()))
                .or_default() += 1;
        }
    }
    println!(
        "warm-up batches for {} keys, by the proxy's own placement:",
        keys.len()
    );
    for (server, n) in &batches {
        println!("  {server:<28} {n:>6} keys");
    }

    // One server fails: which warmed keys does each proxy now send
    // elsewhere? (twemproxy ejects it; nginx and HAProxy mark it down.)
    // A key that moves between two servers that stayed up is warm-up work
    // wasted.
    let report = |what: &str,
                  failed: &str,
                  before: &dyn Fn(&[u8]) -> String,
                  after: &dyn Fn(&[u8]) -> String| {
        let (mut held, mut stray) = (0, 0);
        for k in &keys {
            let (b, a) = (before(k.as_bytes()), after(k.as_bytes()));
            if b == failed {
                held += 1;
            } else if b != a {
                stray += 1;
            }
        }
        let pct = |n: usize| n as f64 * 100.0 / keys.len() as f64;
        println!(
            "  {what:<28} its {:4.1} % of keys move; {:4.1} % move between servers that stayed",
            pct(held),
            pct(stray)
        );
    };
    let ejected = memcached.without("mc-b")?;
    let http_down = http.with_down("10.0.2.2:8080")?;
    let sessions_down = sessions.with_down("s2")?;
    let name = |s: Option<&str>| s.unwrap_or("-").to_string();
    println!("\none server fails:");
    report(
        "twemproxy ejects mc-b:",
        "mc-b",
        &|k| memcached.server_for(k).point_name().to_string(),
        &|k| ejected.server_for(k).point_name().to_string(),
    );
    report(
        "nginx marks 10.0.2.2 down:",
        "10.0.2.2:8080",
        &|k| name(http.server_for(k).map(|s| s.address())),
        &|k| name(http_down.server_for(k).map(|s| s.address())),
    );
    report(
        "haproxy marks s2 down:",
        "s2",
        &|k| name(sessions.server_for(k).map(|s| s.name())),
        &|k| name(sessions_down.server_for(k).map(|s| s.name())),
    );
    // twemproxy's strays: ketama recomputes every server's point count
    // from the new total weight, so some points of the servers that stayed
    // move too.
    Ok(())
}
