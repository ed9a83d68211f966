//! Test support for weft: starts real etcd, Redis, twemproxy (nutcracker),
//! nginx and HAProxy servers on loopback for integration tests.
//!
//! ```no_run
//! # async fn demo() {
//! // Inside a #[tokio::test]: a private Redis on a free 127.0.0.1 port.
//! let Some(redis) = weft_test::redis().await else { return }; // skipped, loudly
//! let reply = redis.command(&["PING"]).await.unwrap();
//! assert_eq!(reply, weft_test::Reply::Simple("PONG".into()));
//! // Dropping `redis` kills the server by its process id and removes its
//! // temp dir; if the test panicked, the server's log is printed first.
//! # }
//! ```
//!
//! # What the harness guarantees
//!
//! - Each server listens on a free port of 127.0.0.1 and keeps its data in
//!   its own temp dir; nothing is shared between tests.
//! - A server is returned only once it answers: etcd when its `/health`
//!   endpoint reports `"health":"true"`, Redis when `PING` gets `PONG`,
//!   nutcracker when every pool accepts connections, a Redis Cluster when
//!   every node reports `cluster_state:ok`.
//! - It is stopped by its own process id (never by name) and reaped when the
//!   handle drops.
//! - Its log stays in the temp dir, and is printed when the test panics.
//! - A server that is not installed fails the test under `CI=true`, naming
//!   the Debian package to install; elsewhere the test is skipped with a
//!   loud message on stderr.
//!
//! [`cas`] holds the conformance suite every `CasStore` must pass, and
//! [`faults`] a store wrapper that injects delays, timeouts and pauses;
//! [`scenario`] fault scenarios every real store runs alike; [`sim`] the
//! seeds and runtimes of seeded simulations; [`children`] the runtime and
//! signals of chaos tests' child processes.

pub mod cas;
pub mod children;
mod etcd;
pub mod faults;
mod http;
mod nutcracker;
mod process;
mod proxy;
mod redis;
pub mod scenario;
pub mod sim;

pub use etcd::{Etcd, EtcdCluster, etcd, etcd_cluster};
pub use http::{HttpResponse, http};
pub use nutcracker::{Nutcracker, nutcracker};
pub use process::HarnessError;
pub use proxy::{HttpProxy, ProxyKind, http_proxy};
pub use redis::{Redis, RedisCluster, Reply, redis, redis_cluster};
