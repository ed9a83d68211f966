//! Lease operations per second and latency on real etcd and Redis (started
//! by the test harness on loopback), next to each raw client doing the same
//! store operation by hand in the same run.
//!
//! `cargo bench -p weft-bench --bench stores`; results in
//! docs/leases.md. Sequential, one client; release build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_lease::{CasStore, Lease, LeaseConfig, Swap};
use weft_lease_etcd::EtcdStore;
use weft_lease_redis::RedisStore;

/// The raw baseline speaks etcd's gRPC API through the same generated code
/// the store uses, without the store around it.
#[allow(
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    clippy::all
)]
mod proto {
    include!("../../lease-etcd/src/proto/etcdserverpb.rs");
}
use proto::compare::{CompareResult, CompareTarget, TargetUnion};
use proto::{Compare, LeaseGrantRequest, PutRequest, RequestOp, TxnRequest, request_op};

const N: usize = 1000;

struct Stats {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(mut op: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..50 {
        op(N + i).await; // warm-up, on its own keys
    }
    let mut lat = Vec::with_capacity(N);
    let start = Instant::now();
    for i in 0..N {
        let t = Instant::now();
        op(i).await;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    Stats {
        per_sec: N as f64 / total.as_secs_f64(),
        p50: lat[N / 2],
        p99: lat[N * 99 / 100],
    }
}

fn row(store: &str, op: &str, s: &Stats, base: Option<&Stats>) {
    let ratio = base.map_or("—".to_string(), |b| {
        format!("{:+.1} %", (b.per_sec / s.per_sec - 1.0) * 100.0)
    });
    println!(
        "| {store} | {op} | {:.0} | {:.3} ms | {:.3} ms | {ratio} |",
        s.per_sec,
        s.p50.as_secs_f64() * 1000.0,
        s.p99.as_secs_f64() * 1000.0
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let etcd = weft_test::Etcd::start()
        .await
        .expect("etcd (apt-get install etcd-server)");
    let redis = weft_test::Redis::start()
        .await
        .expect("redis (apt-get install redis-server)");
    println!(
        "{N} sequential operations each, one client, loopback; overhead = extra time per operation against the raw client doing the same requests.\n"
    );
    println!("| store | operation | ops/s | p50 | p99 | weft overhead |");
    println!("|---|---|---:|---:|---:|---:|");

    // etcd: a CAS with a TTL is a lease grant plus a guarded put, by hand
    // and through the store.
    let channel = tonic::transport::Endpoint::from_shared(etcd.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw_kv = proto::kv_client::KvClient::new(channel.clone());
    let mut raw_lease = proto::lease_client::LeaseClient::new(channel);
    let store =
        EtcdStore::connect_with_min_ttl(&[&etcd.endpoint()], "bench/", Duration::from_secs(1))
            .await
            .unwrap();
    let ttl = Duration::from_secs(5);
    let Swap::Done { version } = store.create("raw", b"0".to_vec(), ttl).await.unwrap() else {
        panic!()
    };
    let mut rev = version.0 as i64;
    let mut lat = Vec::with_capacity(N);
    let start = Instant::now();
    for i in 0..N + 50 {
        let t = Instant::now();
        let lease = raw_lease
            .lease_grant(LeaseGrantRequest { ttl: 5, id: 0 })
            .await
            .unwrap()
            .into_inner()
            .id;
        let txn = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: b"bench/raw".to_vec(),
                target_union: Some(TargetUnion::ModRevision(rev)),
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: b"bench/raw".to_vec(),
                    value: i.to_string().into_bytes(),
                    lease,
                })),
            }],
            failure: Vec::new(),
        };
        let r = raw_kv.txn(txn).await.unwrap().into_inner();
        assert!(r.succeeded);
        rev = r.header.unwrap().revision;
        if i >= 50 {
            lat.push(t.elapsed());
        }
        if i == 49 {
            lat.clear();
        }
    }
    let total = start.elapsed().mul_f64(N as f64 / (N + 50) as f64);
    lat.sort();
    let raw_etcd = Stats {
        per_sec: N as f64 / total.as_secs_f64(),
        p50: lat[N / 2],
        p99: lat[N * 99 / 100],
    };
    let weft_etcd = weft_cas(&store, ttl).await;
    row("etcd", "raw client: grant + guarded put", &raw_etcd, None);
    row("etcd", "weft compare_and_swap", &weft_etcd, Some(&raw_etcd));
    let shared: Arc<dyn CasStore> = Arc::new(store.clone());
    lease_cycle("etcd", shared, Duration::from_secs(2)).await;

    // Redis: a CAS is one script, by hand and through the store.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let script = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0",
    );
    let _: () = redis::cmd("SET")
        .arg("raw")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let cur = std::cell::Cell::new(0usize);
    let raw_redis = measure(|i| {
        let (mut conn, script, cur) = (conn.clone(), script.clone(), &cur);
        async move {
            let ok: i64 = script
                .key("raw")
                .arg(cur.get())
                .arg(i + 1_000_000)
                .arg(5000)
                .invoke_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(ok, 1);
            cur.set(i + 1_000_000);
        }
    })
    .await;
    let rstore = RedisStore::connect(&redis.url(), "bench/").await.unwrap();
    let weft_redis = weft_cas(&rstore, ttl).await;
    row("Redis", "raw client: CAS script", &raw_redis, None);
    row(
        "Redis",
        "weft compare_and_swap",
        &weft_redis,
        Some(&raw_redis),
    );
    lease_cycle("Redis", Arc::new(rstore), Duration::from_secs(1)).await;
}

