//! The `weft` binary end to end: routing output, errors and bench-hash.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn weft(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("weft finishes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn route_prints_key_tab_result_for_compatible_schemes() {
    // Kafka UtilsTest vectors: "21" and "foobar" land in partition 0 of 6.
    let o = weft(
        &[
            "route", "--scheme", "kafka", "--shards", "6", "21", "foobar",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "21\t0\nfoobar\t0\n");

    let o = weft(
        &["route", "--scheme", "redis-cluster"],
        Some("somekey\r\n{user1000}.following\n"),
    );
    assert_eq!(stdout(&o), "somekey\t11058\n{user1000}.following\t3443\n");

    let o = weft(
        &["route", "--scheme", "guava", "--shards", "1024", "256"],
        None,
    );
    assert_eq!(stdout(&o), "256\t520\n");

    let o = weft(&["route", "--scheme", "cassandra", "123"], None);
    assert_eq!(stdout(&o), "123\t-7468325962851647638\n");

    let o = weft(
        &[
            "route",
            "--scheme",
            "elasticsearch",
            "--shards",
            "5",
            "hello",
            "hell",
        ],
        None,
    );
    assert_eq!(stdout(&o), "hello\t4\nhell\t1\n");

    let o = weft(
        &[
            "route",
            "--scheme",
            "librdkafka",
            "--shards",
            "4",
            "--key-format",
            "hex",
            "",
        ],
        None,
    );
    assert_eq!(stdout(&o), "\trandom\n");

    let o = weft(
        &[
            "route",
            "--scheme",
            "ketama",
            "--members",
            "10.0.1.1:11211=600,10.0.1.2:11211=300,10.0.1.3:11211=200,10.0.1.4:11211=350,10.0.1.5:11211=1000,10.0.1.6:11211=800,10.0.1.7:11211=950,10.0.1.8:11211=100",
            "SVa_]_V41)",
        ],
        None,
    );
    assert_eq!(stdout(&o), "SVa_]_V41)\t10.0.1.7:11211\n");
}

#[test]
fn route_with_weft_schemes_agrees_with_the_library() {
    use weft_core::{Sharder, key_hash};
    let o = weft(
        &[
            "route", "--scheme", "default", "--shards", "10", "a", "user-42",
        ],
        None,
    );
    let f = weft_shard::LevelJump::new(10).unwrap();
    let expected = format!(
        "a\t{}\nuser-42\t{}\n",
        f.shard_for_hash(key_hash("a")).get(),
        f.shard_for_hash(key_hash("user-42")).get()
    );
    assert_eq!(stdout(&o), expected);

    // A u64 key hashes as the integer's stable bytes.
    let o = weft(
        &[
            "route",
            "--scheme",
            "jump",
            "--shards",
            "100",
            "--key-format",
            "u64",
            "42",
        ],
        None,
    );
    let j = weft_shard::Jump::new(100).unwrap();
    assert_eq!(
        stdout(&o),
        format!("42\t{}\n", j.shard_for_hash(key_hash(&42u64)).get())
    );

    for scheme in ["rendezvous", "ring", "maglev", "memento"] {
        let o = weft(
            &[
                "route",
                "--scheme",
                scheme,
                "--members",
                "a,b=2,c",
                "k1",
                "k2",
            ],
            None,
        );
        assert!(o.status.success(), "{scheme}");
        for line in stdout(&o).lines() {
            let owner = line.split('\t').nth(1).unwrap();
            assert!(["a", "b", "c"].contains(&owner), "{scheme}: {line}");
        }
    }
}

#[test]
fn bad_input_is_one_line_on_stderr_and_exit_status_2() {
    let cases: [&[&str]; 9] = [
        &["route", "--scheme", "nope", "k"],
        &["route", "--scheme", "kafka", "k"],
        &["route", "--scheme", "kafka", "--shards", "0", "k"],
        &[
            "route",
            "--scheme",
            "sarama",
            "--shards",
            "4",
            "--key-format",
            "hex",
            "zz",
        ],
        &[
            "route",
            "--scheme",
            "guava",
            "--shards",
            "4",
            "not-a-number",
        ],
        &[
            "route",
            "--scheme",
            "elasticsearch",
            "--shards",
            "5",
            "--routing-shards",
            "12",
            "k",
        ],
        &["route", "--scheme", "ring", "--members", "a,a", "k"],
        &["bench-hash", "--shards", "0"],
        &["frobnicate"],
    ];
    for args in cases {
        let o = weft(args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("weft: "), "{args:?}: {err}");
    }
}

