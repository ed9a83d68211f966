//! A private `redis-server` for an example: a free loopback port, a temp
//! dir, no persistence; stopped by its handle.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts a private redis-server on a free loopback port: its URL, its
/// process and its dir (for the caller to kill and remove).
pub(crate) async fn start(
    tag: &str,
) -> Result<(String, Child, PathBuf), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("weft-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start redis-server ({e}): apt-get install redis-server, or set REDIS_URL"
            )
        })?;
    // Wait until it accepts connections.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok((format!("redis://127.0.0.1:{port}"), child, dir));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("redis-server did not start listening".into())
}
