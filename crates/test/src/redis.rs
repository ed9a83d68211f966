//! A private Redis on loopback, and just enough RESP to talk to it.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::process::{HarnessError, ServerProcess, Spec, require};

const SPEC: Spec = Spec {
    binary: "redis-server",
    package: "redis-server",
    ports: 4,
};

/// A running Redis, private to one test: no persistence, bound to
/// 127.0.0.1 only.
#[derive(Debug)]
pub struct Redis {
    process: ServerProcess,
    port: u16,
}

/// One RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and the like.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` bytes, or `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `None` for the null array.
    Array(Option<Vec<Reply>>),
}

impl Redis {
    /// Starts redis-server on a free loopback port in a new temp dir and
    /// waits until it answers `PING`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] when `redis-server` is not on this
    /// machine; the other variants when it does not start or answer.
    pub async fn start() -> Result<Redis, HarnessError> {
        Redis::start_with(false).await
    }

    /// Starts redis-server with every write persisted before it is
    /// acknowledged (`--appendonly yes --appendfsync always`), so a restart
    /// keeps its data.
    ///
    /// # Errors
    ///
    /// As [`Redis::start`].
    pub async fn start_persistent() -> Result<Redis, HarnessError> {
        Redis::start_with(true).await
    }

    async fn start_with(persistent: bool) -> Result<Redis, HarnessError> {
        Redis::spawn(persistent, |_| Vec::new()).await
    }

    /// Starts redis-server on a free loopback port in a temp dir, with
    /// `extra(dir)` after the common arguments.
    async fn spawn(
        persistent: bool,
        extra: fn(&Path) -> Vec<String>,
    ) -> Result<Redis, HarnessError> {
        let args = move |dir: &Path, ports: &[u16]| {
            let aof = if persistent { "yes" } else { "no" };
            let mut argv = [
                "--port",
                &ports[0].to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                aof,
                "--dir",
                &dir.display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            if persistent {
                argv.extend(["--appendfsync".to_string(), "always".to_string()]);
            }
            argv.extend(extra(dir));
            (argv, 1)
        };
        let (process, ports) = ServerProcess::start(&SPEC, args, ping).await?;
        Ok(Redis {
            process,
            port: ports[0],
        })
    }

    /// Stops the server's process (SIGSTOP): it keeps its connections but
    /// answers nothing, as in a long GC or VM pause.
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn pause(&self) -> std::io::Result<()> {
        self.process.signal(rustix::process::Signal::STOP)
    }

    /// Resumes a paused server (SIGCONT).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn resume(&self) -> std::io::Result<()> {
        self.process.signal(rustix::process::Signal::CONT)
    }

    /// Kills the server (SIGKILL), keeping its dir.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port and dir.
    ///
    /// # Errors
    ///
    /// If it does not come back.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.process.restart(ping, &[self.port]).await
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Sends one command on a new connection and reads its reply.
    ///
    /// # Errors
    ///
    /// Connection and I/O errors; `InvalidData` for a reply that is not
    /// RESP.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes its connection.
    pub async fn command(&self, args: &[&str]) -> std::io::Result<Reply> {
        command_at(&self.addr(), args).await
    }
}

async fn ping(ports: Vec<u16>) -> Result<(), String> {
    match command_at(&format!("127.0.0.1:{}", ports[0]), &["PING"]).await {
        Ok(Reply::Simple(s)) if s == "PONG" => Ok(()),
        Ok(other) => Err(format!("PING answered {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn command_at(addr: &str, args: &[&str]) -> std::io::Result<Reply> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await?);
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.get_mut().write_all(request.as_bytes()).await?;
    read_reply(&mut stream).await
}

async fn read_reply(stream: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let line = line
        .strip_suffix("\r\n")
        .ok_or_else(|| bad(format!("unterminated RESP line {line:?}")))?
        .to_string();
    let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| bad(format!("bad RESP length {rest:?}")))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(len) => {
                let mut data = vec![0; len + 2];
                stream.read_exact(&mut data).await?;
                data.truncate(len);
                Reply::Bulk(Some(data))
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Array(None),
            Ok(len) => {
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(Box::pin(read_reply(stream)).await?);
                }
                Reply::Array(Some(items))
            }
        },
        _ => return Err(bad(format!("unknown RESP reply {line:?}"))),
    })
}

