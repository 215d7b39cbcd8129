-- Moves a delivery to the group's dead letters: acknowledges entry ARGV[3] of stream slot ARGV[2] and, in the
-- same step, appends the event with its error and attempts to the dead-letter stream (KEYS[17]).
-- ARGV: group, slot, id, body, error, attempts, maxlen. Returns 0 when the entry was no longer pending.
local group, slot, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local key = KEYS[slot]
if redis.call('XACK', key, group, id) == 0 then return 0 end
if slot > 5 then redis.call('XDEL', key, id) end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('XADD', KEYS[17], 'MAXLEN', '~', ARGV[7], '*',
  'event', ARGV[4], 'error', ARGV[5], 'attempts', ARGV[6], 'group', group, 'dead_at_ms', now)
return 1
