//! Golden vectors from each real system's own tests and docs. Each block
//! cites where its vectors come from.

use weft_shard::compat::*;
use weft_shard::{Members, ShardError};

/// Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
/// (`testMurmur2`); partitions with the Java client's `& 0x7fffffff` mask.
#[test]
fn kafka_murmur2_matches_utils_test() {
    let cases: [(&[u8], i32, u32); 6] = [
        (b"21", -973932308, 0),
        (b"foobar", -790332482, 0),
        (b"a-little-bit-long-string", -985981536, 2),
        (b"a-little-bit-longer-string", -1486304829, 5),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
            5,
        ),
        (b"abc", 479470107, 3),
    ];
    for (key, hash, partition_of_6) in cases {
        assert_eq!(murmur2(key), hash, "{key:?}");
        assert_eq!(kafka_partition(key, 6).unwrap(), partition_of_6, "{key:?}");
        assert_eq!(
            librdkafka_murmur2_random(Some(key), 6).unwrap(),
            Some(partition_of_6)
        );
    }
    assert_eq!(kafka_partition(b"21", 0), Err(ShardError::ZeroShards));
}

/// librdkafka's `consistent_random` is CRC-32 (IEEE); the CRC-32 check
/// value of "123456789" is 0xCBF43926 (the CRC catalogue's check value).
/// An empty key is treated like a null key (random partition), unlike
/// `murmur2_random`, which hashes it (librdkafka issue #4510).
#[test]
fn librdkafka_consistent_random_is_crc32_and_randomises_empty_keys() {
    assert_eq!(
        librdkafka_consistent_random(Some(b"123456789"), 1000).unwrap(),
        Some(0xCBF4_3926 % 1000)
    );
    assert_eq!(librdkafka_consistent_random(Some(b""), 10).unwrap(), None);
    assert_eq!(librdkafka_consistent_random(None, 10).unwrap(), None);
    assert_eq!(
        librdkafka_murmur2_random(Some(b""), 10).unwrap(),
        Some(kafka_partition(b"", 10).unwrap())
    );
    assert_eq!(librdkafka_murmur2_random(None, 10).unwrap(), None);
}

/// FNV-1a 32 vectors from the FNV reference test suite (Fowler, Noll, Vo;
/// `test_fnv.c`): "" → 0x811c9dc5, "a" → 0xe40c292c, "foobar" → 0xbf9cf968.
/// Sarama's default `NewHashPartitioner` takes `int32(h) % n` and negates a
/// negative result; its reference partitioner masks like Java instead.
#[test]
fn sarama_partitioners_use_fnv1a_with_their_own_sign_handling() {
    assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    // int32(0xbf9cf968) = -1080231576; % 7 = -4 in Go (truncating);
    // negated: 4.
    assert_eq!(sarama_hash(b"foobar", 7).unwrap(), 4);
    // (0xbf9cf968 & 0x7fffffff) = 1067252072; % 7 = 5.
    assert_eq!(sarama_reference_hash(b"foobar", 7).unwrap(), 5);
    // int32(0xe40c292c) = -468965076; % 10 = -6 → 6, where the masked
    // reference partitioner gives 2.
    assert_eq!(sarama_hash(b"a", 10).unwrap(), 6);
    assert_eq!(sarama_reference_hash(b"a", 10).unwrap(), 2);
}

/// redis.io: the CLUSTER KEYSLOT command docs (`somekey` → 11058) and the
/// cluster specification's hash-tag rules; `{user1}.following` → 8106 from
/// Dragonfly's cluster docs. CRC16 check value "123456789" → 0x31C3 (the
/// cluster spec's CRC16 reference).
#[test]
fn redis_cluster_slots_match_the_spec() {
    let cases: [(&[u8], u16); 9] = [
        (b"123456789", 0x31C3),
        (b"somekey", 11058),
        (b"foo{hash_tag}", 2515),
        (b"bar{hash_tag}", 2515),
        (b"{user1000}.following", 3443),
        (b"{user1000}.followers", 3443),
        (b"{user1}.following", 8106),
        (b"foo{}{bar}", 8363),
        (b"foo{{bar}}zap", 4015),
    ];
    for (key, slot) in cases {
        assert_eq!(redis_slot(key), slot, "{}", String::from_utf8_lossy(key));
    }
    assert_eq!(redis_slot(b"foo{bar}{zap}"), 5061);
    assert_eq!(redis_slot(b"foo{bar}{zap}"), redis_slot(b"bar"));
}

