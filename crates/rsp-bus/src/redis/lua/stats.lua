-- Gauges of group ARGV[1]. KEYS: the 17 group keys (see receive.lua).
-- Returns {depth by rank (5 values), pending, dead letters, age in ms of the oldest unacknowledged event}.
local group = ARGV[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local oldest = nil

local function id_ms(id)
  return tonumber(string.match(id, '^(%d+)'))
end

local function seen(ms)
  if ms and (oldest == nil or ms < oldest) then oldest = ms end
end

-- The group's view of one event stream: {lag, pending, last delivered id}.
local function group_info(key)
  if redis.call('EXISTS', key) == 0 then return 0, 0, '0-0' end
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local g = {}
    for i = 1, #info, 2 do g[info[i]] = info[i + 1] end
    if g['name'] == group then
      local last = g['last-delivered-id']
      local lag = g['lag']
      if type(lag) ~= 'number' then
        -- Redis cannot tell the lag after deletions or trimming: count what follows the last delivered id.
        lag = #redis.call('XRANGE', key, '(' .. last, '+')
      end
      return lag, g['pending'], last
    end
  end
  return redis.call('XLEN', key), 0, '0-0'
end

local depth = {0, 0, 0, 0, 0}
local pending = 0
for rank = 0, 4 do
  local stream = KEYS[rank + 1]
  local lag, waiting, last = group_info(stream)
  pending = pending + waiting
  if waiting > 0 then seen(id_ms(redis.call('XPENDING', stream, group)[2])) end
  if lag > 0 then
    local next_entry = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)[1]
    if next_entry then seen(id_ms(next_entry[1])) end
  end
  -- Retries: scheduled ones, and due ones in the redelivery stream (acknowledged entries are deleted there).
  local redelivery = KEYS[rank + 6]
  local scheduled = redis.call('ZCARD', KEYS[rank + 11])
  local redelivering = redis.call('XLEN', redelivery)
  if redelivering > 0 then
    local _, waiting_again = group_info(redelivery)
    pending = pending + waiting_again
    for _, entry in ipairs(redis.call('XRANGE', redelivery, '-', '+')) do
      for i = 1, #entry[2], 2 do
        if entry[2][i] == 'origin' then seen(id_ms(entry[2][i + 1])) end
      end
    end
  end
  depth[rank + 1] = lag + waiting + scheduled + redelivering
end
local first_retry = redis.call('ZRANGE', KEYS[16], 0, 0, 'WITHSCORES')
if first_retry[2] then seen(tonumber(first_retry[2])) end

local age = 0
if oldest then age = math.max(0, now - oldest) end
return {depth[1], depth[2], depth[3], depth[4], depth[5], pending, redis.call('XLEN', KEYS[17]), age}
