"""Lua scripts of the Redis store: each write of ``RedisStore`` is one script.

A script runs alone on the server, and each one checks the type of every key it will write
before its first write (a wrong type would fail midway: Redis never rolls back a script's
earlier writes). The ``#!lua`` shebang (Redis >= 7) makes the server refuse the whole script
up front when it is out of memory, rather than at its first write. So a batch is stored
whole or not at all.
"""

from __future__ import annotations

# Checks KEYS[i] against the expected type of its position; raises before any write.
_CHECK = """
local function check(key, want)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. kind .. ', not a ' .. want)
  end
  return nil
end
"""

# KEYS: events stream, then per user (hist zset, seen set, uevents stream).
# ARGV: cap, arrival ns (20 digits), n, then per event: user slot (1-based), user, item, type, ts.
APPEND_EVENTS = (
    "#!lua\n"
    + _CHECK
    + """
local kinds = {'zset', 'set', 'stream'}
local err = check(KEYS[1], 'stream')
if err then return err end
for i = 2, #KEYS do
  err = check(KEYS[i], kinds[(i - 2) % 3 + 1])
  if err then return err end
end
local cap, arrival, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for e = 0, n - 1 do
  local base = 4 + e * 5
  local slot, user, item, kind, ts = tonumber(ARGV[base]), ARGV[base + 1], ARGV[base + 2],
    ARGV[base + 3], ARGV[base + 4]
  local hist, seen, mine = KEYS[slot * 3 - 1], KEYS[slot * 3], KEYS[slot * 3 + 1]
  redis.call('XADD', KEYS[1], '*', 'user', user, 'item', item, 'type', kind, 'ts', ts)
  redis.call('XADD', mine, '*', 'user', user, 'item', item, 'type', kind, 'ts', ts)
  redis.call('ZADD', hist, ts, arrival .. string.format('%06d|', e) .. item)
  redis.call('SADD', seen, item)
end
for i = 2, #KEYS, 3 do
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -cap - 1)
end
return n
"""
)

# KEYS: items zset, meta:items hash, then one item hash per record.
# ARGV: now, n, then per record: item id, m, then m (field, JSON value) pairs.
UPSERT_ITEMS = (
    "#!lua\n"
    + _CHECK
    + """
local err = check(KEYS[1], 'zset') or check(KEYS[2], 'hash')
if err then return err end
for i = 3, #KEYS do
  err = check(KEYS[i], 'hash')
  if err then return err end
end
local now, n, pos = ARGV[1], tonumber(ARGV[2]), 3
for r = 1, n do
  local id, m = ARGV[pos], tonumber(ARGV[pos + 1])
  pos = pos + 2
  redis.call('ZADD', KEYS[1], 'NX', now, id)
  if m > 0 then
    redis.call('HSET', KEYS[r + 2], unpack(ARGV, pos, pos + 2 * m - 1))
  end
  pos = pos + 2 * m
end
return redis.call('HINCRBY', KEYS[2], 'version', 1)
"""
)

# KEYS: meta:<key> hash. ARGV: value. Returns the new version.
PUBLISH = (
    "#!lua\n"
    + _CHECK
    + """
local err = check(KEYS[1], 'hash')
if err then return err end
redis.call('HSET', KEYS[1], 'value', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'version', 1)
"""
)