/// libmemcached `test/fixtures/ketama.hpp`, `ketama_test_cases`: 99 keys
/// with their MD5 key hash, the continuum point they land on and the
/// server, over 8 weighted servers on the default port.
#[test]
fn ketama_matches_libmemcached_99_key_fixture() {
    let members: Members = "10.0.1.1:11211=600,10.0.1.2:11211=300,10.0.1.3:11211=200,\
        10.0.1.4:11211=350,10.0.1.5:11211=1000,10.0.1.6:11211=800,10.0.1.7:11211=950,\
        10.0.1.8:11211=100"
        .parse()
        .unwrap();
    let ring = Ketama::new(members).unwrap();
    assert_eq!(ring.point_count(), 1264);
    let data = include_str!("data/ketama_libmemcached.tsv");
    let mut checked = 0;
    for line in data.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let key = f[0].as_bytes();
        assert_eq!(
            ketama_hash(key),
            f[1].parse::<u32>().unwrap(),
            "hash of {}",
            f[0]
        );
        assert_eq!(
            ring.point_for(key),
            f[2].parse::<u32>().unwrap(),
            "point of {}",
            f[0]
        );
        assert_eq!(
            ring.server_for(key),
            format!("{}:11211", f[3]),
            "server of {}",
            f[0]
        );
        checked += 1;
    }
    assert_eq!(checked, 99);
}

/// libmemcached computes the point count in `f32`: with 25 equal weights,
/// `1/25 · 160 / 4 · 25` rounds to 39.999996 and floors to 39, so each
/// server gets 156 points, not 160. With 8 equal weights it is exact.
#[test]
fn ketama_copies_libmemcached_float_rounding() {
    let members = |n: usize| Members::named((0..n).map(|i| format!("10.1.0.{i}:11211"))).unwrap();
    assert_eq!(Ketama::new(members(25)).unwrap().point_count(), 25 * 156);
    assert_eq!(Ketama::new(members(8)).unwrap().point_count(), 8 * 160);
}

/// Guava `HashingTest.testConsistentHash_linearCongruentialGeneratorCompatibility`
/// (consistentHash(1..=5, 100)) and the go-jump-consistent-hash README
/// example Hash(256, 1024) = 520.
#[test]
fn guava_consistent_hash_matches_guava_tests() {
    let expected = [55, 62, 8, 45, 59];
    for (input, bucket) in (1u64..=5).zip(expected) {
        assert_eq!(guava_consistent_hash(input, 100).unwrap(), bucket);
    }
    assert_eq!(guava_consistent_hash(256, 1024).unwrap(), 520);
    assert_eq!(guava_consistent_hash(7, 0), Err(ShardError::ZeroShards));
}

/// Token vectors from the DataStax drivers' Murmur3 token tests (Python,
/// Ruby, Elixir suites). Two keys have a tail byte ≥ 0x80, where Cassandra's
/// sign extension differs from canonical MurmurHash3.
#[test]
fn cassandra_tokens_match_driver_tests_including_signed_tails() {
    let mixed: Vec<u8> = [0x00, 0xff, 0x10, 0xfa, 0x99].repeat(10);
    let cases: [(&[u8], i64); 5] = [
        (b"123", -7468325962851647638),
        (&mixed, 5837342703291459765),
        (&[0xfe; 8], -8927430733708461935),
        (&[0x10; 8], 1446172840243228796),
        (b"9223372036854775807", 7162290910810015547),
    ];
    for (key, token) in cases {
        assert_eq!(cassandra_token(key), token, "{key:02x?}");
    }
}

#[test]
fn cassandra_token_ring_owner_is_the_first_token_at_or_above() {
    let ring = TokenRing::new(vec![
        (-100, "a".into()),
        (0, "b".into()),
        (100, "c".into()),
        (200, "a".into()),
    ])
    .unwrap();
    assert_eq!(ring.node_for_token(-100), "a");
    assert_eq!(ring.node_for_token(-99), "b");
    assert_eq!(ring.node_for_token(0), "b");
    assert_eq!(ring.node_for_token(150), "a");
    assert_eq!(ring.node_for_token(201), "a"); // wraps to -100
    assert!(TokenRing::new(vec![]).is_err());
    assert!(TokenRing::new(vec![(1, "a".into()), (1, "b".into())]).is_err());
}

