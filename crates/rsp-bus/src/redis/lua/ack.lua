-- Acknowledges deliveries of group ARGV[1]; ARGV[2..] are pairs (slot, entry id).
-- KEYS: 1-5 event streams, 6-10 redelivery streams (the group's own, so acknowledged entries are deleted).
local group = ARGV[1]
local acked = 0
for i = 2, #ARGV - 1, 2 do
  local slot, id = tonumber(ARGV[i]), ARGV[i + 1]
  local key = KEYS[slot]
  local n = redis.call('XACK', key, group, id)
  if slot > 5 then redis.call('XDEL', key, id) end
  acked = acked + n
end
return acked
