//! `weft route`: one result per key.

use std::io::{BufRead, Write};

use weft_core::{Sharder, key_hash};
use weft_shard::compat::{
    COUCHBASE_VBUCKETS, CouchbaseMap, Distribution, Elasticsearch, EnvoyMaglev, EnvoyRing,
    EnvoyRingHashFn, Groupcache, Haproxy, HaproxyServer, Ketama, NginxHash, NginxHashMode,
    ScyllaNode, Twemproxy, TwemproxyServer, cassandra_token, couchbase_vbucket,
    guava_consistent_hash, kafka_partition, librdkafka_consistent_random, redis_slot, sarama_hash,
};
use weft_shard::{Jump, LevelJump, Maglev, Members, Memento, Modulo, Rendezvous, Ring};

use crate::args::Args;

/// How keys on the command line are turned into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFormat {
    Utf8,
    Hex,
    U64,
}

/// A key as decoded: its bytes, and its integer value for `u64` keys.
struct Key {
    bytes: Vec<u8>,
    int: Option<u64>,
}

type Route = Box<dyn Fn(&Key) -> Result<String, String>>;

pub(crate) fn run(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(
        argv,
        &[
            "scheme",
            "shards",
            "members",
            "routing-shards",
            "key-format",
            "servers",
            "distribution",
            "hash",
            "hash-tag",
            "hash-type",
            "balance",
            "peers",
            "replicas",
            "vbuckets",
            "vbucket-map",
            "ignore-msb",
            "hosts",
            "min-ring-size",
            "max-ring-size",
            "hash-function",
            "table-size",
            "load-assignment",
            "hash-by",
            "allbackups",
        ],
    )?;
    let scheme = args
        .get("scheme")
        .ok_or("route needs --scheme SCHEME (try 'weft --help')")?;
    let format = match args.get("key-format") {
        None if scheme == "guava" => KeyFormat::U64,
        None | Some("utf8") => KeyFormat::Utf8,
        Some("hex") => KeyFormat::Hex,
        Some("u64") => KeyFormat::U64,
        Some(other) => return Err(format!("unknown --key-format {other:?} (utf8, hex or u64)")),
    };
    let route = router(scheme, &args, format)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |raw: &str| -> Result<(), String> {
        let key = decode(raw, format)?;
        let result = route(&key)?;
        writeln!(out, "{raw}\t{result}").map_err(|e| format!("cannot write output: {e}"))
    };
    if args.positional.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| format!("cannot read stdin: {e}"))?;
            emit(line.strip_suffix('\r').unwrap_or(&line))?;
        }
    } else {
        for raw in &args.positional {
            emit(raw)?;
        }
    }
    out.flush().map_err(|e| format!("cannot write output: {e}"))
}

fn decode(raw: &str, format: KeyFormat) -> Result<Key, String> {
    match format {
        KeyFormat::Utf8 => Ok(Key {
            bytes: raw.as_bytes().to_vec(),
            int: None,
        }),
        KeyFormat::Hex => {
            let digits = raw.trim().as_bytes();
            // Digits only: no sign, no prefix, no other characters (which
            // could also split a multi-byte character).
            if let Some(bad) = raw.trim().chars().find(|c| !c.is_ascii_hexdigit()) {
                return Err(format!(
                    "key {raw:?} is not hex: {bad:?} is not a hex digit"
                ));
            }
            if !digits.len().is_multiple_of(2) {
                return Err(format!("key {raw:?} is not hex: odd number of digits"));
            }
            let nibble = |d: u8| char::from(d).to_digit(16).unwrap_or(0) as u8;
            let bytes = digits
                .chunks_exact(2)
                .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
                .collect();
            Ok(Key { bytes, int: None })
        }
        KeyFormat::U64 => {
            let v: u64 = raw
                .trim()
                .parse()
                .map_err(|_| format!("key {raw:?} is not a decimal u64"))?;
            Ok(Key {
                bytes: v.to_le_bytes().to_vec(),
                int: Some(v),
            })
        }
    }
}

fn shards(args: &Args, scheme: &str) -> Result<u32, String> {
    args.parsed::<u32>("shards")?
        .ok_or_else(|| format!("scheme {scheme} needs --shards N"))
}

