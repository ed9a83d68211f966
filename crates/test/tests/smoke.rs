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

#[tokio::test]
async fn nginx_and_haproxy_answer_and_stop_by_their_pid() {
    let nginx = weft_test::http_proxy(weft_test::ProxyKind::Nginx, 1, 1, |p| {
        format!(
            "  server {{ listen 127.0.0.1:{}; return 200 \"nginx\"; }}",
            p[0]
        )
    });
    let haproxy = weft_test::http_proxy(weft_test::ProxyKind::Haproxy, 1, 1, |p| {
        format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout connect 5s\n  timeout server 5s\n\
             frontend f\n  bind 127.0.0.1:{}\n  http-request return status 200 content-type text/plain string haproxy\n",
            p[0]
        )
    });
    for (proxy, name) in [(nginx.await, "nginx"), (haproxy.await, "haproxy")] {
        let Some(proxy) = proxy else {
            continue;
        };
        let addr = format!("127.0.0.1:{}", proxy.port(0));
        let reply = weft_test::http(&addr, "GET", "/", None).await.unwrap();
        assert_eq!((reply.status, reply.body.trim()), (200, name));
        let pid = proxy.pid();
        drop(proxy);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
    }
}
