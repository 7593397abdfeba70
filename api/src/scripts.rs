//! The registry's Lua scripts (each runs atomically in Redis); the keys
//! they read and write are described in `store.rs`.

/// Live origins of one stream, pruning dead set members as it goes.
/// KEYS[1] = rl:stream:{name}, KEYS[2] = rl:streams; ARGV[1] = origin key
/// prefix, ARGV[2] = name. Returns host, value, host, value...
pub(crate) const LIVE_ORIGINS: &str = r"
local hosts = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, h in ipairs(hosts) do
  local m = redis.call('GET', ARGV[1] .. h)
  if m then
    table.insert(out, h)
    table.insert(out, m)
  else
    redis.call('SREM', KEYS[1], h)
  end
end
if #out == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return out
";

/// Registers or refreshes one origin, keeping the `since` of a registration
/// that is still alive. KEYS[1] = origin key, KEYS[2] = rl:stream:{name},
/// KEYS[3] = rl:streams, KEYS[4] = owner key; ARGV = manifest, ttl, host,
/// name, now (unix ms), owner ttl, owner ('' unknown: an owner record
/// that is missing, e.g. after the registry was lost, is written back from
/// it, never replaced). Returns the registration's since.
pub(crate) const REPORT: &str = r"
local since = ARGV[5]
local cur = redis.call('GET', KEYS[1])
if cur then
  local s = string.match(cur, '^(%d+) ')
  if s then since = s end
end
redis.call('SET', KEYS[1], since .. ' ' .. ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[6], 'NX')
end
redis.call('EXPIRE', KEYS[4], ARGV[6])
return since
";

/// Claims the owner record of a name for a key hash unless the name is
/// live, or was just allowed to start, under another key, or the registry
/// was just lost (`recovery.rs`: then only a name's recorded owner may).
/// KEYS[1] = owner key, KEYS[2] = rl:stream:{name}, KEYS[3] = pending key,
/// KEYS[4] = epoch key, KEYS[5] = recovering key; ARGV = origin key
/// prefix, key hash, owner ttl, pending ttl, then the epoch arguments
/// (`recovery::EPOCH_LUA`). Returns {1 claimed | 0 taken | 2 recovering,
/// epoch}.
pub(crate) const CLAIM_BODY: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur and redis.call('EXISTS', KEYS[5]) == 1 then
  return {2, epoch}
end
if cur and cur ~= ARGV[2] then
  local pending = redis.call('GET', KEYS[3])
  if pending and pending ~= ARGV[2] then
    return {0, epoch}
  end
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[1] .. h) == 1 then
      return {0, epoch}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
return {1, epoch}
";

/// Counts live streams and origins without changing anything, and names the
/// live streams. KEYS[1] = rl:streams; ARGV = stream key prefix, origin key
/// prefix. Returns {streams, origins, {name...}}.
pub(crate) const COUNT: &str = r"
local streams, origins, names = 0, 0, {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local live = 0
  for _, h in ipairs(redis.call('SMEMBERS', ARGV[1] .. n)) do
    if redis.call('EXISTS', ARGV[2] .. n .. ':' .. h) == 1 then
      live = live + 1
    end
  end
  if live > 0 then
    streams = streams + 1
    origins = origins + live
    table.insert(names, n)
  end
end
return {streams, origins, names}
";
