//! The Lua scripts: each one check and its writes, atomic on the server.
//!
//! # The fence
//!
//! A commit applies only where its consumer still holds the entry at the
//! delivery it was given. Reading every entry's pending record to check
//! that is the costliest part of a commit, so each consumer keeps a fence
//! record, the hash `<prefix>:fence:<consumer>`:
//!
//! - `e`: the entries weft's scripts put in the consumer's pending list,
//!   less those they took out. Every script that changes a consumer's
//!   pending list (a read, a commit, a dead letter, another consumer's
//!   reclaim) changes `e` in the same step, so `e` equals the count Redis
//!   reports unless a client outside weft (`XCLAIM`, `XAUTOCLAIM`, `XACK`,
//!   `XGROUP SETID` or `DELCONSUMER`) changed the list.
//! - `x:<id>`, with their number in `t`: the entries another consumer's
//!   reclaim took from this one.
//! - `u`: set once a commit saw `e` differ from Redis's count.
//!
//! A commit trusts that an entry is still its consumer's, at its delivery,
//! when `e` matches, `u` is unset and the entry has no mark (nothing but
//! a weft reclaim takes an entry, and that leaves a mark). Otherwise it
//! reads the pending records of the batch, as every commit would without
//! the fence. A record that is gone (unused for 7 days, or deleted) is
//! made anew only by a source's first read: a consumer that lost its
//! record stays on the slow path for good.

use redis::Script;

/// How long a fence record outlives its last use (ms): 7 days.
const FENCE_TTL: &str = "604800000";

/// `pending_of(name)`: the entries pending at consumer `name` in group
/// `ARGV[1]` of stream `KEYS[1]` (the summary form of `XPENDING`, one pass
/// over the group's consumers).
const PENDING_OF: &str = r"
local function pending_of(name)
  local s = redis.call('XPENDING', KEYS[1], ARGV[1])
  if type(s[4]) == 'table' then
    for _, c in ipairs(s[4]) do
      if c[1] == name then return tonumber(c[2]) end
    end
  end
  return 0
end
";

/// Before a read (in its transaction): notes the consumer's pending count
/// in its fence record, making the record if `init` and there is none.
///
/// KEYS: stream, fence. ARGV: group, consumer, init (`1` or `0`).
const READ_BEFORE: &str = r"
local n = pending_of(ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'b', n)
elseif ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'e', n, 't', 0, 'b', n)
end
return n
";

/// After a read (in its transaction): adds what the read delivered to the
/// fence record's count. Returns the id of the stream's last entry (`0-0`
/// if it is empty) when the read delivered nothing, for the wait that
/// follows; `''` otherwise.
///
/// KEYS: stream, fence. ARGV: group, consumer.
const READ_AFTER: &str = r"
local n = pending_of(ARGV[2])
local b = redis.call('HGET', KEYS[2], 'b')
if b then
  redis.call('HINCRBY', KEYS[2], 'e', n - tonumber(b))
  redis.call('HDEL', KEYS[2], 'b')
  redis.call('PEXPIRE', KEYS[2], FENCE_TTL)
  if n ~= tonumber(b) then return '' end
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 1 then return last[1][1] end
return '0-0'
";

/// Commits entries only where this consumer still holds them at the
/// delivery it was given (see the fence above): acknowledges each,
/// appending its outputs to their output streams or its dead letter to the
/// dead-letter stream in the same step; and keeps the batch's results
/// under its batch number, so that a batch retried after an unknown
/// outcome gets the results its first try committed and appends nothing
/// twice.
///
/// KEYS: stream, receipt, dead stream, fence, then the output streams.
/// ARGV: group, consumer, batch number (the same on every try of a batch),
/// output field, trim mode (`''`, `MAXLEN`, `MINID`), `~`, trim bound, the
/// lowest and highest id of the batch, the number of plain
/// acknowledgements and the number of dead letters; then the entries in
/// three runs: plain acknowledgements as `id, deliveries`; dead letters as
/// `id, deliveries, reason, class`; entries with outputs as `id,
/// deliveries, k` and their `k` payloads, each preceded by its output
/// stream's index from 0 when there is more than one output stream.
/// Returns one character per entry in that order: `1` committed, `0`
/// refused (another consumer holds the entry, or it is gone).
const COMMIT: &str = r"
local prev = redis.call('GET', KEYS[2])
if prev then
  local batch, results = string.match(prev, '^(%d+):([01]*)$')
  if batch == ARGV[3] then return results end
end
local fence = redis.call('HMGET', KEYS[4], 'e', 't', 'u')
local trusted = false
if fence[1] and not fence[3] then
  trusted = tonumber(fence[1]) == pending_of(ARGV[2])
  if not trusted then
    redis.log(redis.LOG_WARNING, 'weft: the pending list of ' .. ARGV[2] .. ' on ' .. KEYS[1] .. ' was changed outside weft; its commits check every entry from now on')
    redis.call('HSET', KEYS[4], 'u', 1)
  end
