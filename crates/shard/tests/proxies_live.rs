//! weft's nginx and HAProxy placements against the real proxies: each
//! proxy serves its own backends (one listener per backend answering with
//! its port) and, in front of them, one upstream or backend per
//! configuration under test, hashing the `X-Key` header (or, for
//! `balance source`, the client address). Every key is sent through the
//! proxy and the answering port compared with weft's choice.
//!
//! Needs `nginx` (Debian package `nginx-light`) and `haproxy`; skipped
//! loudly without them, and failed under `CI=true`.

use std::net::{IpAddr, Ipv4Addr};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use weft_shard::compat::{Haproxy, NginxHash, NginxHashMode};
use weft_test::{ProxyKind, http_proxy};

/// Backends each proxy serves.
const BACKENDS: usize = 6;

/// Keys of many shapes that are valid header values: no leading or
/// trailing space, no comma (HAProxy's `hdr()` takes the first
/// comma-separated value), and some bytes ≥ 0x80.
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..600).map(|i| format!("user:{i}").into_bytes()).collect();
    keys.extend((0..300).map(|i| format!("/img/{}/{i}.png", i % 17).into_bytes()));
    keys.extend((1..80).map(|n| vec![b'x'; n]));
    keys.extend((0..100u32).map(|i| {
        let mut k = format!("k{i}").into_bytes();
        k.extend(std::iter::repeat_n(0xe9, (i % 5) as usize + 1));
        k.push(b'z');
        k
    }));
    keys
}

/// Sends `GET /` with `X-Key: key` for each key over one keep-alive
/// connection from `source`, 50 requests in flight at a time, and returns
/// the port each answer names (or the status line of an error).
async fn ask(port: u16, source: Ipv4Addr, keys: &[Vec<u8>]) -> Vec<Result<u16, String>> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let stream = socket
        .connect((Ipv4Addr::LOCALHOST, port).into())
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(50) {
        let mut request = Vec::new();
        for key in chunk {
            request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: weft\r\nX-Key: ");
            request.extend_from_slice(key);
            request.extend_from_slice(b"\r\n\r\n");
        }
        stream.get_mut().write_all(&request).await.unwrap();
        for _ in chunk {
            out.push(read_response(&mut stream).await);
        }
    }
    out
}

async fn read_response(stream: &mut BufReader<TcpStream>) -> Result<u16, String> {
    let mut status = String::new();
    stream.read_line(&mut status).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(status.trim_end().to_string());
    }
    String::from_utf8(body)
        .unwrap()
        .trim()
        .parse()
        .map_err(|e| format!("body: {e}"))
}

/// `WEFT_RECORD_PROXIES=<dir>` writes what the proxies answered as
/// `<dir>/nginx.tsv` and `<dir>/haproxy.tsv` (the golden files in
/// tests/data, which tests/compat.rs replays without the proxies). A
/// case line gives the case, its hash type and its server lines joined by
/// `|`; each row below it a key (hex, or a client address) and the port
/// that answered (`-` where nginx used round robin).
struct Record(Option<(String, String)>);

impl Record {
    fn new(file: &str, what: &str) -> Record {
        Record(std::env::var("WEFT_RECORD_PROXIES").ok().map(|dir| {
            let header = format!(
                "# {what}: what the proxy answered, recorded by tests/proxies_live.rs with\n\
                 # WEFT_RECORD_PROXIES set. A case line: case, hash type, server lines joined by |;\n\
                 # then key (hex, or a client address for balance source) and the answering port.\n"
            );
            (format!("{dir}/{file}"), header)
        }))
    }

    fn case(&mut self, kind: &str, hash_type: &str, lines: &str) {
        if let Some((_, out)) = &mut self.0 {
            let lines: Vec<&str> = lines.lines().collect();
            out.push_str(&format!("{kind}\t{hash_type}\t{}\n", lines.join("|")));
        }
    }

    fn row(&mut self, key: &str, answer: &str) {
        if let Some((_, out)) = &mut self.0 {
            out.push_str(&format!("{key}\t{answer}\n"));
        }
    }