/// The member list from `--members`, or `0..n` from `--shards`.
fn members(args: &Args, scheme: &str) -> Result<Members, String> {
    match (args.get("members"), args.parsed::<u32>("shards")?) {
        (Some(_), Some(_)) => Err("give --shards or --members, not both".into()),
        (Some(list), None) => list.parse().map_err(|e| format!("--members: {e}")),
        (None, Some(n)) if n > 0 => {
            Members::named((0..n).map(|i| i.to_string())).map_err(|e| e.to_string())
        }
        (None, Some(_)) => Err("--shards must be at least 1".into()),
        (None, None) => Err(format!(
            "scheme {scheme} needs --shards N or --members LIST"
        )),
    }
}

/// Schemes whose answer does not depend on a shard count refuse one
/// rather than ignore it.
fn fixed_slots(args: &Args, scheme: &str, answer: &str) -> Result<(), String> {
    for flag in ["shards", "members"] {
        if args.get(flag).is_some() {
            return Err(format!(
                "--{flag} does not apply to --scheme {scheme}: it answers with {answer}"
            ));
        }
    }
    Ok(())
}

fn bytes_only(scheme: &str, format: KeyFormat) -> Result<(), String> {
    if format == KeyFormat::U64 {
        return Err(format!(
            "scheme {scheme} hashes key bytes: use --key-format utf8 or hex"
        ));
    }
    Ok(())
}

fn named_route<S: Sharder + 'static>(sharder: S, members: Members) -> Route {
    Box::new(move |k: &Key| {
        let id = sharder.shard_for_hash(key_hash(k.bytes.as_slice()));
        Ok(members
            .get(id)
            .map_or_else(|| id.to_string(), |m| m.name.clone()))
    })
}

/// Flags that only some schemes take.
const SCHEME_FLAGS: &[(&str, &[&str])] = &[
    ("routing-shards", &["elasticsearch"]),
    ("servers", &["twemproxy", "haproxy", "nginx"]),
    ("distribution", &["twemproxy"]),
    ("hash", &["twemproxy"]),
    ("hash-tag", &["twemproxy"]),
    ("hash-type", &["haproxy", "nginx"]),
    ("balance", &["haproxy"]),
    ("allbackups", &["haproxy"]),
    ("peers", &["groupcache"]),
    ("replicas", &["groupcache"]),
    ("vbuckets", &["couchbase"]),
    ("vbucket-map", &["couchbase"]),
    ("ignore-msb", &["scylla"]),
    ("hosts", &["envoy-ring", "envoy-maglev"]),
    ("min-ring-size", &["envoy-ring"]),
    ("max-ring-size", &["envoy-ring"]),
    ("hash-function", &["envoy-ring"]),
    ("table-size", &["envoy-maglev"]),
    ("load-assignment", &["envoy-ring", "envoy-maglev"]),
    ("hash-by", &["envoy-ring", "envoy-maglev"]),
];

/// `--servers`: the system's server lines, separated by commas (or, for
/// nginx, its own `;`).
fn server_lines<'a>(args: &'a Args, scheme: &str, example: &str) -> Result<&'a str, String> {
    args.get("servers")
        .ok_or_else(|| format!("scheme {scheme} needs --servers {example}"))
}

