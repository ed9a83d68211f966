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
  guava                 Guava consistentHash (bucket; key is a decimal u64)
  cassandra             Murmur3Partitioner token (signed decimal)
  elasticsearch         document shard (--shards, optional --routing-shards)

--members is a comma-separated list of name or name=weight.
bench-hash algorithms: floor, modulo, jump, level-jump, memento, rendezvous,
ring, maglev (default: all).";

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