#[test]
fn bench_hash_prints_a_table_with_the_floor_first_and_writes_an_svg() {
    let dir = std::env::temp_dir().join(format!("weft-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("plot.svg");
    let o = weft(
        &[
            "bench-hash",
            "--algos",
            "ring,level-jump",
            "--shards",
            "10,20",
            "--keys",
            "2000",
            "--svg",
            svg.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| algorithm"))
        .collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert!(rows[0].starts_with("| floor | 10 |"), "{out}");
    assert!(rows[3].starts_with("| floor | 20 |"), "{out}");
    // level-jump adds with no stray moves.
    let lj = rows
        .iter()
        .find(|r| r.starts_with("| level-jump | 10 |"))
        .unwrap();
    assert_eq!(lj.split('|').nth(9).unwrap().trim(), "0", "{lj}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("level-jump") && plot.contains("polyline"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_flags_and_keys_get_an_error_that_names_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "route",
                "--scheme",
                "jump",
                "--shards",
                "4",
                "--key-format",
                "hex",
                "é1",
            ],
            "not a hex digit",
        ),
        (
            &[
                "route",
                "--scheme",
                "jump",
                "--shards",
                "4",
                "--key-format",
                "hex",
                "+1+2",
            ],
            "'+' is not a hex digit",
        ),
        (
            &["route", "--scheme", "redis-cluster", "--shards", "0", "k"],
            "does not apply",
        ),
        (
            &["route", "--scheme", "cassandra", "--shards", "3", "k"],
            "does not apply",
        ),
        (
            &["route", "--scheme", "jump", "--shards", "99999999999", "k"],
            "from 0 to 4294967295",
        ),
        (
            &[
                "route",
                "--scheme",
                "ketama",
                "--members",
                "10.0.0.1:11211=0.5",
                "k",
            ],
            "whole numbers",
        ),
        (
            &[
                "bench-hash",
                "--shards",
                "1000000",
                "--algos",
                "ring",
                "--keys",
                "1000",
            ],
            "above the limit",
        ),
        (
            &["bench-hash", "--keys", "99999999999999999999999"],
            "from 1000 to 50000000",
        ),
        (&["bench-hash", "--shards", "10,x"], "from 1 to 1000000"),
    ];
    for (args, needle) in cases {
        let o = weft(args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Uppercase hex is hex.
    let o = weft(
        &[
            "route",
            "--scheme",
            "jump",
            "--shards",
            "4",
            "--key-format",
            "hex",
            "0aFF",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn route_twemproxy_matches_nutcrackers_recorded_placement_and_refuses_bad_pools() {
    // From crates/shard/tests/data/twemproxy.tsv (nutcracker 0.5.0):
    // pool ketama_one_at_a_time sends user:0 to beta and user:3 to a1.
    let servers = "127.0.0.1:1:1 zeta,127.0.0.1:2:2 al,127.0.0.1:3:1 beta,127.0.0.1:4:3 a1,127.0.0.1:5:1 cache-long-name";
    let o = weft(
        &[
            "route",
            "--scheme",
            "twemproxy",
            "--servers",
            servers,
            "--hash",
            "one_at_a_time",
            "user:0",
            "user:3",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "user:0\tbeta\nuser:3\ta1\n");
    let cases: &[(&[&str], &str)] = &[
        (&["route", "--scheme", "twemproxy", "k"], "needs --servers"),
        (
            &[
                "route",
                "--scheme",
                "twemproxy",
                "--servers",
                "10.0.0.1:6379",
                "k",
            ],
            "weight",
        ),
        (
            &[
                "route",
                "--scheme",
                "twemproxy",
                "--servers",
                "10.0.0.1:6379:1",
                "--distribution",
                "random",
                "k",
            ],
            "at random",
        ),
        (
            &[
                "route",
                "--scheme",
                "twemproxy",
                "--servers",
                "10.0.0.1:6379:1",
                "--hash",
                "sha1",
                "k",
            ],
            "fnv1a_64",
        ),
        (
            &[
                "route",
                "--scheme",
                "twemproxy",
                "--servers",
                "10.0.0.1:6379:1",
                "--hash-tag",
                "{",
                "k",
            ],
            "two characters",
        ),
        (
            &[
                "route",
                "--scheme",
                "twemproxy",
                "--servers",
                "10.0.0.1:6379:1 a,10.0.0.2:6379:1 a",
                "k",
            ],
            "more than once",
        ),
        (
            &["route", "--scheme", "ketama", "--hash", "md5", "k"],
            "only applies to --scheme twemproxy",
        ),
    ];
    for (args, needle) in cases {
        let o = weft(args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn route_proxy_and_system_schemes_match_their_vectors_and_refuse_bad_settings() {
    // crates/shard/tests/data: libcouchbase, scylla-driver, groupcache.
    let cases: &[(&[&str], &str)] = &[
        (&["route", "--scheme", "couchbase", "foo"], "foo\t115\n"),
        (
            &["route", "--scheme", "couchbase", "--vbuckets", "64", "foo"],
            "foo\t51\n",
        ),
        (
            &["route", "--scheme", "scylla", "--shards", "4", "key"],
            "key\t2\n",
        ),
        (
            &[
                "route",
                "--scheme",
                "groupcache",
                "--peers",
                "http://127.0.0.1:9001,http://127.0.0.1:9002",
                "--replicas",
                "160",
                "key",
                "key-0",
            ],
            "key\thttp://127.0.0.1:9001\nkey-0\thttp://127.0.0.1:9002\n",
        ),
        (
            &[
                "route",
                "--scheme",
                "nginx",
                "--servers",
                "server 10.0.0.1:8080; server 10.0.0.2:8080 weight=2; server 10.0.0.3:8080",
                "--hash-type",
                "consistent",
                "/img/42.png",
                "",
            ],
            "/img/42.png\t10.0.0.1:8080\n\tround-robin\n",
        ),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a 10.0.0.1:80 weight 10,server b 10.0.0.2:80 weight 10,server c 10.0.0.3:80 weight 20",
                "--hash-type",
                "consistent",
                "session-42",
            ],
            "session-42\tc\n",
        ),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a 10.0.0.1:80 disabled",
                "k",
            ],
            "k\tnone\n",
        ),
        // Active servers down: every key to one backup, under map-based
        // the heavier one (HAProxy 2.6, as tests/proxies_live.rs checks).
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a x:1 disabled,server b x:2 backup weight 2,server c x:3 backup weight 10",
                "k1",
                "k2",
            ],
            "k1\tc\nk2\tc\n",
        ),
        // Envoy's ring_hash_lb_test.cc "Basic" and maglev_lb_test.cc
        // "Weighted", by request hash.
        (
            &[
                "route",
                "--scheme",
                "envoy-ring",
                "--hosts",
                "127.0.0.1:90,127.0.0.1:91,127.0.0.1:92,127.0.0.1:93,127.0.0.1:94,127.0.0.1:95",
                "--min-ring-size",
                "12",
                "--key-format",
                "u64",
                "0",
                "3551244743356806948",
            ],
            "0\t127.0.0.1:94\n3551244743356806948\t127.0.0.1:93\n",
        ),
        (
            &[
                "route",
                "--scheme",
                "envoy-maglev",
                "--hosts",
                "127.0.0.1:90=1,127.0.0.1:91=2",
                "--table-size",
                "17",
                "--key-format",
                "u64",
                "1",
                "17",
            ],
            "1\t127.0.0.1:90\n17\t127.0.0.1:91\n",
        ),
    ];
    for (args, want) in cases {
        let o = weft(args, None);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(stdout(&o), *want, "{args:?}");
    }
    let bad: &[(&[&str], &str)] = &[
        (
            &["route", "--scheme", "couchbase", "--vbuckets", "1000", "k"],
            "1000 is not a power of two",
        ),
        (
            &[
                "route",
                "--scheme",
                "couchbase",
                "--vbucket-map",
                "/nonexistent/map.json",
                "k",
            ],
            "/nonexistent/map.json",
        ),
        (
            &["route", "--scheme", "scylla", "--shards", "0", "k"],
            "shard count 0",
        ),
        (
            &[
                "route",
                "--scheme",
                "scylla",
                "--shards",
                "4",
                "--ignore-msb",
                "64",
                "k",
            ],
            "sharding_ignore_msb 64",
        ),
        (
            &["route", "--scheme", "scylla", "--members", "a,b", "k"],
            "--members does not apply",
        ),
        (&["route", "--scheme", "groupcache", "k"], "needs --peers"),
        (
            &["route", "--scheme", "groupcache", "--peers", "a,", "k"],
            "empty",
        ),
        (&["route", "--scheme", "haproxy", "k"], "needs --servers"),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a x:1 weight 257",
                "k",
            ],
            "0 to 256",
        ),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a x:1",
                "--hash-type",
                "consistent md5",
                "k",
            ],
            "\"md5\"",
        ),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a x:1",
                "--balance",
                "random",
                "k",
            ],
            "--balance",
        ),
        (
            &[
                "route",
                "--scheme",
                "haproxy",
                "--servers",
                "server a x:1",
                "--balance",
                "source",
                "10.0.0.300",
            ],
            "not an IP address",
        ),
        (
            &[
                "route",
                "--scheme",
                "nginx",
                "--servers",
                "server a:1 weight=0",
                "k",
            ],
            "weight=",
        ),
        (
            &[
                "route",
                "--scheme",
                "nginx",
                "--servers",
                "server a:1",
                "--hash-type",
                "map-based",
                "k",
            ],
            "unknown nginx hash",
        ),
        (
            &[
                "route",
                "--scheme",
                "kafka",
                "--shards",
                "3",
                "--hash-type",
                "consistent",
                "k",
            ],
            "only applies to --scheme haproxy or nginx",
        ),
        (
            &[
                "route",
                "--scheme",
                "envoy-maglev",
                "--hosts",
                "a:1",
                "--table-size",
                "65536",
                "k",
            ],
            "table_size 65536",
        ),
        (
            &[
                "route",
                "--scheme",
                "envoy-ring",
                "--hosts",
                "a:1",
                "--min-ring-size",
                "0",
                "k",
            ],
            "minimum_ring_size 0",
        ),
        (
            &["route", "--scheme", "envoy-ring", "--hosts", "a:1=0", "k"],
            "weight",
        ),
        (&["route", "--scheme", "envoy-ring", "k"], "needs --hosts"),
    ];
    for (args, needle) in bad {
        let o = weft(args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn bench_hash_measures_the_real_systems_placements() {
    let o = weft(
        &[
            "bench-hash",
            "--algos",
            "compat",
            "--shards",
            "12",
            "--keys",
            "4000",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(&format!("| {name} | 12 |")))
            .unwrap_or_else(|| panic!("no {name} row in\n{out}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    // Columns: 8 add moved ÷ ideal, 9 add stray, 10 remove moved ÷ ideal,
    // 11 remove stray.
    for name in [
        "twemproxy-ketama",
        "haproxy-consistent",
        "nginx-consistent",
        "groupcache",
    ] {
        assert_eq!(
            row(name)[9],
            "0",
            "{name}: consistent adds move no key between old members"
        );
    }
    // A modula pool reshuffles nearly everything when a server goes.
    let modula: f64 = row("twemproxy-modula")[10].parse().unwrap();
    assert!(modula > 5.0, "{modula}");
    // nginx's plain hash rehashes only the down server's keys; HAProxy's
    // map-based rebuilds the map.
    assert_eq!(row("nginx")[11], "0");
    assert_ne!(row("haproxy-map")[11], "0");
}

#[test]
fn route_envoy_reads_a_load_assignment() {
    let dir = std::env::temp_dir().join(format!("weft-cli-envoy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cla.json");
    // maglev_lb_test.cc "Weighted" as a ClusterLoadAssignment, plus a
    // draining host that Envoy leaves out of the table.
    std::fs::write(
        &path,
        r#"{"cluster_name": "c", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 90}}}},
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.9", "port_value": 99}}},
             "health_status": "DRAINING"},
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 91}}},
             "load_balancing_weight": 2}]}]}"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let o = weft(
        &[
            "route",
            "--scheme",
            "envoy-maglev",
            "--load-assignment",
            file,
            "--table-size",
            "17",
            "--key-format",
            "u64",
            "1",
            "17",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "1\t127.0.0.1:90\n17\t127.0.0.1:91\n");
    let o = weft(
        &[
            "route",
            "--scheme",
            "envoy-ring",
            "--load-assignment",
            file,
            "--hash-by",
            "hostname",
            "k",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no hostname"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
