-- Reserves every counter of one call, all or none, at the Redis server's clock (so that
-- instances whose clocks disagree still agree on window starts).
--
-- KEYS: two per counter. KEYS[2i-1] is the counter's hash: its kind k ("c" calendar,
--   "r" rolling), window length w (ms), and for calendar windows the window start s and
--   value v, for rolling windows the running sum of the log and the log's sequence seq.
--   KEYS[2i] is the rolling window's log: a sorted set of "<seq>:<amount>" scored by the
--   time of the call (ms). All keys share one hash tag, so this runs on Redis Cluster.
-- ARGV: four per counter: kind, window (ms), limit, amount.
-- Returns {1, now, start_1, id_1, start_2, id_2, ...} when granted (start: the calendar
--   window the amount went into, or the time of the rolling log entry; id: the log entry,
--   0 if none), or {0, index, retry_after} when the counter at index (from 0) would pass
--   its limit; nothing is changed then. retry_after is in whole seconds, -1 if the amount
--   alone exceeds the limit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 2

local function amount_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end

-- The counter's value now. Rolling logs forget what left the window (housekeeping that
-- is right whatever the outcome).
local function current(i, kind, window)
  local hash, log = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'c' then
    local start = now - (now % window)
    local h = redis.call('HMGET', hash, 'k', 'w', 's', 'v')
    if h[1] == 'c' and tonumber(h[2]) == window and tonumber(h[3]) == start then
      return tonumber(h[4]) or 0
    end
    return 0
  end
  local h = redis.call('HMGET', hash, 'k', 'w', 'sum')
  if h[1] ~= 'r' or tonumber(h[2]) ~= window then
    return 0
  end
  local sum = tonumber(h[3]) or 0
  local gone = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
  if #gone > 0 then
    for _, member in ipairs(gone) do
      sum = sum - amount_of(member)
    end
    if sum < 0 then sum = 0 end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    redis.call('HSET', hash, 'sum', sum)
  end
  return sum
end

-- When dropping the oldest entries of a rolling log lets `amount` more in.
local function rolling_retry(log, window, total, amount, limit)
  local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
  for j = 1, #entries, 2 do
    total = total - amount_of(entries[j])
    if total + amount <= limit then
      return math.max(1, math.ceil((tonumber(entries[j + 1]) + window - now) / 1000))
    end
  end
  return 1
end

-- Check everything first. A call may name one counter twice: count both.
local claimed = {}
for i = 1, n do
  local b = (i - 1) * 4
  local kind, window = ARGV[b + 1], tonumber(ARGV[b + 2])
  local limit, amount = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local hash = KEYS[2 * i - 1]
  local value = current(i, kind, window) + (claimed[hash] or 0)
  if value + amount > limit then
    if amount > limit then
      return {0, i - 1, -1}
    end
    if kind == 'c' then
      local ends = now - (now % window) + window
      return {0, i - 1, math.max(1, math.ceil((ends - now) / 1000))}
    end
    return {0, i - 1, rolling_retry(KEYS[2 * i], window, value, amount, limit)}
  end
  claimed[hash] = (claimed[hash] or 0) + amount
end

-- Then count. Keys expire shortly after their window, so nothing grows forever.
local out = {1, now}
for i = 1, n do
  local b = (i - 1) * 4
  local kind, window, amount = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 4]
  local hash, log = KEYS[2 * i - 1], KEYS[2 * i]
  local h = redis.call('HMGET', hash, 'k', 'w', 's')
  if kind == 'c' then
    local start = now - (now % window)
    if h[1] == 'c' and tonumber(h[2]) == window and tonumber(h[3]) == start then
      redis.call('HINCRBY', hash, 'v', amount)
    else
      redis.call('DEL', hash)
      redis.call('HSET', hash, 'k', 'c', 'w', window, 's', start, 'v', amount)
    end
    redis.call('PEXPIREAT', hash, start + window + 1000)
    out[#out + 1] = start
    out[#out + 1] = 0
  else
    if h[1] ~= 'r' or tonumber(h[2]) ~= window then
      redis.call('DEL', hash, log)
      redis.call('HSET', hash, 'k', 'r', 'w', window, 'sum', 0, 'seq', 0)
    end
    local id = 0
    if tonumber(amount) > 0 then
      id = redis.call('HINCRBY', hash, 'seq', 1)
      redis.call('ZADD', log, now, id .. ':' .. amount)
      redis.call('HINCRBY', hash, 'sum', amount)
      redis.call('PEXPIRE', log, window + 1000)
    end
    redis.call('PEXPIRE', hash, window + 1000)
    out[#out + 1] = now
    out[#out + 1] = id
  end
end
return out