/// Elasticsearch `Murmur3HashFunctionTests` (server/src/test/java/org/
/// elasticsearch/cluster/routing/Murmur3HashFunctionTests.java).
#[test]
fn elasticsearch_routing_hash_matches_murmur3_hash_function_tests() {
    let cases = [
        ("", 0x00000000u32),
        ("h", 0x3fb8ba02),
        ("hell", 0x5a0cb7c3),
        ("hello", 0xd7c31989),
        ("hello w", 0x22ab2984),
        ("hello wo", 0xdf0ca123),
        ("hello wor", 0xe7744d61),
        ("hello world", 0x64b256a4),
        ("The quick brown fox jumps over the lazy dog", 0xe07db09c),
        ("The quick brown fox jumps over the lazy cog", 0x4e63d2ad),
    ];
    for (routing, hash) in cases {
        assert_eq!(routing_hash(routing) as u32, hash, "{routing:?}");
    }
}

/// The 7.0+ default `number_of_routing_shards` and the routing factor, from
/// `MetadataCreateIndexService.calculateNumRoutingShards` and
/// `IndexRouting`.
#[test]
fn elasticsearch_shards_use_routing_shards_and_factor() {
    let five = Elasticsearch::new(5).unwrap();
    assert_eq!(five.routing_shards(), 640);
    assert_eq!(five.shard("hell"), 1);
    assert_eq!(five.shard("hello"), 4);
    assert_eq!(Elasticsearch::new(1).unwrap().routing_shards(), 1024);
    assert_eq!(Elasticsearch::new(600).unwrap().routing_shards(), 1200);
    // Before 7.0: routing shards = shards, so plain floorMod.
    let old = Elasticsearch::with_routing_shards(5, 5).unwrap();
    assert_eq!(
        old.shard("hello"),
        (0xd7c31989u32 as i32).rem_euclid(5) as u32
    );
    assert_eq!(
        Elasticsearch::with_routing_shards(5, 12),
        Err(ShardError::RoutingShards {
            routing_shards: 12,
            shards: 5
        })
    );
    // With a routing partition, the id's hash offsets the routing value.
    let parted = five.with_partition_size(3).unwrap();
    let offset = routing_hash("doc-1").rem_euclid(3);
    let expected =
        (routing_hash("user-7").wrapping_add(offset) as i64).rem_euclid(640) as u32 / 128;
    assert_eq!(parted.shard_for_document(Some("user-7"), "doc-1"), expected);
}

#[test]
fn elasticsearch_partition_sizes_the_index_would_refuse_are_errors() {
    use weft_shard::compat::Elasticsearch;
    let index = || Elasticsearch::new(5).unwrap();
    for size in [0, 5, 6, u32::MAX] {
        assert!(
            matches!(
                index().with_partition_size(size),
                Err(ShardError::PartitionSize { .. })
            ),
            "{size}"
        );
    }
    assert!(index().with_partition_size(1).is_ok());
    assert!(index().with_partition_size(4).is_ok());
    assert!(
        Elasticsearch::new(1)
            .unwrap()
            .with_partition_size(1)
            .is_ok()
    );
}

