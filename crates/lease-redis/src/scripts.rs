//! The Lua scripts that make each write one atomic step on the server:
//! versions come from a counter key that never expires, so a key's version
//! increases across deletes and expiries.

use redis::Script;

const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  local c = redis.call('HMGET', KEYS[1], 'ver', 'cre', 'val')
  return {0, c[1], c[2], c[3]}
end
local v = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'val', ARGV[1], 'ver', v, 'cre', v)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, v, v}
";

/// A script that runs `$body` only if the key's version is `ARGV[1]`:
/// `{-1}` when the key is absent, `{0, version, created, value}` when the
/// version differs.
macro_rules! guarded {
    ($body:literal) => {
        concat!(
            r"
local cur = redis.call('HGET', KEYS[1], 'ver')
if not cur then return {-1} end
if cur ~= ARGV[1] then
  local c = redis.call('HMGET', KEYS[1], 'ver', 'cre', 'val')
  return {0, c[1], c[2], c[3]}
end
",
            $body
        )
    };
}

const SWAP: &str = guarded!(
    r"
local v = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'val', ARGV[2], 'ver', v)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, v, redis.call('HGET', KEYS[1], 'cre')}
"
);

const DELETE: &str = guarded!(
    r"
redis.call('DEL', KEYS[1])
return {1, redis.call('INCR', KEYS[2])}
"
);

const REFRESH: &str = guarded!(
    r"
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, cur}
"
);

/// The scripts, loaded once per store.
#[derive(Clone)]
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) swap: Script,
    pub(crate) delete: Script,
    pub(crate) refresh: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            create: Script::new(CREATE),
            swap: Script::new(SWAP),
            delete: Script::new(DELETE),
            refresh: Script::new(REFRESH),
        }
    }
}