fn router(scheme: &str, args: &Args, format: KeyFormat) -> Result<Route, String> {
    let err = |e: weft_shard::ShardError| e.to_string();
    for (flag, schemes) in SCHEME_FLAGS {
        if args.get(flag).is_some() && !schemes.contains(&scheme) {
            return Err(format!(
                "--{flag} only applies to --scheme {}",
                schemes.join(" or ")
            ));
        }
    }
    Ok(match scheme {
        "default" | "level-jump" if args.get("members").is_some() => {
            let m = members(args, scheme)?;
            let f = LevelJump::new(m.len() as u32).map_err(err)?;
            named_route(f, m)
        }
        "default" | "level-jump" => {
            let f = LevelJump::new(shards(args, scheme)?).map_err(err)?;
            Box::new(move |k| {
                Ok(f.shard_for_hash(key_hash(k.bytes.as_slice()))
                    .get()
                    .to_string())
            })
        }
        "modulo" => {
            let f = Modulo::new(shards(args, scheme)?).map_err(err)?;
            Box::new(move |k| {
                Ok(f.shard_for_hash(key_hash(k.bytes.as_slice()))
                    .get()
                    .to_string())
            })
        }
        "jump" => {
            let f = Jump::new(shards(args, scheme)?).map_err(err)?;
            Box::new(move |k| {
                Ok(f.shard_for_hash(key_hash(k.bytes.as_slice()))
                    .get()
                    .to_string())
            })
        }
        "rendezvous" => {
            let m = members(args, scheme)?;
            named_route(Rendezvous::new(m.clone()), m)
        }
        "ring" => {
            let m = members(args, scheme)?;
            named_route(Ring::new(m.clone(), Ring::DEFAULT_VNODES).map_err(err)?, m)
        }
        "maglev" => {
            let m = members(args, scheme)?;
            named_route(
                Maglev::new(m.clone(), Maglev::DEFAULT_TABLE_SIZE).map_err(err)?,
                m,
            )
        }
        "memento" => {
            let m = members(args, scheme)?;
            let set = Memento::new(m.iter().map(|x| x.name.clone())).map_err(err)?;
            Box::new(move |k| {
                let id = set.shard_for_hash(key_hash(k.bytes.as_slice()));
                Ok(set.name(id).unwrap_or_default().to_string())
            })
        }
        "kafka" => {
            bytes_only(scheme, format)?;
            let n = shards(args, scheme)?;
            kafka_partition(b"", n).map_err(err)?;
            Box::new(move |k| {
                kafka_partition(&k.bytes, n)
                    .map(|p| p.to_string())
                    .map_err(err)
            })
        }
        "librdkafka" => {
            bytes_only(scheme, format)?;
            let n = shards(args, scheme)?;
            librdkafka_consistent_random(None, n).map_err(err)?;
            Box::new(move |k| {
                librdkafka_consistent_random(Some(&k.bytes), n)
                    .map(|p| p.map_or_else(|| "random".to_string(), |p| p.to_string()))
                    .map_err(err)
            })
        }
        "sarama" => {
            bytes_only(scheme, format)?;
            let n = shards(args, scheme)?;
            sarama_hash(b"", n).map_err(err)?;
            Box::new(move |k| sarama_hash(&k.bytes, n).map(|p| p.to_string()).map_err(err))
        }
        "redis-cluster" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "16384 hash slots")?;
            Box::new(|k| Ok(redis_slot(&k.bytes).to_string()))
        }
        "ketama" => {
            bytes_only(scheme, format)?;
            let list = args
                .get("members")
                .ok_or("scheme ketama needs --members host:port=weight,...")?;
            let m: Members = list.parse().map_err(|e| format!("--members: {e}"))?;
            let ring = Ketama::new(m).map_err(err)?;
            Box::new(move |k| Ok(ring.server_for(&k.bytes).to_string()))
        }
        "twemproxy" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "the server of --servers")?;
            let list = args.get("servers").ok_or(
                "scheme twemproxy needs --servers 'host:port:weight [name],...' (servers: lines)",
            )?;
            let servers = list
                .split(',')
                .map(|line| line.parse::<TwemproxyServer>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--servers: {e}"))?;
            let distribution: Distribution = args
                .get("distribution")
                .unwrap_or("ketama")
                .parse()
                .map_err(|e| format!("--distribution: {e}"))?;
            let hash = args
                .get("hash")
                .unwrap_or("fnv1a_64")
                .parse()
                .map_err(|e| format!("--hash: {e}"))?;
            let mut pool = Twemproxy::new(servers, distribution, hash).map_err(err)?;
            if let Some(tag) = args.get("hash-tag") {
                pool = pool.hash_tag(tag).map_err(|e| format!("--hash-tag: {e}"))?;
            }
            Box::new(move |k| Ok(pool.server_for(&k.bytes).point_name().to_string()))
        }
        "haproxy" => {
            fixed_slots(args, scheme, "the server of --servers")?;
            let lines = server_lines(
                args,
                scheme,
                "'server a 10.0.0.1:80 weight 2,server b 10.0.0.2:80' (server lines)",
            )?;
            let servers = lines
                .split(',')
                .map(|line| line.parse::<HaproxyServer>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--servers: {e}"))?;
            let hash_type = args
                .get("hash-type")
                .unwrap_or("map-based")
                .parse()
                .map_err(|e| format!("--hash-type: {e}"))?;
            let all_backups = match args.get("allbackups").unwrap_or("off") {
                "off" => false,
                "on" => true,
                other => {
                    return Err(format!(
                        "--allbackups {other:?}: on (option allbackups) or off"
                    ));
                }
            };
            let backend = Haproxy::new(servers, hash_type)
                .map_err(err)?
                .all_backups(all_backups);
            let answer = |s: Option<&HaproxyServer>| {
                s.map_or_else(|| "none".to_string(), |s| s.name().to_string())
            };
            match args.get("balance").unwrap_or("key") {
                "key" => {
                    bytes_only(scheme, format)?;
                    Box::new(move |k| Ok(answer(backend.server_for(&k.bytes))))
                }
                "source" => {
                    if format != KeyFormat::Utf8 {
                        return Err("--balance source takes client addresses as text keys".into());
                    }
                    Box::new(move |k| {
                        let text = String::from_utf8_lossy(&k.bytes);
                        let addr: std::net::IpAddr = text.trim().parse().map_err(|_| {
                            format!("key {text:?} is not an IP address (--balance source)")
                        })?;
                        Ok(answer(backend.server_for_source(addr)))
                    })
                }
                other => {
                    return Err(format!(
                        "unknown --balance {other:?} (key: the bytes hdr()/url_param/uri hash; source: client addresses)"
                    ));
                }
            }
        }
        "nginx" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "the server of --servers")?;
            let lines = server_lines(
                args,
                scheme,
                "'server 10.0.0.1:80 weight=2; server 10.0.0.2:80' (server lines)",
            )?;
            let mode = match args.get("hash-type").unwrap_or("plain") {
                "plain" => NginxHashMode::Plain,
                "consistent" => NginxHashMode::Consistent,
                other => {
                    return Err(format!(
                        "--hash-type: unknown nginx hash {other:?} (plain: hash $key; consistent: hash $key consistent)"
                    ));
                }
            };
            let upstream = NginxHash::parse_servers(&lines.replace(',', ";"), mode)
                .map_err(|e| format!("--servers: {e}"))?;
            Box::new(move |k| {
                Ok(upstream
                    .server_for(&k.bytes)
                    .map_or_else(|| "round-robin".to_string(), |s| s.address().to_string()))
            })
        }
        "groupcache" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "the peer of --peers")?;
            let peers = args.get("peers").ok_or(
                "scheme groupcache needs --peers 'http://10.0.0.1:8080,http://10.0.0.2:8080'",
            )?;
            let replicas = args
                .parsed::<usize>("replicas")?
                .unwrap_or(Groupcache::DEFAULT_REPLICAS);
            let pool = Groupcache::new(peers.split(',').map(str::trim), replicas).map_err(err)?;
            Box::new(move |k| Ok(pool.peer_for(&k.bytes).to_string()))
        }
        "couchbase" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "a vBucket (or its server with --vbucket-map)")?;
            match args.get("vbucket-map") {
                Some(path) => {
                    if args.get("vbuckets").is_some() {
                        return Err(
                            "give --vbuckets or --vbucket-map, not both: the map has its own count"
                                .into(),
                        );
                    }
                    let json = std::fs::read_to_string(path)
                        .map_err(|e| format!("--vbucket-map {path}: {e}"))?;
                    let map = CouchbaseMap::from_json(&json)
                        .map_err(|e| format!("--vbucket-map {path}: {e}"))?;
                    Box::new(move |k| {
                        Ok(format!(
                            "{}\t{}",
                            map.vbucket(&k.bytes),
                            map.server_for(&k.bytes).unwrap_or("none")
                        ))
                    })
                }
                None => {
                    let n = args
                        .parsed::<u32>("vbuckets")?
                        .unwrap_or(COUCHBASE_VBUCKETS);
                    couchbase_vbucket(b"", n).map_err(err)?;
                    Box::new(move |k| {
                        couchbase_vbucket(&k.bytes, n)
                            .map(|v| v.to_string())
                            .map_err(err)
                    })
                }
            }
        }
        "scylla" => {
            bytes_only(scheme, format)?;
            if args.get("members").is_some() {
                return Err(
                    "--members does not apply to --scheme scylla: give the node's --shards".into(),
                );
            }
            let node = ScyllaNode::new(
                shards(args, scheme)?,
                args.parsed::<u32>("ignore-msb")?
                    .unwrap_or(ScyllaNode::DEFAULT_IGNORE_MSB),
            )
            .map_err(err)?;
            Box::new(move |k| Ok(node.shard_for_key(&k.bytes).to_string()))
        }
        "envoy-ring" | "envoy-maglev" => {
            fixed_slots(args, scheme, "the host of --hosts")?;
            let by_hostname = match args.get("hash-by").unwrap_or("address") {
                "address" => false,
                "hostname" => true,
                other => {
                    return Err(format!(
                        "unknown --hash-by {other:?} (address, or hostname for use_hostname_for_hashing)"
                    ));
                }
            };
            let hosts = match (args.get("hosts"), args.get("load-assignment")) {
                (Some(_), Some(_)) => {
                    return Err("give --hosts or --load-assignment, not both".into());
                }
                (Some(list), None) => {
                    if args.get("hash-by").is_some() {
                        return Err("--hash-by applies to --load-assignment; --hosts already gives the keys".into());
                    }
                    weft_shard::compat::parse_envoy_hosts(list)
                        .map_err(|e| format!("--hosts: {e}"))?
                }
                (None, Some(path)) => {
                    let json = std::fs::read_to_string(path)
                        .map_err(|e| format!("--load-assignment {path}: {e}"))?;
                    weft_shard::compat::parse_envoy_load_assignment(&json, by_hostname)
                        .map_err(|e| format!("--load-assignment {path}: {e}"))?
                }
                (None, None) => {
                    return Err(format!(
                        "scheme {scheme} needs --hosts '10.0.0.1:80=2,10.0.0.2:80' (the key Envoy hashes for each host, =weight) or --load-assignment FILE (a ClusterLoadAssignment as JSON)"
                    ));
                }
            };
            let pick: Box<dyn Fn(u64) -> String> = if scheme == "envoy-ring" {
                let hash = match args.get("hash-function").unwrap_or("xx_hash") {
                    "xx_hash" | "XX_HASH" => EnvoyRingHashFn::XxHash,
                    "murmur_hash_2" | "MURMUR_HASH_2" => EnvoyRingHashFn::MurmurHash2,
                    other => {
                        return Err(format!(
                            "--hash-function: unknown Envoy ring hash {other:?} (xx_hash or murmur_hash_2)"
                        ));
                    }
                };
                let ring = EnvoyRing::new(
                    hosts,
                    args.parsed::<u64>("min-ring-size")?
                        .unwrap_or(EnvoyRing::DEFAULT_MIN_SIZE),
                    args.parsed::<u64>("max-ring-size")?
                        .unwrap_or(EnvoyRing::DEFAULT_MAX_SIZE),
                    hash,
                )
                .map_err(err)?;
                Box::new(move |h| ring.host_for_hash(h).key().to_string())
            } else {
                let table = EnvoyMaglev::new(
                    hosts,
                    args.parsed::<u64>("table-size")?
                        .unwrap_or(EnvoyMaglev::DEFAULT_TABLE_SIZE),
                )
                .map_err(err)?;
                Box::new(move |h| table.host_for_hash(h).key().to_string())
            };
            // u64 keys are request hashes as Envoy computed them; other keys
            // are the hashed value, through xxHash64.
            Box::new(move |k| {
                Ok(pick(k.int.unwrap_or_else(|| {
                    weft_shard::compat::xxhash64(&k.bytes, 0)
                })))
            })
        }
        "guava" => {
            if format != KeyFormat::U64 {
                return Err("scheme guava takes decimal u64 keys (--key-format u64)".into());
            }
            let n = shards(args, scheme)?;
            guava_consistent_hash(0, n).map_err(err)?;
            Box::new(move |k| {
                let input = k.int.ok_or("guava needs a u64 key")?;
                guava_consistent_hash(input, n)
                    .map(|b| b.to_string())
                    .map_err(err)
            })
        }
        "cassandra" => {
            bytes_only(scheme, format)?;
            fixed_slots(args, scheme, "a token, not a shard")?;
            Box::new(|k| Ok(cassandra_token(&k.bytes).to_string()))
        }
        "elasticsearch" => {
            let n = shards(args, scheme)?;
            let index = match args.parsed::<u32>("routing-shards")? {
                Some(r) => Elasticsearch::with_routing_shards(n, r),
                None => Elasticsearch::new(n),
            }
            .map_err(err)?;
            Box::new(move |k| {
                let routing = std::str::from_utf8(&k.bytes)
                    .map_err(|_| "elasticsearch routing values must be UTF-8 text".to_string())?;
                Ok(index.shard(routing).to_string())
            })
        }
        other => return Err(format!("unknown scheme {other:?} (try 'weft --help')")),
    })
}
