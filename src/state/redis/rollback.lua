-- Gives back what a reservation took, only where it took it: a calendar amount only while
-- its window is the same one (never from the next window), a rolling log entry only if it
-- is still that entry.
--
-- KEYS: two per entry, as for reserve.lua (the counter's hash, its rolling log).
-- ARGV: five per entry: kind ("c" or "r"), window (ms), start (calendar window start, or
--   the time of the rolling log entry), amount, log entry id (0 if none).
for i = 1, #KEYS / 2 do
  local b = (i - 1) * 5
  local kind, window, start = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local amount, id = ARGV[b + 4], ARGV[b + 5]
  local hash, log = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'c' then
    local h = redis.call('HMGET', hash, 'k', 'w', 's', 'v')
    if h[1] == 'c' and tonumber(h[2]) == window and tonumber(h[3]) == start then
      local v = (tonumber(h[4]) or 0) - tonumber(amount)
      if v < 0 then v = 0 end
      redis.call('HSET', hash, 'v', v)
    end
  elseif id ~= '0' then
    local member = id .. ':' .. amount
    if tonumber(redis.call('ZSCORE', log, member)) == start then
      redis.call('ZREM', log, member)
      local sum = (tonumber(redis.call('HGET', hash, 'sum')) or 0) - tonumber(amount)
      if sum < 0 then sum = 0 end
      redis.call('HSET', hash, 'sum', sum)
    end
  end
end
return 1
