//! The `weft` command: route keys through a sharding function or a real
//! system's partitioner, and benchmark sharding functions.

mod args;
mod bench;
mod route;
mod svg;

use std::process::ExitCode;

const USAGE: &str = "\
usage:
  weft route --scheme SCHEME [--shards N | --members LIST] [--routing-shards R]
             [--key-format utf8|hex|u64] [KEY ...]
  weft route --scheme twemproxy --servers LINES [--distribution ketama|modula]
             [--hash HASH] [--hash-tag XY] [KEY ...]
  weft route --scheme haproxy --servers LINES [--hash-type 'consistent djb2 avalanche']
             [--balance key|source] [--allbackups on|off] [KEY ...]
  weft route --scheme nginx --servers LINES [--hash-type plain|consistent] [KEY ...]
  weft route --scheme groupcache --peers LIST [--replicas 50] [KEY ...]
  weft route --scheme couchbase [--vbuckets 1024 | --vbucket-map FILE] [KEY ...]
  weft route --scheme scylla --shards N [--ignore-msb 12] [KEY ...]
  weft route --scheme envoy-ring (--hosts LIST | --load-assignment FILE)
             [--min-ring-size 1024] [--max-ring-size 8388608]
             [--hash-function xx_hash|murmur_hash_2] [KEY ...]
  weft route --scheme envoy-maglev (--hosts LIST | --load-assignment FILE)
             [--table-size 65537] [KEY ...]
  weft bench-hash [--algos LIST] [--shards 10,100,1000,10000] [--keys N] [--svg PATH]

route prints one line per key: the key as given, a tab, the result. Keys come
from the arguments or, if there are none, one per line from stdin.

schemes:
  default, level-jump   weft's default consistent hash (shard index; member
                        name with --members)
  modulo, jump          hash mod n; jump consistent hash (Guava-compatible)
  rendezvous, ring,     weighted rendezvous, ring (160 points per unit of
  maglev, memento       weight), Maglev (M = 65537), arbitrary-removal set
  kafka                 Java client default partitioner (partition index)
  librdkafka            librdkafka default consistent_random (partition, or
                        'random' for an empty key)
  sarama                Sarama default hash partitioner (partition index)
  redis-cluster         Redis Cluster key slot
  ketama                libmemcached weighted ketama (member name; members as
                        host:port=weight)
  twemproxy             nutcracker's server (point name: the name, else host,
                        or host:port when the port is not 11211); --servers
                        is twemproxy's servers: lines joined by commas
                        ('10.0.0.1:6379:1 a,10.0.0.2:6379:2 b'); default
                        distribution ketama, hash fnv1a_64 (any of twemproxy's
                        twelve); random is refused
  haproxy               HAProxy 2.6's server (name) for a key's bytes (balance
                        hdr()/url_param/uri) or, with --balance source, for a
                        client address; --servers is server lines joined by
                        commas ('server a 10.0.0.1:80 weight 2,...'), with
                        weight, id, disabled and backup; --hash-type as the backend's
                        line (default map-based sdbm); 'none' when no server
                        is up
  nginx                 nginx's upstream server (address) under hash $key
                        (--hash-type plain, the default) or hash $key
                        consistent; --servers is server lines ('server
                        10.0.0.1:80 weight=2; server 10.0.0.2:80 down');
                        'round-robin' where nginx does not hash
  groupcache            groupcache's peer (consistenthash, CRC-32, --replicas
                        default 50); --peers as given to HTTPPool.Set
  couchbase             the key's vBucket (--vbuckets, default 1024); with
                        --vbucket-map FILE (a bucket config's JSON) the vBucket,
                        a tab and its active server ('none' if it has none)
  scylla                the shard of the node owning the key's Murmur3 token
                        (--shards: the node's shard count; --ignore-msb
                        default 12)
  envoy-ring,           Envoy's ring_hash and maglev host (the key it hashes);
  envoy-maglev          --hosts is key=weight,... with each host's address
                        (10.0.0.1:80), hostname or hash_key; keys are the
                        hashed value (xxHash64), or with --key-format u64 the
                        request hash itself; or --load-assignment FILE, a
                        ClusterLoadAssignment as JSON (healthy hosts; keys by
                        hash_key metadata, else --hash-by address|hostname)
  guava                 Guava consistentHash (bucket; key is a decimal u64)
  cassandra             Murmur3Partitioner token (signed decimal)
  elasticsearch         document shard (--shards, optional --routing-shards)

--members is a comma-separated list of name or name=weight.
bench-hash algorithms: floor, modulo, jump, level-jump, memento, rendezvous,
ring, maglev (default: all of these); the real systems' placements, each
hashing the key bytes its own way: twemproxy-ketama, twemproxy-modula,
haproxy-map, haproxy-consistent, nginx, nginx-consistent, groupcache,
envoy-ring, envoy-maglev (or 'compat' for all of them).";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("route") => route::run(&argv[1..]),
        Some("bench-hash") => bench::run(&argv[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?} (try 'weft --help')")),
        None => Err("no command given (try 'weft --help')".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("weft: {message}");
            ExitCode::from(2)
        }
    }
}
