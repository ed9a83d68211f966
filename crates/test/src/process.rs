//! Starting, probing and stopping one server process.

use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server's binary is not on this machine.
    #[error(
        "{binary} is not installed: install the Debian package {package} (apt-get install {package})"
    )]
    NotInstalled {
        /// The binary looked for.
        binary: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// Creating the temp dir, the log file or the process failed.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server exited before it was ready.
    #[error("{binary} exited with {status} before it was ready; log {log}:\n{tail}")]
    Exited {
        /// The binary.
        binary: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Path of its log.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// The server did not answer its readiness probe in time.
    #[error(
        "{binary} did not become ready within {waited:?}; last probe error: {last}; log {log}:\n{tail}"
    )]
    NotReady {
        /// The binary.
        binary: &'static str,
        /// How long the harness waited.
        waited: Duration,
        /// The last probe failure.
        last: String,
        /// Path of its log.
        log: String,
        /// The end of its log.
        tail: String,
    },
}

/// How long a server may take to answer its readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// Attempts with fresh ports when a server dies at start (its port was
/// taken between our pick and its bind).
const START_ATTEMPTS: usize = 3;

/// What a server needs to be started by [`ServerProcess::start`].
pub(crate) struct Spec {
    pub(crate) binary: &'static str,
    pub(crate) package: &'static str,
    /// Free loopback ports offered to the arguments.
    pub(crate) ports: usize,
}

/// A running server: its process, temp dir and log.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    binary: &'static str,
    exe: PathBuf,
    argv: Vec<String>,
    child: Child,
    dir: Option<TempDir>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the server with the arguments `args(dir)` gives, then waits
    /// until `probe` succeeds. Retries with new ports if the process exits
    /// during startup.
    pub(crate) async fn start<A, P, F>(
        spec: &Spec,
        mut args: A,
        probe: P,
    ) -> Result<(ServerProcess, Vec<u16>), HarnessError>
    where
        A: FnMut(&Path, &[u16]) -> (Vec<String>, usize),
        P: Fn(Vec<u16>) -> F,
        F: Future<Output = Result<(), String>>,
    {
        let exe = find_binary(spec.binary).ok_or(HarnessError::NotInstalled {
            binary: spec.binary,
            package: spec.package,
        })?;
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix(&format!("weft-{}-", spec.binary))
                .tempdir()
                .map_err(|source| spawn_err(spec, source))?;
            let ports = free_ports(spec.ports).map_err(|source| spawn_err(spec, source))?;
            let (argv, used) = args(dir.path(), &ports);
            let ports = ports[..used].to_vec();
            let log = dir.path().join(format!("{}.log", spec.binary));
            let out = File::create(&log).map_err(|source| spawn_err(spec, source))?;
            let err = out.try_clone().map_err(|source| spawn_err(spec, source))?;
            let child = Command::new(&exe)
                .args(&argv)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| spawn_err(spec, source))?;
            let mut server = ServerProcess {
                binary: spec.binary,
                exe: exe.clone(),
                argv,
                child,
                dir: Some(dir),
                log,
            };
            match server.wait_ready(&probe, &ports).await {
                Ok(()) => return Ok((server, ports)),
                Err(e @ HarnessError::Exited { .. }) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| spawn_err(spec, std::io::Error::other("no attempt made"))))
    }

    async fn wait_ready<P, F>(&mut self, probe: &P, ports: &[u16]) -> Result<(), HarnessError>
    where
        P: Fn(Vec<u16>) -> F,
        F: Future<Output = Result<(), String>>,
    {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::Exited {
                    binary: self.binary,
                    status,
                    log: self.log.display().to_string(),
                    tail: self.log_tail(),
                });
            }
            let last = match tokio::time::timeout(PROBE_TIMEOUT, probe(ports.to_vec())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => format!("probe took longer than {PROBE_TIMEOUT:?}"),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::NotReady {
                    binary: self.binary,
                    waited: READY_TIMEOUT,
                    last,
                    log: self.log.display().to_string(),
                    tail: self.log_tail(),
                });
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the server's own process.
    pub(crate) fn signal(&self, signal: rustix::process::Signal) -> std::io::Result<()> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32)
            .ok_or_else(|| std::io::Error::other("no pid"))?;
        rustix::process::kill_process(pid, signal).map_err(std::io::Error::from)
    }

    /// Kills the server (SIGKILL) and reaps it, keeping its dir.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again with the same arguments, port and dir, and
    /// waits until `probe` succeeds.
    pub(crate) async fn restart<P, F>(
        &mut self,
        probe: P,
        ports: &[u16],
    ) -> Result<(), HarnessError>
    where
        P: Fn(Vec<u16>) -> F,
        F: Future<Output = Result<(), String>>,
    {
        self.kill();
        let out = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .map_err(|source| HarnessError::Spawn {
                binary: self.binary,
                source,
            })?;
        let err = out.try_clone().map_err(|source| HarnessError::Spawn {
            binary: self.binary,
            source,
        })?;
        self.child = Command::new(&self.exe)
            .args(&self.argv)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                binary: self.binary,
                source,
            })?;
        self.wait_ready(&probe, ports).await
    }

    pub(crate) fn dir(&self) -> &Path {
        // invariant: `dir` is only taken in `drop`.
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Kill by our own child's pid (SIGKILL), then reap it so no zombie
        // outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let kept = self.dir.take().map(TempDir::keep);
            eprintln!(
                "==== {} log ({}), kept in {} ====\n{}\n==== end of {} log ====",
                self.binary,
                self.log.display(),
                kept.as_deref()
                    .map_or_else(String::new, |p| p.display().to_string()),
                std::fs::read_to_string(&self.log).unwrap_or_default(),
                self.binary,
            );
        }
    }
}

fn spawn_err(spec: &Spec, source: std::io::Error) -> HarnessError {
    HarnessError::Spawn {
        binary: spec.binary,
        source,
    }
}

/// Ports that were free on 127.0.0.1 a moment ago: bound to port 0 and
/// released together, so they are distinct.
pub(crate) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Turns a start result into the harness's policy: a missing server skips
/// the test loudly, or fails it under `CI=true`; any other failure fails it.
pub(crate) fn require<T>(what: &str, started: Result<T, HarnessError>) -> Option<T> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    require_in(ci, what, started)
}

fn require_in<T>(ci: bool, what: &str, started: Result<T, HarnessError>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e @ HarnessError::NotInstalled { .. }) => {
            if ci {
                panic!("CI=true and the {what} test server is missing: {e}");
            }
            eprintln!(
                "\n!!!! SKIPPED: this test needs a {what} server: {e}. \
                 It would fail under CI=true. !!!!\n"
            );
            None
        }
        Err(e) => panic!("the {what} test server did not start: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> Result<(), HarnessError> {
        Err(HarnessError::NotInstalled {
            binary: "etcd",
            package: "etcd-server",
        })
    }

    #[test]
    #[should_panic(expected = "install the Debian package etcd-server")]
    fn a_missing_server_fails_under_ci_naming_the_package() {
        require_in(true, "etcd", missing());
    }

    #[test]
    fn a_missing_server_skips_outside_ci() {
        assert!(require_in(false, "etcd", missing()).is_none());
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(4).unwrap();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4);
    }
}
