//! A private nginx or HAProxy on loopback, for checking that weft places
//! keys as the real proxy does.

use std::path::Path;

use tokio::net::TcpStream;

use crate::process::{HarnessError, ServerProcess, Spec, require};

/// Which proxy to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// nginx (Debian package `nginx-light`), one process
    /// (`master_process off`).
    Nginx,
    /// HAProxy (Debian package `haproxy`), in the foreground (`-db`).
    Haproxy,
}

/// A running proxy private to one test: its configuration, log and pid
/// file live in a temp dir, its ports are free loopback ports.
#[derive(Debug)]
pub struct HttpProxy {
    process: ServerProcess,
    ports: Vec<u16>,
}

impl HttpProxy {
    /// Starts `kind` with the configuration `config(ports)` writes, given
    /// `ports` free loopback ports, and waits until the first `listening`
    /// of them accept connections.
    ///
    /// For nginx the harness adds the `pid`, `error_log` and
    /// `master_process off` lines and the `http` block's temp paths; the
    /// configuration is the inside of `http { }`. For HAProxy it is the
    /// whole file; the harness starts it in the foreground.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] when the proxy is not on this
    /// machine; the other variants when it refuses the configuration or
    /// does not listen.
    pub async fn start<C>(
        kind: ProxyKind,
        ports: usize,
        listening: usize,
        config: C,
    ) -> Result<HttpProxy, HarnessError>
    where
        C: Fn(&[u16]) -> String,
    {
        let spec = match kind {
            ProxyKind::Nginx => Spec {
                binary: "nginx",
                package: "nginx-light",
                ports,
            },
            ProxyKind::Haproxy => Spec {
                binary: "haproxy",
                package: "haproxy",
                ports,
            },
        };
        let args = |dir: &Path, ports: &[u16]| {
            let body = config(ports);
            let (file, text, argv) = match kind {
                ProxyKind::Nginx => {
                    let conf = dir.join("nginx.conf");
                    let text = format!(
                        "master_process off;\ndaemon off;\npid {dir}/nginx.pid;\n\
                         error_log {dir}/nginx.log warn;\n\
                         events {{ worker_connections 256; }}\n\
                         http {{\n  access_log off;\n\
                         client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
                         fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n\
                         scgi_temp_path {dir}/scgi;\n{body}\n}}\n",
                        dir = dir.display()
                    );
                    let argv = vec![
                        "-p".to_string(),
                        dir.display().to_string(),
                        "-e".to_string(),
                        dir.join("nginx.log").display().to_string(),
                        "-c".to_string(),
                        conf.display().to_string(),
                    ];
                    (conf, text, argv)
                }
                ProxyKind::Haproxy => {
                    let conf = dir.join("haproxy.cfg");
                    let argv = vec![
                        "-db".to_string(),
                        "-f".to_string(),
                        conf.display().to_string(),
                    ];
                    (conf, body, argv)
                }
            };
            // A failed write shows as the proxy refusing its configuration.
            let _ = std::fs::write(file, text);
            (argv, ports.len())
        };
        let probe = move |ports: Vec<u16>| async move {
            for port in &ports[..listening.min(ports.len())] {
                TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .map_err(|e| format!("port {port}: {e}"))?;
            }
            Ok(())
        };
        let (process, ports) = ServerProcess::start(&spec, args, probe).await?;
        Ok(HttpProxy { process, ports })
    }

    /// The `i`-th port the configuration was given.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// All the ports the configuration was given.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The proxy's log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}

/// Starts a private proxy for a test (see [`HttpProxy::start`]), or
/// returns `None` (after a loud message) when it is not installed and `CI`
/// is not `true`.
///
/// # Panics
///
/// When the proxy is missing under `CI=true` (naming the Debian package),
/// or when it is installed but refuses the configuration or does not
/// listen.
pub async fn http_proxy<C>(
    kind: ProxyKind,
    ports: usize,
    listening: usize,
    config: C,
) -> Option<HttpProxy>
where
    C: Fn(&[u16]) -> String,
{
    let what = match kind {
        ProxyKind::Nginx => "nginx",
        ProxyKind::Haproxy => "HAProxy",
    };
    require(what, HttpProxy::start(kind, ports, listening, config).await)
}
