//! A single-member etcd on loopback.

use std::path::Path;

use crate::http::http;
use crate::process::{HarnessError, ServerProcess, Spec, require};

const SPEC: Spec = Spec {
    binary: "etcd",
    package: "etcd-server",
    ports: 4,
};

/// A running single-member etcd, private to one test.
///
/// Started with short heartbeat and election timeouts so it elects itself
/// in about a tenth of a second.
#[derive(Debug)]
pub struct Etcd {
    process: ServerProcess,
    client_port: u16,
}

impl Etcd {
    /// Starts etcd on free loopback ports in a new temp dir and waits until
    /// its `/health` endpoint reports healthy.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] when `etcd` is not on this machine;
    /// the other variants when it does not start or become healthy.
    pub async fn start() -> Result<Etcd, HarnessError> {
        let args = |dir: &Path, ports: &[u16]| -> (Vec<String>, usize) {
            let (client, peer) = (ports[0], ports[1]);
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let argv = vec![
                "--name".into(),
                "weft-test".into(),
                "--data-dir".into(),
                dir.join("data").display().to_string(),
                "--listen-client-urls".into(),
                client_url.clone(),
                "--advertise-client-urls".into(),
                client_url,
                "--listen-peer-urls".into(),
                peer_url.clone(),
                "--initial-advertise-peer-urls".into(),
                peer_url.clone(),
                "--initial-cluster".into(),
                format!("weft-test={peer_url}"),
                "--heartbeat-interval".into(),
                "10".into(),
                "--election-timeout".into(),
                "100".into(),
            ];
            (argv, 2)
        };
        let (process, ports) = ServerProcess::start(&SPEC, args, healthy).await?;
        Ok(Etcd {
            process,
            client_port: ports[0],
        })
    }

    /// Stops the member's process (SIGSTOP).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn pause(&self) -> std::io::Result<()> {
        self.process.signal(rustix::process::Signal::STOP)
    }

    /// Resumes it (SIGCONT).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn resume(&self) -> std::io::Result<()> {
        self.process.signal(rustix::process::Signal::CONT)
    }

    /// Kills it (SIGKILL), keeping its data dir.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills the member (SIGKILL) and starts it again on the same ports and
    /// data dir; waits until it is healthy.
    ///
    /// # Errors
    ///
    /// If it does not come back healthy.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.process.restart(healthy, &[self.client_port]).await
    }

    /// The client endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The client address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.client_port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's temp dir (data and log).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}

/// Healthy means the member has a leader and serves reads, which an open
/// port does not say.
async fn healthy(ports: Vec<u16>) -> Result<(), String> {
    let response = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        http(&format!("127.0.0.1:{}", ports[0]), "GET", "/health", None),
    )
    .await
    .map_err(|_| "/health did not answer in 500 ms".to_string())?
    .map_err(|e| e.to_string())?;
    if response.status == 200
        && response
            .body
            .replace(' ', "")
            .contains(r#""health":"true""#)
    {
        Ok(())
    } else {
        Err(format!(
            "/health answered {}: {}",
            response.status, response.body
        ))
    }
}

/// A three-member etcd cluster on loopback, each member in its own temp
/// dir, for fault tests (kill the leader, pause a member).
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    process: ServerProcess,
    client_port: u16,
}

impl EtcdCluster {
    /// Starts three members and waits until each reports healthy.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] without etcd; the other variants when
    /// a member does not start or the cluster does not elect a leader.
    pub async fn start() -> Result<EtcdCluster, HarnessError> {
        let ports = crate::process::free_ports(6).map_err(|source| HarnessError::Spawn {
            binary: "etcd",
            source,
        })?;
        let cluster = (0..3)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let starts = (0..3).map(|i| {
            let (client, peer, cluster) = (ports[2 * i], ports[2 * i + 1], cluster.clone());
            async move {
                let args = move |dir: &Path, _: &[u16]| -> (Vec<String>, usize) {
                    let client_url = format!("http://127.0.0.1:{client}");
                    let peer_url = format!("http://127.0.0.1:{peer}");
                    let argv = vec![
                        "--name".into(),
                        format!("m{i}"),
                        "--data-dir".into(),
                        dir.join("data").display().to_string(),
                        "--listen-client-urls".into(),
                        client_url.clone(),
                        "--advertise-client-urls".into(),
                        client_url,
                        "--listen-peer-urls".into(),
                        peer_url.clone(),
                        "--initial-advertise-peer-urls".into(),
                        peer_url,
                        "--initial-cluster".into(),
                        cluster.clone(),
                        "--initial-cluster-state".into(),
                        "new".into(),
                        "--initial-cluster-token".into(),
                        "weft-test".into(),
                        "--heartbeat-interval".into(),
                        "10".into(),
                        "--election-timeout".into(),
                        "100".into(),
                    ];
                    (argv, 0)
                };
                let (process, _) =
                    ServerProcess::start(&SPEC, args, move |_| healthy(vec![client])).await?;
                Ok::<_, HarnessError>(Member {
                    process,
                    client_port: client,
                })
            }
        });
        let members = futures::future::join_all(starts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EtcdCluster { members })
    }

    /// The client endpoints of the members still running.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The index of the current leader, asked of each member in turn.
    pub async fn leader(&self) -> Option<usize> {
        for m in &self.members {
            let Ok(Ok(r)) = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                http(
                    &format!("127.0.0.1:{}", m.client_port),
                    "POST",
                    "/v3/maintenance/status",
                    Some("{}"),
                ),
            )
            .await
            else {
                continue;
            };
            let field = |name: &str| {
                let at = r.body.find(&format!("\"{name}\":\""))? + name.len() + 4;
                Some(r.body[at..].split('"').next()?.to_string())
            };
            let (Some(leader), Some(me)) = (field("leader"), field("member_id")) else {
                continue;
            };
            if leader != me {
                // Ask the leader itself: find which member has that id.
                continue;
            }
            return self
                .members
                .iter()
                .position(|x| x.client_port == m.client_port);
        }
        None
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.members[i].process.kill();
    }

    /// Pauses member `i` (SIGSTOP).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn pause(&self, i: usize) -> std::io::Result<()> {
        self.members[i]
            .process
            .signal(rustix::process::Signal::STOP)
    }

    /// Resumes member `i` (SIGCONT).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn resume(&self, i: usize) -> std::io::Result<()> {
        self.members[i]
            .process
            .signal(rustix::process::Signal::CONT)
    }
}

/// Starts a private three-member etcd cluster for a test, or returns `None`
/// (after a loud message) when etcd is not installed and `CI` is not `true`.
///
/// # Panics
///
/// As [`etcd`].
pub async fn etcd_cluster() -> Option<EtcdCluster> {
    require("etcd cluster", EtcdCluster::start().await)
}

/// Starts a private etcd for a test, or returns `None` (after a loud message
/// on stderr) when etcd is not installed and `CI` is not `true`.
///
/// # Panics
///
/// When etcd is missing under `CI=true` (naming the Debian package
/// `etcd-server`), or when it is installed but does not become healthy.
pub async fn etcd() -> Option<Etcd> {
    require("etcd", Etcd::start().await)
}
