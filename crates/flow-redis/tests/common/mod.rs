//! What the Redis tests share: a plain connection and reading streams back
//! as field maps.

// Each test binary uses a part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;

/// A plain connection to `url`.
pub(crate) async fn conn(url: &str) -> MultiplexedConnection {
    try_conn(url).await.expect("redis answers")
}

/// A plain connection, or `None` if Redis does not answer within 2 s.
pub(crate) async fn try_conn(url: &str) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(url).ok()?;
    tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()
}

/// Every entry of `stream`, as a map of field to value.
pub(crate) async fn entries(
    c: &mut MultiplexedConnection,
    stream: &str,
) -> Vec<HashMap<String, Vec<u8>>> {
    try_entries(c, stream).await.expect("XRANGE answers")
}

/// As [`entries`], `None` if Redis fails or answers in another shape.
pub(crate) async fn try_entries(
    c: &mut MultiplexedConnection,
    stream: &str,
) -> Option<Vec<HashMap<String, Vec<u8>>>> {
    let v: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(c)
        .await
        .ok()?;
    let Value::Array(list) = v else { return None };
    list.iter()
        .map(|e| {
            let Value::Array(parts) = e else { return None };
            let Value::Array(fields) = parts.get(1)? else {
                return None;
            };
            fields
                .chunks(2)
                .map(|kv| match kv {
                    [Value::BulkString(k), Value::BulkString(v)] => {
                        Some((String::from_utf8(k.clone()).ok()?, v.clone()))
                    }
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Field `name` of every entry of `stream` that has it.
pub(crate) async fn field(c: &mut MultiplexedConnection, stream: &str, name: &str) -> Vec<Vec<u8>> {
    entries(c, stream)
        .await
        .into_iter()
        .filter_map(|mut e| e.remove(name))
        .collect()
}

/// The stream's length.
pub(crate) async fn len(c: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query_async(c).await.unwrap()
}

/// Sets `key` to a plain string, so that a stream command on it fails with
/// `WRONGTYPE`.
pub(crate) async fn set_plain(c: &mut MultiplexedConnection, key: &str) {
    let () = redis::cmd("SET")
        .arg(key)
        .arg("1")
        .query_async(c)
        .await
        .unwrap();
}
