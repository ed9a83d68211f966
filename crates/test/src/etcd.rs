//! A single-member etcd on loopback.

use std::path::Path;

use crate::http::http;
use crate::process::{HarnessError, ServerProcess, Spec, require};

const SPEC: Spec = Spec {
    binary: "etcd",
    package: "etcd-server",
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
        let args = |dir: &Path, ports: &[u16]| {
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
        let (process, ports) = ServerProcess::start(&SPEC, args, |ports| async move {
            let response = http(&format!("127.0.0.1:{}", ports[0]), "GET", "/health", None)
                .await
                .map_err(|e| e.to_string())?;
            // Healthy means the member has a leader and serves reads, which
            // an open port does not say.
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
        })
        .await?;
        Ok(Etcd {
            process,
            client_port: ports[0],
        })
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