    fn save(self) {
        if let Some((path, out)) = self.0 {
            std::fs::write(&path, out).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The backend port an upstream address names: `host:port`,
/// `[::1]:port`, or `unix:<dir>/<port>.sock`.
fn port_of(address: &str) -> u16 {
    match address.strip_prefix("unix:") {
        Some(path) => path
            .rsplit_once('/')
            .unwrap()
            .1
            .trim_end_matches(".sock")
            .parse()
            .unwrap(),
        None => address.rsplit_once(':').unwrap().1.parse().unwrap(),
    }
}

/// An nginx `server` line for backend port `b`: `params` may start with
/// `v6 ` (written `[::1]:b`) or `unix ` (a socket in `dir`), which changes
/// the address consistent hashing hashes.
fn nginx_line(b: u16, params: &str, dir: &str) -> String {
    let (address, params) = if let Some(p) = params.strip_prefix("v6 ") {
        (format!("[::1]:{b}"), p)
    } else if let Some(p) = params.strip_prefix("unix ") {
        (format!("unix:{dir}/{b}.sock"), p)
    } else {
        (format!("127.0.0.1:{b}"), params)
    };
    format!("server {address} {params};\n")
}

/// nginx upstreams under test: mode and `server` line parameters per
/// backend (`None`: not in the upstream).
fn nginx_cases() -> Vec<(NginxHashMode, Vec<Option<&'static str>>)> {
    use NginxHashMode::{Consistent, Plain};
    let all = |p: &'static str| vec![Some(p); 3];
    vec![
        (Plain, all("")),
        (
            Plain,
            vec![
                Some(""),
                Some("weight=2"),
                Some("weight=5"),
                Some("weight=3"),
            ],
        ),
        (
            Plain,
            vec![Some(""), Some("down"), Some("weight=2"), Some("")],
        ),
        (
            Plain,
            vec![Some("down"), Some("down weight=9"), Some("down"), Some("")],
        ),
        (Consistent, all("")),
        (
            Consistent,
            vec![
                Some("v6 "),
                Some("v6 weight=2"),
                Some(""),
                Some("unix "),
                Some("unix weight=3"),
            ],
        ),
        (Plain, vec![Some("unix "), Some("v6 down"), Some("v6 ")]),
        (
            Consistent,
            vec![
                Some(""),
                Some("weight=2"),
                Some("weight=5"),
                Some("weight=3"),
            ],
        ),
        (
            Consistent,
            vec![Some(""), Some("down"), Some("weight=2"), Some("")],
        ),
        (
            Consistent,
            vec![
                None,
                Some("weight=4"),
                None,
                Some(""),
                Some("weight=2"),
                Some(""),
            ],
        ),
    ]
}

#[tokio::test]
async fn weft_routes_every_key_as_nginx_does() {
    let cases = nginx_cases();
    let upstreams = cases.len();
    // Backends also listen on [::1] and on a unix socket named by the port.
    let dir = std::env::temp_dir().join(format!("weft-nginx-sockets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.display().to_string();
    // Ports: one front per upstream, then the backends.
    let config = |ports: &[u16]| {
        let mut conf = String::from("  keepalive_requests 100000;\n");
        for b in &ports[upstreams..] {
            conf.push_str(&format!(
                "  server {{ listen 127.0.0.1:{b}; listen [::1]:{b}; listen unix:{dir}/{b}.sock; return 200 \"{b}\"; }}\n"
            ));
        }
        for (i, (mode, params)) in cases.iter().enumerate() {
            let hash = match mode {
                NginxHashMode::Plain => "hash $http_x_key;",
                NginxHashMode::Consistent => "hash $http_x_key consistent;",
            };
            conf.push_str(&format!("  upstream u{i} {{\n    {hash}\n"));
            for (b, p) in ports[upstreams..].iter().zip(params) {
                if let Some(p) = p {
                    conf.push_str(&format!("    {}", nginx_line(*b, p, &dir)));
                }
            }
            conf.push_str(&format!(
                "  }}\n  server {{ listen 127.0.0.1:{}; location / {{ proxy_pass http://u{i}; }} }}\n",
                ports[i]
            ));
        }
        conf
    };
    let Some(nginx) = http_proxy(ProxyKind::Nginx, upstreams + BACKENDS, upstreams, config).await
    else {
        return;
    };
    let keys = keys();
    let mut record = Record::new(
        "nginx.tsv",
        "nginx 1.22.1 (Debian 1.22.1-9+deb12u11, nginx-light, amd64)",
    );
    for (i, (mode, params)) in cases.iter().enumerate() {
        let lines: String = nginx.ports()[upstreams..]
            .iter()
            .zip(params)
            .filter_map(|(b, p)| p.map(|p| nginx_line(*b, p, &dir)))
            .collect();
        let weft = NginxHash::parse_servers(&lines, *mode).unwrap();
        let answers = ask(nginx.port(i), Ipv4Addr::LOCALHOST, &keys).await;
        let mode_name = match mode {
            NginxHashMode::Plain => "plain",
            NginxHashMode::Consistent => "consistent",
        };
        record.case("upstream", mode_name, &lines);
        let mut round_robin = 0;
        for (key, answer) in keys.iter().zip(answers) {
            match &answer {
                Ok(port) if weft.server_for(key).is_some() => {
                    record.row(&hex(key), &port.to_string())
                }
                _ => record.row(&hex(key), "-"),
            }
            // Where nginx's tries run out it uses round robin, which no
            // client can follow; weft says so with `None`.
            let Some(want) = weft.server_for(key).map(|s| port_of(s.address())) else {
                round_robin += 1;
                continue;
            };
            assert_eq!(
                answer,
                Ok(want),
                "upstream {i} ({mode:?}): key {:?}",
                String::from_utf8_lossy(key)
            );
        }
        // Only the upstream with three of four servers down runs out.
        assert_eq!(
            round_robin > 0,
            i == 3,
            "upstream {i}: {round_robin} keys to round robin"
        );
    }
    record.save();
    drop(nginx);
    std::fs::remove_dir_all(&dir).ok();
}

/// HAProxy backends under test: `hash-type` and `server` line parameters
/// per backend (`None`: not in the backend).
fn haproxy_cases() -> Vec<(&'static str, Vec<Option<&'static str>>)> {
    let all = |p: &'static str| vec![Some(p); 3];
    vec![
        ("map-based", all("")),
        (
            "map-based djb2",
            vec![Some("weight 2"), Some("weight 4"), Some("weight 6")],
        ),
        (
            "map-based wt6 avalanche",
            vec![
                Some(""),
                Some("weight 3"),
                Some("weight 0"),
                Some("weight 5"),
                Some("disabled"),
            ],
        ),
        (
            "map-based crc32",
            vec![Some("weight 256"), Some(""), Some("weight 17")],
        ),
        (
            "map-based sdbm avalanche",
            vec![Some("id 9"), Some(""), Some("id 1"), Some("")],
        ),
        ("consistent", vec![Some(""); 4]),
        (
            "consistent djb2",
            vec![Some("weight 3 id 10"), Some(""), Some("weight 7 id 2")],
        ),
        (
            "consistent wt6 avalanche",
            vec![
                Some(""),
                Some("weight 2"),
                Some("disabled"),
                None,
                Some("weight 0"),
            ],
        ),
        (
            "consistent crc32",
            vec![Some("weight 5"), Some("weight 5"), Some("")],
        ),
        (
            "consistent sdbm",
            vec![Some("id 1"), Some("id 1048577"), Some("weight 2")],
        ),
        (
            "consistent sdbm avalanche",
            vec![Some("weight 256"), Some("weight 1"), Some("")],
        ),
        // Backups: the active servers are down, so the backups take the
        // keys; `+all` adds `option allbackups`.
        (
            "map-based",
            vec![
                Some("disabled"),
                Some("backup weight 2"),
                Some("backup weight 10"),
                Some("backup"),
            ],
        ),
        (
            "consistent",
            vec![
                Some("disabled"),
                Some("backup weight 0"),
                Some("backup weight 2"),
                Some("backup weight 10"),
            ],
        ),
        (
            "map-based djb2 +all",
            vec![
                Some("disabled"),
                Some("backup weight 2"),
                Some("backup weight 3"),
                Some("backup"),
            ],
        ),
        (
            "consistent wt6 +all",
            vec![
                Some("backup"),
                Some("disabled"),
                Some("backup weight 3"),
                Some("backup disabled"),
            ],
        ),
        // Active servers up: the backups take nothing.
        (
            "map-based crc32 +all",
            vec![Some(""), Some("backup weight 9"), Some("weight 2")],
        ),
    ]
}

/// A case's `hash-type` and whether it has `option allbackups` (`+all`).
fn hash_type_of(case: &str) -> (&str, bool) {
    match case.strip_suffix(" +all") {
        Some(t) => (t, true),
        None => (case, false),
    }
}

fn haproxy_lines(backends: &[u16], params: &[Option<&str>]) -> String {
    backends
        .iter()
        .zip(params)
        .enumerate()
        .filter_map(|(n, (b, p))| p.map(|p| format!("server s{n} 127.0.0.1:{b} {p}\n")))
        .collect()
}

/// HAProxy's configuration: backends answering with their port, then one
/// frontend per case hashing `X-Key`, and two `balance source` ones.
fn haproxy_config(ports: &[u16], cases: &[(&str, Vec<Option<&str>>)]) -> String {
    let fronts = cases.len() + 2;
    let mut conf = String::from(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n",
    );
    for b in &ports[fronts..] {
        conf.push_str(&format!(
            "frontend be{b}\n  bind 127.0.0.1:{b}\n  http-request return status 200 content-type text/plain string \"{b}\"\n"
        ));
    }
    let sources = [
        ("map-based", vec![Some(""), Some("weight 2"), Some("")]),
        ("consistent", vec![Some(""), Some("weight 2"), Some("")]),
    ];
    for (i, (hash_type, params)) in cases.iter().chain(&sources).enumerate() {
        let balance = if i < cases.len() {
            "hdr(X-Key)"
        } else {
            "source"
        };
        let (hash_type, all) = hash_type_of(hash_type);
        conf.push_str(&format!(
            "backend pool{i}\n  balance {balance}\n  hash-type {hash_type}\n"
        ));
        if all {
            conf.push_str("  option allbackups\n");
        }
        for line in haproxy_lines(&ports[fronts..], params).lines() {
            conf.push_str(&format!("  {line}\n"));
        }
        conf.push_str(&format!(
            "frontend front{i}\n  bind 127.0.0.1:{}\n  default_backend pool{i}\n",
            ports[i]
        ));
    }
    conf
}

#[tokio::test]
async fn weft_routes_every_key_as_haproxy_does() {
    let cases = haproxy_cases();
    let fronts = cases.len() + 2;
    let Some(haproxy) = http_proxy(ProxyKind::Haproxy, fronts + BACKENDS, fronts, |ports| {
        haproxy_config(ports, &cases)
    })
    .await
    else {
        return;
    };
    let backends = &haproxy.ports()[fronts..];
    let keys = keys();
    let mut record = Record::new(
        "haproxy.tsv",
        "HAProxy 2.6.12 (Debian 2.6.12-1+deb12u4, amd64)",
    );
    for (i, (hash_type, params)) in cases.iter().enumerate() {
        let lines = haproxy_lines(backends, params);
        let (t, all) = hash_type_of(hash_type);
        let weft = Haproxy::parse_servers(&lines, t.parse().unwrap())
            .unwrap()
            .all_backups(all);
        record.case("backend", hash_type, &lines);
        let answers = ask(haproxy.port(i), Ipv4Addr::LOCALHOST, &keys).await;
        for (key, answer) in keys.iter().zip(answers) {
            if let Ok(port) = &answer {
                record.row(&hex(key), &port.to_string());
            }
            let want = weft.server_for(key).map(|s| port_of(s.address())).unwrap();
            assert_eq!(
                answer,
                Ok(want),
                "backend {i} ({hash_type}): key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
    // balance source: clients from many loopback addresses.
    for (i, hash_type) in ["map-based", "consistent"].into_iter().enumerate() {
        let lines = haproxy_lines(backends, &[Some(""), Some("weight 2"), Some("")]);
        let weft = Haproxy::parse_servers(&lines, hash_type.parse().unwrap()).unwrap();
        record.case("source", hash_type, &lines);
        for n in 0..120u32 {
            let source =
                Ipv4Addr::new(127, (n * 37 % 256) as u8, (n * 11 % 256) as u8, 1 + n as u8);
            let answer = ask(haproxy.port(cases.len() + i), source, &[b"-".to_vec()]).await;
            if let Ok(port) = &answer[0] {
                record.row(&source.to_string(), &port.to_string());
            }
            let want = weft
                .server_for_source(IpAddr::V4(source))
                .map(|s| port_of(s.address()))
                .unwrap();
            assert_eq!(answer[0], Ok(want), "source {source} ({hash_type})");
        }
    }
    record.save();
}
