//! weft's twemproxy placement against a real nutcracker: pools of every
//! distribution and hash in front of fake Redis backends that answer each
//! `GET` with their own port, so the proxy's own choice of server is read
//! back key by key and compared with `Twemproxy::server_for`.
//!
//! Needs `nutcracker` (Debian package `nutcracker`); skipped loudly without
//! it, and failed under `CI=true`.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use weft_shard::compat::{Distribution, Ketama, Twemproxy, TwemproxyHash, TwemproxyServer};

/// A fake Redis that answers every command with its own port as a bulk
/// string.
async fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, port));
        }
    });
    port
}

async fn answer(stream: TcpStream, port: u16) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let reply = format!("${}\r\n{port}\r\n", port.to_string().len());
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
        for _ in 0..n {
            let mut len = String::new();
            stream.read_line(&mut len).await?;
            let len: usize = len.trim_start_matches('$').trim().parse().unwrap_or(0);
            let mut arg = vec![0; len + 2];
            stream.read_exact(&mut arg).await?;
        }
        stream.get_mut().write_all(reply.as_bytes()).await?;
    }
}

/// Sends `GET key` for every key through the proxy on `port`, pipelined,
/// and returns the backend port that answered each.
async fn routed(port: u16, keys: &[Vec<u8>]) -> Vec<u16> {
    let answers = answers(port, keys).await;
    keys.iter()
        .zip(answers)
        .map(|(key, a)| a.unwrap_or_else(|e| panic!("key {key:?}: the proxy answered {e:?}")))
        .collect()
}

/// As [`routed`], an error reply (a dead backend) as `Err` with its text.
async fn answers(port: u16, keys: &[Vec<u8>]) -> Vec<Result<u16, String>> {
    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let mut request = Vec::new();
    for key in keys {
        request.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n", key.len()).as_bytes());
        request.extend_from_slice(key);
        request.extend_from_slice(b"\r\n");
    }
    stream.get_mut().write_all(&request).await.unwrap();
    let mut ports = Vec::with_capacity(keys.len());
    for _ in keys {
        let mut head = String::new();
        stream.read_line(&mut head).await.unwrap();
        if !head.starts_with('$') {
            ports.push(Err(head));
            continue;
        }
        let mut body = String::new();
        stream.read_line(&mut body).await.unwrap();
        ports.push(Ok(body.trim().parse().unwrap()));
    }
    ports
}

/// Keys of every shape: short and long, tagged, and with bytes ≥ 0x80
/// (which several twemproxy hashes read as signed C chars).
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..300).map(|i| format!("user:{i}").into_bytes()).collect();
    keys.extend((0..60).map(|i| format!("session:{{{}}}:cart", i % 7).into_bytes()));
    keys.extend((0..60u32).map(|i| {
        let mut k = b"k\xff\x80".to_vec();
        k.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        k.extend(std::iter::repeat_n(0xe9, (i % 13) as usize));
        k
    }));
    keys.extend((1..40).map(|n| vec![b'x'; n]));
    keys
}

struct Pool {
    name: String,
    weft: Twemproxy,
    yaml: String,
}

fn pool(
    name: String,
    distribution: Distribution,
    hash: TwemproxyHash,
    tag: Option<&str>,
    servers: &[String],
) -> Pool {
    let weft = Twemproxy::new(
        servers.iter().map(|s| s.parse().unwrap()).collect(),
        distribution,
        hash,
    )
    .unwrap();
    let weft = match tag {
        Some(t) => weft.hash_tag(t).unwrap(),
        None => weft,
    };
    let mut yaml = format!(
        "  hash: {hash}\n  distribution: {distribution}\n  redis: true\n  auto_eject_hosts: false\n"
    );
    if let Some(t) = tag {
        yaml.push_str(&format!("  hash_tag: \"{t}\"\n"));
    }
    yaml.push_str("  servers:\n");
    for s in servers {
        yaml.push_str(&format!("   - {s}\n"));
    }
    Pool { name, weft, yaml }
}

