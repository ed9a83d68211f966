//! The Lua scripts: each one check and its writes, atomic on the server.

use redis::Script;

/// Commits entries only where this consumer still holds them at the
/// delivery it was given: acknowledges each, appending its outputs to their
/// output streams or its dead letter to the dead-letter stream in the same
/// step; and keeps the batch's results under its batch number, so that a
/// batch retried after an unknown outcome gets the results its first try
/// committed and appends nothing twice.
///
/// KEYS: stream, receipt, dead stream, then the output streams. ARGV:
/// group, consumer, batch number (the same on every try of a batch), output
/// field, trim mode (`''`, `MAXLEN`, `MINID`), `~`, trim bound, the lowest
/// and highest id of the batch; then per entry its id, delivery count, kind
/// (`a` acknowledge, `o` with outputs, `d` dead), the count `m` of
/// arguments that follow and those arguments (for outputs, pairs of an
/// output stream's index from 0 and the payload; for a dead letter, the
/// reason and class). Returns 1 (committed) or 0 (another consumer holds
/// the entry, or it is gone) per entry.
const COMMIT: &str = r"
local prev = redis.call('GET', KEYS[2])
if prev then
  local batch, results = string.match(prev, '^(%d+):(%d*)$')
  if batch == ARGV[3] then
    local out = {}
    for k = 1, #results do out[k] = tonumber(string.sub(results, k, k)) end
    return out
  end
end
-- This consumer's pending entries in the batch's id range, with their
-- delivery counts: one range read for the whole batch.
local held = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[8], ARGV[9], 1000000, ARGV[2])) do
  held[p[1]] = p[4]
end
local out, acks = {}, {}
local trim = ARGV[5] ~= ''
local i = 10
while i <= #ARGV do
  local id, n, kind, m = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local at = i + 4
  i = at + m
  if held[id] == tonumber(n) then
    if kind == 'o' then
      for j = at, at + m - 1, 2 do
        local target = KEYS[4 + tonumber(ARGV[j])]
        if trim then
          redis.call('XADD', target, ARGV[5], ARGV[6], ARGV[7], '*', ARGV[4], ARGV[j + 1])
        else
          redis.call('XADD', target, '*', ARGV[4], ARGV[j + 1])
        end
      end
    elseif kind == 'd' then
      local x = redis.call('XRANGE', KEYS[1], id, id)
      local fields = {'id', id, 'reason', ARGV[at], 'class', ARGV[at + 1], 'deliveries', n}
      if #x == 1 then
        for _, f in ipairs(x[1][2]) do fields[#fields + 1] = f end
      end
      redis.call('XADD', KEYS[3], '*', unpack(fields))
    end
    acks[#acks + 1] = id
    held[id] = nil
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #acks > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(acks))
end
redis.call('SET', KEYS[2], ARGV[3] .. ':' .. table.concat(out), 'PX', 86400000)
return out
";

/// Moves one entry to the dead-letter stream, if this consumer still holds
/// it at this delivery: appends `id`, `reason`, `class`, `deliveries` and
/// the entry's own fields, then acknowledges it.
///
/// KEYS: stream, dead stream. ARGV: group, consumer, id, delivery count,
/// reason, class. Returns 1 if moved, 0 if another consumer holds it.
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
redis.call('XACK', KEYS[1], ARGV[1], id)
return 1
";

/// Claims entries other consumers left idle, with the delivery count each
/// has now; entries delivered more than the limit go to the dead-letter
/// stream instead (transient: retries ran out). Entries this consumer
/// holds itself are left alone, so its own slow work is taken over by
/// others, not renewed by itself.
///
/// KEYS: stream, dead stream. ARGV: group, consumer, min idle (ms),
/// cursor (`-` or an exclusive `(id`), count, max deliveries. Returns the
/// next cursor (`-` after the last page), the claimed entries as `{id,
/// deliveries, fields}`, and the number dead-lettered.
const RECLAIM: &str = r"
local page = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])
local cursor = '-'
if #page == tonumber(ARGV[5]) then cursor = '(' .. page[#page][1] end
local out, dead = {}, 0
for _, e in ipairs(page) do
  local id = e[1]
  if e[2] ~= ARGV[2] then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
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
    pub(crate) commit: Script,
    pub(crate) dead_letter: Script,
    pub(crate) reclaim: Script,
    pub(crate) append: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            commit: Script::new(COMMIT),
            dead_letter: Script::new(DEAD_LETTER),
            reclaim: Script::new(RECLAIM),
            append: Script::new(APPEND),
        }
    }
}