end
local paired = #KEYS > 5
local step = paired and 2 or 1
local argc = #ARGV
local plain = 12
local dead = plain + 2 * tonumber(ARGV[10])
local outputs = dead + 4 * tonumber(ARGV[11])
-- The ids of the batch, in order.
local function ids()
  local list = {}
  for i = plain, dead - 1, 2 do list[#list + 1] = ARGV[i] end
  for i = dead, outputs - 1, 4 do list[#list + 1] = ARGV[i] end
  local i = outputs
  while i <= argc do
    list[#list + 1] = ARGV[i]
    i = i + 3 + tonumber(ARGV[i + 2]) * step
  end
  return list
end
-- The batch's entries another consumer's reclaim took from this one: each
-- is checked on its own, and its mark is settled.
local marked = {}
if tonumber(fence[2] or '0') > 0 then
  local names = {}
  local list = ids()
  for k, id in ipairs(list) do names[k] = 'x:' .. id end
  local got = redis.call('HMGET', KEYS[4], unpack(names))
  local settled = {}
  for k, id in ipairs(list) do
    if got[k] then
      marked[id] = true
      settled[#settled + 1] = names[k]
    end
  end
  if #settled > 0 then
    redis.call('HDEL', KEYS[4], unpack(settled))
    redis.call('HINCRBY', KEYS[4], 't', -#settled)
  end
end
-- Without trust, this consumer's pending entries in the batch's id range,
-- with their delivery counts: one range read for the whole batch.
local held
if not trusted then
  held = {}
  for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[8], ARGV[9], 1000000, ARGV[2])) do
    held[p[1]] = p[4]
  end
end
local out, acks, seen, k = {}, {}, {}, 0
-- Whether this consumer holds `id` at delivery `n`; records the answer (an
-- id twice in a batch commits once).
local function mine(id, n)
  local ok
  if seen[id] then
    ok = false
  elseif held then
    ok = held[id] == tonumber(n)
  elseif marked[id] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])
    ok = #p == 1 and p[1][4] == tonumber(n)
  else
    ok = true
  end
  if ok then
    seen[id] = true
    k = k + 1
    acks[k] = id
  end
  out[#out + 1] = ok and '1' or '0'
  return ok
end
for i = plain, dead - 1, 2 do
  mine(ARGV[i], ARGV[i + 1])
end
for i = dead, outputs - 1, 4 do
  local id, n = ARGV[i], ARGV[i + 1]
  if mine(id, n) then
    local x = redis.call('XRANGE', KEYS[1], id, id)
    local fields = {'id', id, 'reason', ARGV[i + 2], 'class', ARGV[i + 3], 'deliveries', n}
    if #x == 1 then
      for _, f in ipairs(x[1][2]) do fields[#fields + 1] = f end
    end
    redis.call('XADD', KEYS[3], '*', unpack(fields))
  end
end
local field, trim = ARGV[4], ARGV[5] ~= ''
local i = outputs
while i <= argc do
  local first = i + 3
  local last = first + tonumber(ARGV[i + 2]) * step - 1
  if mine(ARGV[i], ARGV[i + 1]) then
    for j = first, last, step do
      local target, payload = KEYS[5], ARGV[j]
      if paired then target, payload = KEYS[5 + tonumber(ARGV[j])], ARGV[j + 1] end
      if trim then
        redis.call('XADD', target, ARGV[5], ARGV[6], ARGV[7], '*', field, payload)
      else
        redis.call('XADD', target, '*', field, payload)
      end
    end
  end
  i = last + 1
end
if #acks > 0 then
  local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(acks))
  if fence[1] then
    redis.call('HINCRBY', KEYS[4], 'e', -acked)
    if trusted and acked ~= #acks then
      redis.log(redis.LOG_WARNING, 'weft: ' .. ARGV[2] .. ' on ' .. KEYS[1] .. ' committed entries no longer pending; its commits check every entry from now on')
      redis.call('HSET', KEYS[4], 'u', 1)
    end
  end
end
if fence[1] then
  redis.call('PEXPIRE', KEYS[4], FENCE_TTL)
end
local results = table.concat(out)
redis.call('SET', KEYS[2], ARGV[3] .. ':' .. results, 'PX', 86400000)
return results
";

/// Moves one entry to the dead-letter stream, if this consumer still holds
/// it at this delivery: appends `id`, `reason`, `class`, `deliveries` and
/// the entry's own fields, then acknowledges it.
///
/// KEYS: stream, dead stream, fence. ARGV: group, consumer, id, delivery
/// count, reason, class. Returns 1 if moved, 0 if another consumer holds it.
const DEAD_LETTER: &str = r"
local id, n = ARGV[3], ARGV[4]
local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
if #p ~= 1 or p[1][2] ~= ARGV[2] or tostring(p[1][4]) ~= n then return 0 end
local e = redis.call('XRANGE', KEYS[1], id, id)
local fields = {'id', id, 'reason', ARGV[5], 'class', ARGV[6], 'deliveries', n}
if #e == 1 then
  for _, f in ipairs(e[1][2]) do fields[#fields + 1] = f end
end
redis.call('XADD', KEYS[2], '*', unpack(fields))
local acked = redis.call('XACK', KEYS[1], ARGV[1], id)
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'e', -acked)
  if redis.call('HDEL', KEYS[3], 'x:' .. id) == 1 then
    redis.call('HINCRBY', KEYS[3], 't', -1)
  end
end
return 1
";

/// Claims entries other consumers left idle, with the delivery count each
/// has now; entries delivered more than the limit go to the dead-letter
/// stream instead (transient: retries ran out). Entries this consumer
/// holds itself are left alone, so its own slow work is taken over by
/// others, not renewed by itself. Every consumer whose pending count this
/// changes has it changed in its fence record too, and each entry taken
/// from a consumer is marked in that consumer's record.
///
/// KEYS: stream, dead stream. ARGV: group, consumer, min idle (ms),
/// cursor (`-` or an exclusive `(id`), count, max deliveries, the fence
/// records' prefix (a consumer's record is the prefix and its name).
/// Returns the next cursor (`-` after the last page), the claimed entries
/// as `{id, deliveries, fields}`, and the number dead-lettered.
const RECLAIM: &str = r"
local function counts()
  local m = {}
  local s = redis.call('XPENDING', KEYS[1], ARGV[1])
  if type(s[4]) == 'table' then
    for _, c in ipairs(s[4]) do m[c[1]] = tonumber(c[2]) end
  end
  return m
end
local page = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])
local cursor = '-'
if #page == tonumber(ARGV[5]) then cursor = '(' .. page[#page][1] end
local before = {}
if #page > 0 then before = counts() end
local out, dead, taken = {}, 0, {}
for _, e in ipairs(page) do
  local id = e[1]
  if e[2] ~= ARGV[2] then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
    taken[#taken + 1] = {e[2], id}
    if #c == 1 and c[1] then
      local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
      local n = p[1][4]
      local fields = c[1][2] or {}
      if n > tonumber(ARGV[6]) then
        local letter = {'id', id, 'reason', 'delivered ' .. n .. ' times without an acknowledgement', 'class', 'transient', 'deliveries', tostring(n)}
        for _, f in ipairs(fields) do letter[#letter + 1] = f end
        redis.call('XADD', KEYS[2], '*', unpack(letter))
        redis.call('XACK', KEYS[1], ARGV[1], id)
        dead = dead + 1
      else
        out[#out + 1] = {id, n, fields}
      end
    end
  end
end
if #taken > 0 then
  local after = counts()
  local names = {}
  for name in pairs(before) do names[name] = true end
  for name in pairs(after) do names[name] = true end
  for name in pairs(names) do
    local d = (after[name] or 0) - (before[name] or 0)
    local f = ARGV[7] .. name
    if d ~= 0 and redis.call('EXISTS', f) == 1 then
      redis.call('HINCRBY', f, 'e', d)
    end
  end
  for _, t in ipairs(taken) do
    local f = ARGV[7] .. t[1]
    if redis.call('EXISTS', f) == 1 and redis.call('HSETNX', f, 'x:' .. t[2], 1) == 1 then
      redis.call('HINCRBY', f, 't', 1)
    end
  end
end
return {cursor, out, dead}
";

/// Appends payloads a producer has not appended before: each has a
/// sequence number (`first`, `first + 1`, …), the producer record holds the
/// highest appended, and a payload at or below it is skipped. So a retry
/// of an append whose outcome was lost appends nothing twice.
///
/// KEYS: stream, producer records. ARGV: producer, first sequence, field,
/// trim mode (`''`, `MAXLEN` or `MINID`), `~`, trim bound, payloads.
/// Returns the new entry id per payload, nil where it was there already.
const APPEND: &str = r"
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local first = tonumber(ARGV[2])
local out = {}
for i = 7, #ARGV do
  if first + i - 7 > last then
    if ARGV[4] == '' then
      out[#out + 1] = redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[i])
    else
      out[#out + 1] = redis.call('XADD', KEYS[1], ARGV[4], ARGV[5], ARGV[6], '*', ARGV[3], ARGV[i])
    end
  else
    out[#out + 1] = false
  end
end
local top = first + #ARGV - 7
if top > last then redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', top)) end
redis.call('PEXPIRE', KEYS[2], 604800000)
return out
";

/// The scripts, loaded once per source or sink.
#[derive(Clone)]
pub(crate) struct Scripts {
    pub(crate) read_before: String,
    pub(crate) read_after: String,
    pub(crate) commit: Script,
    pub(crate) dead_letter: Script,
    pub(crate) reclaim: Script,
    pub(crate) append: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_fence = |body: &str| format!("{PENDING_OF}{body}").replace("FENCE_TTL", FENCE_TTL);
        Scripts {
            read_before: with_fence(READ_BEFORE),
            read_after: with_fence(READ_AFTER),
            commit: Script::new(&with_fence(COMMIT)),
            dead_letter: Script::new(DEAD_LETTER),
            reclaim: Script::new(RECLAIM),
            append: Script::new(APPEND),
        }
    }
}
