//! One line of a twemproxy pool's `servers:` list.

use std::fmt;
use std::str::FromStr;

use crate::ShardError;

/// One server of a twemproxy pool, as a `servers:` line gives it:
/// `host:port:weight [name]` or `/path/to/socket:weight [name]`.
///
/// Its **point name**, which ketama hashes (`name-0`, `name-1`, …) and
/// which orders the pool, is the `name` when one is given, else `host`
/// when the port is 11211 (twemproxy leaves the default port out, as
/// libmemcached does), else `host:port`.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::TwemproxyServer;
///
/// let s: TwemproxyServer = "10.0.0.1:6379:2 cache-a".parse()?;
/// assert_eq!((s.weight(), s.point_name()), (2, "cache-a"));
/// let s: TwemproxyServer = "10.0.0.2:11211:1".parse()?;
/// assert_eq!(s.point_name(), "10.0.0.2");
/// assert!("10.0.0.3:6379".parse::<TwemproxyServer>().is_err()); // no weight
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwemproxyServer {
    line: String,
    address: String,
    weight: u32,
    name: Option<String>,
    point_name: String,
}

/// twemproxy's default port, left out of point names.
const DEFAULT_PORT: u16 = 11211;

impl TwemproxyServer {
    /// A server at `address` (`host:port` or a socket path) of `weight`,
    /// with an optional name.
    ///
    /// # Errors
    ///
    /// As parsing its `servers:` line.
    pub fn new(address: &str, weight: u32, name: Option<&str>) -> Result<Self, ShardError> {
        let line = match name {
            Some(n) => format!("{address}:{weight} {n}"),
            None => format!("{address}:{weight}"),
        };
        line.parse()
    }

    /// The address: `host:port`, or the socket path.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The name given after the address, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The string ketama hashes and the pool is ordered by.
    pub fn point_name(&self) -> &str {
        &self.point_name
    }
}

impl fmt::Display for TwemproxyServer {
    /// The `servers:` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Parses a `servers:` line as twemproxy does: the name is what follows
/// the last space, the weight what follows the last `:` before it, and for
/// a TCP address the port what follows the `:` before that.
impl FromStr for TwemproxyServer {
    type Err = ShardError;

    fn from_str(line: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::MemberSyntax {
            input: line.to_string(),
            reason,
        };
        let text = line.trim();
        let text = text.strip_prefix("- ").map_or(text, str::trim);
        let (endpoint, name) = match text.rsplit_once(' ') {
            Some((endpoint, name)) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(bad("empty server name after the space"));
                }
                (endpoint.trim_end(), Some(name.to_string()))
            }
            None => (text, None),
        };
        let (address, weight) = endpoint
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port:weight [name] or /path:weight [name]"))?;
        let weight: u32 = weight
            .parse()
            .map_err(|_| bad("weight is not a whole number"))?;
        if weight == 0 || weight > i32::MAX as u32 {
            return Err(bad("weight must be from 1 to 2147483647"));
        }
        let point_name = if address.starts_with('/') {
            if address.len() == 1 {
                return Err(bad("empty socket path"));
            }
            address.to_string()
        } else {
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port:weight [name]"))?;
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| bad("port is not a number in 0..=65535"))?;
            if port == DEFAULT_PORT {
                host.to_string()
            } else {
                address.to_string()
            }
        };
        Ok(TwemproxyServer {
            line: text.to_string(),
            address: address.to_string(),
            weight,
            point_name: name.clone().unwrap_or(point_name),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_like_twemproxys_config() {
        let s: TwemproxyServer = "- 127.0.0.1:6380:1 server1".parse().unwrap();
        assert_eq!(s.address(), "127.0.0.1:6380");
        assert_eq!(s.name(), Some("server1"));
        assert_eq!(s.point_name(), "server1");
        assert_eq!(s.to_string(), "127.0.0.1:6380:1 server1");
        let s: TwemproxyServer = "/tmp/redis.sock:3 local".parse().unwrap();
        assert_eq!((s.address(), s.weight()), ("/tmp/redis.sock", 3));
        let s: TwemproxyServer = "/tmp/redis.sock:3".parse().unwrap();
        assert_eq!(s.point_name(), "/tmp/redis.sock");
        let s: TwemproxyServer = "[::1]:6379:1".parse().unwrap();
        assert_eq!(s.point_name(), "[::1]:6379");
        assert_eq!(
            TwemproxyServer::new("10.0.0.1:11211", 5, None)
                .unwrap()
                .point_name(),
            "10.0.0.1"
        );
    }

    #[test]
    fn bad_lines_are_refused_by_what_is_wrong() {
        let reason = |line: &str| match line.parse::<TwemproxyServer>() {
            Err(ShardError::MemberSyntax { input, reason }) => {
                assert_eq!(input, line);
                reason
            }
            other => panic!("{line}: {other:?}"),
        };
        assert!(reason("127.0.0.1:6379").contains("weight"));
        assert!(reason("127.0.0.1:6379:0").contains("from 1"));
        assert!(reason("127.0.0.1:6379:-1").contains("whole number"));
        assert!(reason("127.0.0.1:6379:2147483648").contains("from 1"));
        assert!(reason("127.0.0.1:99999:1").contains("port"));
        assert!(reason(":6379:1").contains("empty host"));
        assert!(reason("localhost:1").contains("host:port"));
        assert!(reason("/:1").contains("socket path"));
        assert!(reason("").contains("expected"));
    }
}