/// Starts a private Redis for a test, or returns `None` (after a loud
/// message on stderr) when redis-server is not installed and `CI` is not
/// `true`.
///
/// # Panics
///
/// When redis-server is missing under `CI=true` (naming the Debian package
/// `redis-server`), or when it is installed but does not answer.
pub async fn redis() -> Option<Redis> {
    require("Redis", Redis::start().await)
}

/// A private Redis Cluster of masters (no replicas) on loopback, each in
/// its own temp dir, joined with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Redis>,
}

impl RedisCluster {
    /// Starts `masters` cluster-enabled servers (at least 3, as Redis
    /// requires), joins them, and waits until every node reports
    /// `cluster_state:ok`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotInstalled`] without `redis-server` or
    /// `redis-cli`; the other variants if the cluster does not form.
    pub async fn start(masters: usize) -> Result<RedisCluster, HarnessError> {
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            let cluster = |dir: &Path| {
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &dir.join("nodes.conf").display().to_string(),
                    "--cluster-node-timeout",
                    "60000",
                ]
                .map(String::from)
                .to_vec()
            };
            nodes.push(Redis::spawn(false, cluster).await?);
        }
        let cli = crate::process::find_binary("redis-cli").ok_or(HarnessError::NotInstalled {
            binary: "redis-cli",
            package: "redis-tools",
        })?;
        let spawn_err = |source| HarnessError::Spawn {
            binary: "redis-cli",
            source,
        };
        let mut create = std::process::Command::new(cli);
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(n.addr());
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(spawn_err)?;
        if !out.status.success() {
            return Err(HarnessError::Exited {
                binary: "redis-cli",
                status: out.status,
                log: "stdout".into(),
                tail: String::from_utf8_lossy(&out.stdout).into_owned(),
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for n in &nodes {
            loop {
                if let Ok(Reply::Bulk(Some(info))) = n.command(&["CLUSTER", "INFO"]).await
                    && String::from_utf8_lossy(&info).contains("cluster_state:ok")
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(HarnessError::NotReady {
                        binary: "redis-server (cluster)",
                        waited: Duration::from_secs(30),
                        last: "cluster_state is not ok".into(),
                        log: n.log_path().display().to_string(),
                        tail: String::new(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(RedisCluster { nodes })
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Redis] {
        &self.nodes
    }

    /// The node owning `key`'s hash slot (by `CLUSTER KEYSLOT` and
    /// `CLUSTER SLOTS`).
    ///
    /// # Errors
    ///
    /// I/O errors, or `InvalidData` for replies not of that shape.
    pub async fn owner_of(&self, key: &str) -> std::io::Result<usize> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let Reply::Integer(slot) = self.nodes[0].command(&["CLUSTER", "KEYSLOT", key]).await?
        else {
            return Err(bad("CLUSTER KEYSLOT"));
        };
        let Reply::Array(Some(ranges)) = self.nodes[0].command(&["CLUSTER", "SLOTS"]).await? else {
            return Err(bad("CLUSTER SLOTS"));
        };
        for r in ranges {
            let Reply::Array(Some(parts)) = r else {
                continue;
            };
            let (Reply::Integer(lo), Reply::Integer(hi)) = (&parts[0], &parts[1]) else {
                continue;
            };
            if (*lo..=*hi).contains(&slot)
                && let Reply::Array(Some(master)) = &parts[2]
                && let Reply::Integer(port) = &master[1]
            {
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port) == *port)
                    .ok_or_else(|| bad("a master not started here"));
            }
        }
        Err(bad("no master for the slot"))
    }
}

/// Starts a private Redis Cluster of `masters` for a test, or returns
/// `None` (after a loud message) when Redis is not installed and `CI` is not
/// `true`.
///
/// # Panics
///
/// As [`redis`].
pub async fn redis_cluster(masters: usize) -> Option<RedisCluster> {
    require("Redis Cluster", RedisCluster::start(masters).await)
}
