//! Proves the server install: each server starts under the harness and
//! round-trips one value. Under `CI=true` a missing server fails here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use weft_test::Reply;

#[tokio::test]
async fn redis_round_trips_one_value() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let set = redis
        .command(&["SET", "weft:smoke", "hello"])
        .await
        .unwrap();
    assert_eq!(set, Reply::Simple("OK".into()));
    let get = redis.command(&["GET", "weft:smoke"]).await.unwrap();
    assert_eq!(get, Reply::Bulk(Some(b"hello".to_vec())));
    assert!(redis.log_path().starts_with(redis.dir()));
}

#[tokio::test]
async fn etcd_round_trips_one_value() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let (key, value) = (B64.encode("weft/smoke"), B64.encode("hello"));
    let put = weft_test::http(
        &etcd.addr(),
        "POST",
        "/v3/kv/put",
        Some(&format!(r#"{{"key":"{key}","value":"{value}"}}"#)),
    )
    .await
    .unwrap();
    assert_eq!(put.status, 200, "put: {}", put.body);

    let range = weft_test::http(
        &etcd.addr(),
        "POST",
        "/v3/kv/range",
        Some(&format!(r#"{{"key":"{key}"}}"#)),
    )
    .await
    .unwrap();
    assert_eq!(range.status, 200, "range: {}", range.body);
    let body: serde_json::Value = serde_json::from_str(&range.body).unwrap();
    let got = body["kvs"][0]["value"]
        .as_str()
        .expect("one key in the range");
    assert_eq!(B64.decode(got).unwrap(), b"hello");
}

#[tokio::test]
async fn a_dropped_server_is_stopped_by_its_pid() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let (pid, addr, dir) = (redis.pid(), redis.addr(), redis.dir().to_path_buf());
    drop(redis);
    // The process is gone (reaped, so not even a zombie) and its dir removed.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