/// Acquire, renew (the lease's refresh call) and release, each measured.
/// weft's `compare_and_swap` on one key, each swap on the version the
/// previous one returned.
async fn weft_cas(store: &dyn CasStore, ttl: Duration) -> Stats {
    let Swap::Done { version } = store.create("weft", b"0".to_vec(), ttl).await.unwrap() else {
        panic!("the bench key already exists")
    };
    let v = std::cell::Cell::new(version);
    measure(|i| {
        let v = &v;
        async move {
            let Swap::Done { version } = store
                .compare_and_swap("weft", v.get(), i.to_string().into_bytes(), ttl)
                .await
                .unwrap()
            else {
                panic!("a swap lost to nobody")
            };
            v.set(version);
        }
    })
    .await
}

async fn lease_cycle(name: &str, store: Arc<dyn CasStore>, ttl: Duration) {
    let config = LeaseConfig::new(ttl);
    let held = std::cell::RefCell::new(Vec::new());
    let acquire = measure(|i| {
        let (store, config, held) = (store.clone(), config.clone(), &held);
        async move {
            let lease = Lease::builder(store, format!("cycle/{i}"), config)
                .value(b"me")
                .try_acquire()
                .await
                .unwrap()
                .unwrap();
            held.borrow_mut().push(lease);
        }
    })
    .await;
    for lease in held.take() {
        lease.release().await.unwrap();
    }
    let Swap::Done { version } = store.create("renew", b"me".to_vec(), ttl).await.unwrap() else {
        panic!()
    };
    let renew = measure(|_| {
        let store = store.clone();
        async move {
            assert!(matches!(
                store.refresh("renew", version, ttl).await.unwrap(),
                Swap::Done { .. }
            ));
        }
    })
    .await;
    let release = measure(|i| {
        let store = store.clone();
        async move {
            let key = format!("release/{i}");
            let Swap::Done { version } = store.create(&key, b"me".to_vec(), ttl).await.unwrap()
            else {
                panic!()
            };
            store.delete(&key, version).await.unwrap();
        }
    })
    .await;
    row(name, "lease acquire", &acquire, None);
    row(name, "lease renew (refresh)", &renew, None);
    row(name, "create + release", &release, None);
}
