-- A counter's value in its current window, at the Redis server's clock.
-- KEYS: the counter's hash and its rolling log. ARGV: kind ("c" or "r"), window (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind, window = ARGV[1], tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'k', 'w', 's', 'v')
if h[1] ~= kind or tonumber(h[2]) ~= window then
  return 0
end
if kind == 'c' then
  if tonumber(h[3]) == now - (now % window) then
    return tonumber(h[4]) or 0
  end
  return 0
end
local sum = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. (now - window), '+inf')) do
  sum = sum + (tonumber(string.match(member, ':(%d+)$')) or 0)
end
return sum
