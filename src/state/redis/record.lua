-- Records: small texts with a time to live, shared by every instance.
-- KEYS[1] the record; ARGV[1] the operation: put VALUE TTL_MS | get | take | touch TTL_MS | delete
local op = ARGV[1]
if op == 'put' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
elseif op == 'get' then
  return redis.call('GET', KEYS[1])
elseif op == 'take' then
  local value = redis.call('GET', KEYS[1])
  if value then
    redis.call('DEL', KEYS[1])
  end
  return value
elseif op == 'touch' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif op == 'delete' then
  return redis.call('DEL', KEYS[1])
end
return redis.error_reply('unknown record operation ' .. tostring(op))
