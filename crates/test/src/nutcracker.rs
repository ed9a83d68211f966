//! A private twemproxy (nutcracker) on loopback, for checking that weft
//! places keys as the real proxy does.

use std::path::Path;

use tokio::net::TcpStream;

use crate::process::{HarnessError, ServerProcess, Spec, require};

/// A running nutcracker with one listening port per pool, private to one
/// test: its configuration, log and stats port live in a temp dir and on
/// free loopback ports.
#[derive(Debug)]
pub struct Nutcracker {
    process: ServerProcess,
    ports: Vec<u16>,
}

impl Nutcracker {
    /// Starts nutcracker with `pools`, each a name and the body of its YAML
    /// block without `listen:` (indented two spaces), and waits until every
    /// pool accepts connections. Pool `i` listens on
    /// [`port(i)`](Nutcracker::port).
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] when `nutcracker` is not on this
    /// machine (Debian package `nutcracker`); the other variants when it
    /// refuses the configuration or does not listen.
    pub async fn start(pools: &[(String, String)]) -> Result<Nutcracker, HarnessError> {
        let spec = Spec {
            binary: "nutcracker",
            package: "nutcracker",
            ports: pools.len() + 1,
        };
        let args = |dir: &Path, ports: &[u16]| {
            let mut yaml = String::new();
            for ((name, body), port) in pools.iter().zip(ports) {
                yaml.push_str(&format!("{name}:\n  listen: 127.0.0.1:{port}\n{body}\n"));
            }
            let conf = dir.join("nutcracker.yml");
            // A failed write shows as nutcracker refusing its configuration.
            let _ = std::fs::write(&conf, yaml);
            let argv = [
                "-c".to_string(),
                conf.display().to_string(),
                "-s".to_string(),
                ports[pools.len()].to_string(),
                "-a".to_string(),
                "127.0.0.1".to_string(),
                "-p".to_string(),
                dir.join("nutcracker.pid").display().to_string(),
            ]
            .to_vec();
            (argv, pools.len() + 1)
        };
        let count = pools.len();
        let probe = move |ports: Vec<u16>| async move {
            for port in &ports[..count] {
                TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .map_err(|e| format!("pool port {port}: {e}"))?;
            }
            Ok(())
        };
        let (process, ports) = ServerProcess::start(&spec, args, probe).await?;
        Ok(Nutcracker { process, ports })
    }

    /// The port pool `i` listens on.
    pub fn port(&self, pool: usize) -> u16 {
        self.ports[pool]
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}

/// Starts a private nutcracker for a test, or returns `None` (after a loud
/// message) when it is not installed and `CI` is not `true`.
///
/// # Panics
///
/// When nutcracker is missing under `CI=true` (naming the Debian package),
/// or when it is installed but refuses the configuration or does not
/// listen.
pub async fn nutcracker(pools: &[(String, String)]) -> Option<Nutcracker> {
    require("nutcracker", Nutcracker::start(pools).await)
}
