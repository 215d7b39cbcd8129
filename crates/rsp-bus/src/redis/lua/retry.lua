-- Schedules a failed delivery again: acknowledges entry ARGV[3] of stream slot ARGV[2] and, in the same step,
-- adds the event to the group's retry schedule, due ARGV[4] ms from now as attempt ARGV[5].
-- KEYS: the 17 group keys (see receive.lua; 17 is the dead-letter stream). ARGV[6]: the event body.
-- Returns 0 when the entry was no longer pending (another consumer finished it): nothing is scheduled.
local group, slot, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local delay, attempt, body = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local key = KEYS[slot]
local origin = id
if slot > 5 then
  local entry = redis.call('XRANGE', key, id, id)[1]
  if entry then
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'origin' then origin = entry[2][i + 1] end
    end
  end
end
if redis.call('XACK', key, group, id) == 0 then return 0 end
if slot > 5 then redis.call('XDEL', key, id) end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local member = attempt .. '|' .. origin .. '|' .. body
local rank = (slot - 1) % 5
redis.call('ZADD', KEYS[rank + 11], now + delay, member)
redis.call('ZADD', KEYS[16], tonumber(string.match(origin, '^(%d+)')) or now, member)
return 1