/// Placements recorded from a real nutcracker 0.5.0 (see
/// `tests/twemproxy_live.rs`, which also checks them live when nutcracker
/// is installed): ketama and modula under every `hash:`, named and
/// weighted servers listed out of pool order, hash tags.
#[test]
fn twemproxy_matches_nutcrackers_recorded_placements() {
    use weft_shard::compat::{Twemproxy, TwemproxyServer};
    let data = include_str!("data/twemproxy.tsv");
    let mut pool: Option<(String, Twemproxy)> = None;
    let (mut pools, mut keys) = (0, 0);
    for line in data.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] == "pool" {
            let servers = f[5]
                .split(',')
                .enumerate()
                .map(|(i, s)| {
                    let (name, weight) = s.rsplit_once('=').unwrap();
                    TwemproxyServer::new(
                        &format!("10.0.0.{i}:6379"),
                        weight.parse().unwrap(),
                        Some(name),
                    )
                    .unwrap()
                })
                .collect();
            let built =
                Twemproxy::new(servers, f[2].parse().unwrap(), f[3].parse().unwrap()).unwrap();
            let built = if f[4] == "-" {
                built
            } else {
                built.hash_tag(f[4]).unwrap()
            };
            pool = Some((f[1].to_string(), built));
            pools += 1;
            continue;
        }
        let (name, p) = pool.as_ref().unwrap();
        let key: Vec<u8> = (0..f[0].len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&f[0][i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            p.server_for(&key).point_name(),
            f[1],
            "pool {name}, key {key:?}"
        );
        keys += 1;
    }
    assert_eq!((pools, keys), (26, 26 * 153));
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The rows of a vector file, without its comment lines.
fn rows_of(data: &str) -> impl Iterator<Item = Vec<&str>> {
    data.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

/// ScyllaDB, computed by scylla-driver 3.29.3's own Python code
/// (data/scylla.tsv cites the functions): the key's token and its shard
/// for shard counts 1–65535 and `ignore_msb` 0–63, and edge tokens.
#[test]
fn scylla_shards_match_the_python_driver() {
    let mut n = 0;
    for f in rows_of(include_str!("data/scylla.tsv")) {
        let token: i64 = f[1].parse().unwrap();
        if f[0] != "-" {
            assert_eq!(cassandra_token(&unhex(f[0])), token, "key {}", f[0]);
        }
        let node = ScyllaNode::new(f[2].parse().unwrap(), f[3].parse().unwrap()).unwrap();
        let want: u16 = f[4].parse().unwrap();
        assert_eq!(node.shard_of_token(token), want, "{f:?}");
        if f[0] != "-" {
            assert_eq!(node.shard_for_key(&unhex(f[0])), want, "{f:?}");
        }
        n += 1;
    }
    assert_eq!(n, 53 * 14 + 9 * 14);
}

/// Couchbase, computed by libcouchbase 3.3.19's own `hash_crc32` and
/// `lcbvb_k2vb` (data/couchbase.tsv); "foo" is vBucket 115 of 1024, the
/// example Couchbase's documentation gives.
#[test]
fn couchbase_vbuckets_match_libcouchbase() {
    let counts = [1, 2, 64, 128, 1024, 4096, 32768];
    let mut n = 0;
    for f in rows_of(include_str!("data/couchbase.tsv")) {
        let key = if f[0] == "-" { Vec::new() } else { unhex(f[0]) };
        for (count, want) in counts.iter().zip(&f[2..]) {
            assert_eq!(
                couchbase_vbucket(&key, *count).unwrap(),
                want.parse::<u16>().unwrap(),
                "key {} of {count}",
                f[0]
            );
        }
        n += 1;
    }
    assert_eq!(n, 50);
    assert_eq!(couchbase_vbucket(b"foo", COUCHBASE_VBUCKETS).unwrap(), 115);
}

/// groupcache, computed by its own `consistenthash` package
/// (data/groupcache.tsv): four peer lists, 1, 3, 50 and 160 replicas.
#[test]
fn groupcache_peers_match_consistenthash() {
    let pools: [&[&str]; 4] = [
        &[
            "http://10.0.0.1:8080",
            "http://10.0.0.2:8080",
            "http://10.0.0.3:8080",
        ],
        &["a", "b", "c", "d", "e"],
        &["peer-1"],
        &["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
    ];
    let mut n = 0;
    for f in rows_of(include_str!("data/groupcache.tsv")) {
        let pool = Groupcache::new(
            pools[f[0].parse::<usize>().unwrap()].iter().copied(),
            f[1].parse().unwrap(),
        )
        .unwrap();
        assert_eq!(pool.peer_for(&unhex(f[2])), f[3], "{f:?}");
        n += 1;
    }
    assert_eq!(n, 4 * 4 * 64);
}

/// nginx 1.22.1 and HAProxy 2.6.12, as recorded from the running proxies
/// by tests/proxies_live.rs (`WEFT_RECORD_PROXIES`): each case's server
/// lines, then the port that answered each key (`-` where nginx used
/// round robin, which weft reports as `None`).
#[test]
fn nginx_and_haproxy_match_their_recorded_placements() {
    // host:port, [::1]:port, or unix:<dir>/<port>.sock.
    let port = |address: &str| match address.strip_prefix("unix:") {
        Some(path) => path
            .rsplit_once('/')
            .unwrap()
            .1
            .trim_end_matches(".sock")
            .to_string(),
        None => address.rsplit_once(':').unwrap().1.to_string(),
    };
    let mut upstream: Option<NginxHash> = None;
    let (mut cases, mut rows) = (0, 0);
    for f in rows_of(include_str!("data/nginx.tsv")) {
        if f[0] == "upstream" {
            let mode = match f[1] {
                "plain" => NginxHashMode::Plain,
                _ => NginxHashMode::Consistent,
            };
            upstream = Some(NginxHash::parse_servers(&f[2].replace('|', "\n"), mode).unwrap());
            cases += 1;
            continue;
        }
        let got = upstream.as_ref().unwrap().server_for(&unhex(f[0]));
        let got = got.map_or("-".to_string(), |s| port(s.address()));
        assert_eq!(got, f[1], "nginx case {cases}: key {}", f[0]);
        rows += 1;
    }
    assert_eq!((cases, rows), (10, 10 * 1079));
    let mut backend: Option<(bool, Haproxy)> = None;
    let (mut cases, mut rows) = (0, 0);
    for f in rows_of(include_str!("data/haproxy.tsv")) {
        if f[0] == "backend" || f[0] == "source" {
            // A hash type ending " +all" had `option allbackups`.
            let (t, all) = match f[1].strip_suffix(" +all") {
                Some(t) => (t, true),
                None => (f[1], false),
            };
            let b = Haproxy::parse_servers(&f[2].replace('|', "\n"), t.parse().unwrap());
            backend = Some((f[0] == "source", b.unwrap().all_backups(all)));
            cases += 1;
            continue;
        }
        let (source, b) = backend.as_ref().unwrap();
        let got = if *source {
            b.server_for_source(f[0].parse().unwrap())
        } else {
            b.server_for(&unhex(f[0]))
        };
        assert_eq!(
            port(got.unwrap().address()),
            f[1],
            "HAProxy case {cases}: key {}",
            f[0]
        );
        rows += 1;
    }
    assert_eq!((cases, rows), (18, 16 * 1079 + 2 * 120));
}

/// Envoy, test/extensions/load_balancing_policies/ring_hash/ring_hash_lb_test.cc
/// (main, 2026): the rings its tests print and the hosts they expect.
#[test]
fn envoy_rings_match_ring_hash_lb_test() {
    let ports = |ps: &[u32]| -> String {
        ps.iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ring = |hosts: &str, min: u64, max: u64, f: EnvoyRingHashFn| {
        EnvoyRing::new(parse_envoy_hosts(hosts).unwrap(), min, max, f).unwrap()
    };
    let positions = |r: &EnvoyRing| -> Vec<(u64, String)> {
        r.entries()
            .map(|(h, host)| (h, host.key().to_string()))
            .collect()
    };
    let listed = |rows: &[(&str, u64)]| -> Vec<(u64, String)> {
        rows.iter().map(|&(k, h)| (h, k.to_string())).collect()
    };
    let max = EnvoyRing::DEFAULT_MAX_SIZE;
    // "Basic" (and "BasicWithRetryHostPredicate").
    let basic = ring(
        &ports(&[90, 91, 92, 93, 94, 95]),
        12,
        max,
        EnvoyRingHashFn::XxHash,
    );
    assert_eq!(
        positions(&basic),
        listed(&[
            ("127.0.0.1:94", 833437586790550860),
            ("127.0.0.1:92", 928266305478181108),
            ("127.0.0.1:90", 1033482794131418490),
            ("127.0.0.1:95", 3551244743356806947),
            ("127.0.0.1:93", 3851675632748031481),
            ("127.0.0.1:91", 5583722120771150861),
            ("127.0.0.1:91", 6311230543546372928),
            ("127.0.0.1:93", 7700377290971790572),
            ("127.0.0.1:95", 13144177310400110813),
            ("127.0.0.1:92", 13444792449719432967),
            ("127.0.0.1:94", 15516499411664133160),
            ("127.0.0.1:90", 16117243373044804889),
        ])
    );
    for (hash, port) in [
        (0, 94),
        (u64::MAX, 94),
        (3551244743356806947, 95),
        (3551244743356806948, 93),
        (16117243373044804880, 90),
    ] {
        assert_eq!(basic.host_for_hash(hash).key(), format!("127.0.0.1:{port}"));
    }
    // "BasicWithMurmur2".
    let murmur = ring(
        &ports(&[80, 81, 82, 83, 84, 85]),
        12,
        max,
        EnvoyRingHashFn::MurmurHash2,
    );
    assert_eq!(
        positions(&murmur),
        listed(&[
            ("127.0.0.1:85", 1358027074129602068),
            ("127.0.0.1:83", 4361834613929391114),
            ("127.0.0.1:84", 7224494972555149682),
            ("127.0.0.1:81", 7701421856454313576),
            ("127.0.0.1:82", 8649315368077433379),
            ("127.0.0.1:84", 8739448859063030639),
            ("127.0.0.1:81", 9887544217113020895),
            ("127.0.0.1:82", 10150910876324007731),
            ("127.0.0.1:83", 15168472011420622455),
            ("127.0.0.1:80", 15427156902705414897),
            ("127.0.0.1:85", 16375050414328759093),
            ("127.0.0.1:80", 17613279263364193813),
        ])
    );
    assert_eq!(
        murmur.host_for_hash(1358027074129602069).key(),
        "127.0.0.1:83"
    );
    assert_eq!(
        murmur.host_for_hash(10150910876324007730).key(),
        "127.0.0.1:82"
    );
    // "BasicWithHostname": hosts hashed by hostname.
    let named = ring("90,91,92,93,94,95", 12, max, EnvoyRingHashFn::XxHash);
    assert_eq!(
        positions(&named),
        listed(&[
            ("95", 1975508444536362413),
            ("95", 2376063919839173711),
            ("93", 2386806903309390596),
            ("94", 6749904478991551885),
            ("93", 6803900775736438537),
            ("92", 7225015537174310577),
            ("90", 8787465352164086522),
            ("92", 11282020843382717940),
            ("91", 13723418369486627818),
            ("90", 13776502110861797421),
            ("91", 14338313586354474791),
            ("94", 15364271037087512980),
        ])
    );
    // "UnevenHosts": a minimum of 3 over 2 hosts makes a ring of 4.
    let uneven = ring(&ports(&[80, 81]), 3, max, EnvoyRingHashFn::XxHash);
    assert_eq!(
        positions(&uneven),
        listed(&[
            ("127.0.0.1:80", 5454692015285649509),
            ("127.0.0.1:81", 7859399908942313493),
            ("127.0.0.1:80", 13838424394637650569),
            ("127.0.0.1:81", 16064866803292627174),
        ])
    );
    let moved = ring(&ports(&[81, 82]), 3, max, EnvoyRingHashFn::XxHash);
    assert_eq!(
        positions(&moved),
        listed(&[
            ("127.0.0.1:81", 7859399908942313493),
            ("127.0.0.1:82", 8241336090459785962),
            ("127.0.0.1:82", 12882406409176325258),
            ("127.0.0.1:81", 16064866803292627174),
        ])
    );
    // "HostWeightedTinyRing": weights 1, 2, 3 on a ring of exactly 6.
    let tiny = ring(
        "127.0.0.1:90=1,127.0.0.1:91=2,127.0.0.1:92=3",
        6,
        6,
        EnvoyRingHashFn::XxHash,
    );
    assert_eq!(tiny.len(), 6);
    for (hash, port) in [
        (928266305478181108, 92),
        (4443673547860492590, 92),
        (5583722120771150861, 91),
        (6311230543546372928, 91),
        (13444792449719432967, 92),
        (16117243373044804889, 90),
    ] {
        assert_eq!(tiny.host_for_hash(hash).key(), format!("127.0.0.1:{port}"));
    }
}

/// Envoy, test/extensions/load_balancing_policies/maglev/maglev_lb_test.cc
/// (main, 2026): the tables its tests print, by request hash.
#[test]
fn envoy_maglev_tables_match_maglev_lb_test() {
    let check = |hosts: &str, size: u64, want: &[&str]| {
        let table = EnvoyMaglev::new(parse_envoy_hosts(hosts).unwrap(), size).unwrap();
        for i in 0..3 * want.len() as u64 {
            assert_eq!(
                table.host_for_hash(i).key(),
                want[i as usize % want.len()],
                "{hosts}: {i}"
            );
        }
    };
    let p = |n: u32| format!("127.0.0.1:{n}");
    let basic: Vec<String> = [92, 94, 90, 91, 95, 90, 93].map(p).to_vec();
    let hosts = "127.0.0.1:90,127.0.0.1:91,127.0.0.1:92,127.0.0.1:93,127.0.0.1:94,127.0.0.1:95";
    check(
        hosts,
        7,
        &basic.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // The table does not depend on host order ("BasicStability").
    let shuffled = "127.0.0.1:93,127.0.0.1:95,127.0.0.1:90,127.0.0.1:94,127.0.0.1:91,127.0.0.1:92";
    check(
        shuffled,
        7,
        &basic.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // "BasicWithHostName".
    check(
        "90,91,92,93,94,95",
        7,
        &["92", "95", "90", "93", "94", "91", "90"],
    );
    // "Weighted": weights 1 and 2, table size 17.
    let weighted: Vec<String> = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
        .map(|i| p(90 + i))
        .to_vec();
    check(
        "127.0.0.1:90=1,127.0.0.1:91=2",
        17,
        &weighted.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // "SingleHost" and "WeightedSingleHost".
    check("127.0.0.1:90=7", 17, &["127.0.0.1:90"]);
}
