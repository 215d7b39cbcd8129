-- Up to ARGV[3] deliveries for consumer ARGV[2] of group ARGV[1], in one atomic step.
-- KEYS: 1-5 event streams, 6-10 redelivery streams, 11-15 retry schedules (by priority rank), 16 retry ages.
-- ARGV: group, consumer, max, reclaim_after_ms, '1' to look for entries to reclaim (the caller spaces these
-- scans out: most calls find nothing to reclaim, and the scan is the costliest part).
-- Returns {ms until the next scheduled retry or -1, {{slot, id, attempt, body}, ...}}.
local group, consumer = ARGV[1], ARGV[2]
local max = tonumber(ARGV[3])
local reclaim_ms = tonumber(ARGV[4])
local scan = ARGV[5] == '1'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function push(slot, id, attempt, fields)
  out[#out + 1] = {slot, id, attempt, field(fields, 'event') or ''}
end

-- A redelivered entry carries the attempt it was scheduled as; each later claim adds one.
local function attempt_of(slot, fields, delivered)
  if slot <= 5 then return delivered end
  return (tonumber(field(fields, 'attempt') or '1') or 1) + delivered - 1
end

-- 1. Pending entries whose consumer has been silent longer than reclaim_after, highest priority first.
for rank = 0, 4 do
  for _, slot in ipairs({rank + 1, rank + 6}) do
    local room = max - #out
    if room <= 0 or not scan then break end
    local key = KEYS[slot]
    local claimed = redis.call('XAUTOCLAIM', key, group, consumer, reclaim_ms, '0-0', 'COUNT', room)
    for _, entry in ipairs(claimed[2]) do
      local info = redis.call('XPENDING', key, group, entry[1], entry[1], 1)[1]
      local delivered = info and info[4] or 1
      push(slot, entry[1], attempt_of(slot, entry[2], delivered), entry[2])
    end
  end
end

-- 2. Retries now due: moved into the group's redelivery stream and read from it in the same step, so at
-- every instant the event is either scheduled or pending for a consumer.
for rank = 0, 4 do
  local room = max - #out
  if room <= 0 then break end
  local schedule, stream = KEYS[rank + 11], KEYS[rank + 6]
  local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', now, 'LIMIT', 0, room)
  for _, member in ipairs(due) do
    redis.call('ZREM', schedule, member)
    redis.call('ZREM', KEYS[16], member)
    local attempt, origin, body = string.match(member, '^(%d+)|([^|]+)|(.*)$')
    if attempt then
      redis.call('XADD', stream, '*', 'event', body, 'attempt', attempt, 'origin', origin)
    else
      -- Not written by this bus: pass it on whole, so the consumer dead-letters it as malformed.
      redis.call('XADD', stream, '*', 'event', member, 'attempt', '1', 'origin', '0-1')
    end
  end
  if #due > 0 then
    local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', stream, '>')
    if read then
      for _, entry in ipairs(read[1][2]) do push(rank + 6, entry[1], attempt_of(rank + 6, entry[2], 1), entry[2]) end
    end
  end
end

-- 3. New events, highest priority first.
for rank = 0, 4 do
  local room = max - #out
  if room <= 0 then break end
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', KEYS[rank + 1], '>')
  if read then
    for _, entry in ipairs(read[1][2]) do push(rank + 1, entry[1], 1, entry[2]) end
  end
end

-- When the next retry falls due, so a caller about to wait for new events wakes up for it.
local next_due = -1
for rank = 0, 4 do
  local first = redis.call('ZRANGE', KEYS[rank + 11], 0, 0, 'WITHSCORES')
  if first[2] then
    local wait = math.max(0, tonumber(first[2]) - now)
    if next_due < 0 or wait < next_due then next_due = wait end
  end
end

return {next_due, out}