/// A nutcracker serving `pools`, pool `i` on `proxy.port(i)`.
async fn proxy(pools: &[Pool]) -> Option<weft_test::Nutcracker> {
    let specs: Vec<(String, String)> = pools
        .iter()
        .map(|p| (p.name.clone(), p.yaml.clone()))
        .collect();
    weft_test::nutcracker(&specs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_routes_every_key_as_nutcracker_does() {
    let mut ports = Vec::new();
    for _ in 0..5 {
        ports.push(backend().await);
    }
    let named = |weights: &[u32], names: &[&str]| -> Vec<String> {
        names
            .iter()
            .zip(weights)
            .zip(&ports)
            .map(|((n, w), p)| format!("127.0.0.1:{p}:{w} {n}"))
            .collect()
    };
    let mut pools = Vec::new();
    for hash in TwemproxyHash::ALL {
        // Names listed out of twemproxy's order (length, then bytes), so
        // modula's residues show that order.
        pools.push(pool(
            format!("ketama_{hash}"),
            Distribution::Ketama,
            hash,
            None,
            &named(
                &[1, 2, 1, 3, 1],
                &["zeta", "al", "beta", "a1", "cache-long-name"],
            ),
        ));
        pools.push(pool(
            format!("modula_{hash}"),
            Distribution::Modula,
            hash,
            None,
            &named(&[1, 2, 1, 1], &["zeta", "b", "al", "aaa"]),
        ));
    }
    let unnamed: Vec<String> = ports
        .iter()
        .zip([1, 1, 2, 1, 1])
        .map(|(p, w)| format!("127.0.0.1:{p}:{w}"))
        .collect();
    pools.push(pool(
        "ketama_md5_unnamed".into(),
        Distribution::Ketama,
        TwemproxyHash::Md5,
        None,
        &unnamed,
    ));
    pools.push(pool(
        "ketama_tagged".into(),
        Distribution::Ketama,
        TwemproxyHash::Fnv1a_64,
        Some("{}"),
        &named(&[1, 1, 1, 1, 1], &["s1", "s2", "s3", "s4", "s5"]),
    ));
    pools.push(pool(
        "modula_tagged".into(),
        Distribution::Modula,
        TwemproxyHash::Murmur,
        Some("::"),
        &named(&[3, 1, 2], &["s1", "s2", "s3"]),
    ));

    let Some(proxy) = proxy(&pools).await else {
        return;
    };
    let keys = keys();
    let mut checked = 0;
    // WEFT_RECORD_TWEMPROXY=<file> writes what nutcracker answered for the
    // pools whose servers are all named (their placement does not depend
    // on the ports), as the golden file tests/data/twemproxy.tsv.
    let mut record = std::env::var("WEFT_RECORD_TWEMPROXY").ok().map(|path| {
        let mut out = String::from(
            "# twemproxy placements: what nutcracker 0.5.0 (Debian 0.5.0+dfsg-2, amd64) answered,\n\
             # recorded by tests/twemproxy_live.rs with WEFT_RECORD_TWEMPROXY set.\n\
             # pool lines: name, distribution, hash, hash tag (- for none), servers as name=weight;\n\
             # then key (hex) and the server's name.\n",
        );
        out.reserve(1 << 20);
        (path, out)
    });
    for (i, pool) in pools.iter().enumerate() {
        let by_port: HashMap<String, &TwemproxyServer> = pool
            .weft
            .servers()
            .iter()
            .map(|s| (s.address().to_string(), s))
            .collect();
        let answered = routed(proxy.port(i), &keys).await;
        let named = pool.weft.servers().iter().all(|s| s.name().is_some());
        if let (Some((_, out)), true) = (record.as_mut(), named) {
            let servers: Vec<String> = pool
                .weft
                .servers()
                .iter()
                .map(|s| format!("{}={}", s.point_name(), s.weight()))
                .collect();
            let tag = pool
                .yaml
                .split("hash_tag: \"")
                .nth(1)
                .map_or("-", |t| &t[..2]);
            out.push_str(&format!(
                "pool\t{}\t{}\t{}\t{tag}\t{}\n",
                pool.name,
                pool.weft.distribution(),
                pool.weft.hash(),
                servers.join(",")
            ));
            // Every third key keeps the file small and every shape in it.
            for (key, port) in keys.iter().zip(&answered).step_by(3) {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let name = by_port[&format!("127.0.0.1:{port}")].point_name();
                out.push_str(&format!("{hex}\t{name}\n"));
            }
        }
        for (key, port) in keys.iter().zip(answered) {
            let proxy_server = by_port[&format!("127.0.0.1:{port}")];
            let weft_server = pool.weft.server_for(key);
            assert_eq!(
                weft_server.point_name(),
                proxy_server.point_name(),
                "pool {}: key {key:?} went to {} through nutcracker",
                pool.name,
                proxy_server
            );
            checked += 1;
        }
    }
    assert_eq!(checked, pools.len() * keys.len());
    if let Some((path, out)) = record {
        std::fs::write(path, out).unwrap();
    }

    // With hash: md5 and no names, twemproxy's ketama is libmemcached's.
    let md5 = &pools[pools.len() - 3];
    let members = unnamed
        .iter()
        .map(|s| {
            let (addr, w) = s.rsplit_once(':').unwrap();
            format!("{addr}={w}")
        })
        .collect::<Vec<_>>()
        .join(",");
    let libmemcached = Ketama::new(members.parse().unwrap()).unwrap();
    for key in &keys {
        assert_eq!(
            libmemcached.server_for(key),
            md5.weft.server_for(key).address()
        );
    }
}

/// A pool with a dead server: once nutcracker has ejected it
/// (`auto_eject_hosts`), it routes every key as `Twemproxy::without` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_server_routes_like_the_pool_without_it() {
    let mut ports = Vec::new();
    for _ in 0..4 {
        ports.push(backend().await);
    }
    // A port nothing listens on: bound but not listening, and held for the
    // whole test, so that no other test's server can take it meanwhile (a
    // port closed at once could be handed out again, and the "dead" server
    // would answer).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = reserved.local_addr().unwrap().port();
    let mut servers: Vec<String> = ports
        .iter()
        .zip(["a", "b", "c", "d"])
        .map(|(p, n)| format!("127.0.0.1:{p}:1 {n}"))
        .collect();
    servers.insert(2, format!("127.0.0.1:{dead}:1 gone"));
    let mut pools = Vec::new();
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        let mut p = pool(
            format!("ejecting_{distribution}"),
            distribution,
            TwemproxyHash::Fnv1a_64,
            None,
            &servers,
        );
        p.yaml = p.yaml.replace(
            "auto_eject_hosts: false",
            "auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000",
        );
        pools.push(p);
    }
    let Some(proxy) = proxy(&pools).await else {
        return;
    };
    let keys = keys();
    for (i, pool) in pools.iter().enumerate() {
        let live = pool.weft.without("gone").unwrap();
        // Until nutcracker has seen the dead server fail and rebuilt the
        // pool, some keys get an error; a bounded number of passes.
        let mut answered = None;
        for _ in 0..50 {
            let pass = answers(proxy.port(i), &keys).await;
            if pass.iter().all(Result::is_ok) {
                answered = Some(pass);
                break;
            }
        }
        let answered =
            answered.unwrap_or_else(|| panic!("{}: never ejected the dead server", pool.name));
        let mut moved = 0;
        for (key, port) in keys.iter().zip(answered) {
            let port = port.unwrap();
            let want = live.server_for(key);
            assert_eq!(
                want.address(),
                format!("127.0.0.1:{port}"),
                "{}: {key:?}",
                pool.name
            );
            moved += usize::from(pool.weft.server_for(key).point_name() != want.point_name());
        }
        assert!(moved > 0, "{}: the dead server owned no key", pool.name);
    }
    drop(reserved);
}
