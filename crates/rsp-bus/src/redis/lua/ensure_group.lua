-- Creates group ARGV[1] on each stream in KEYS (creating the stream too), starting at the oldest retained
-- entry; a group that already exists is left as it is.
for _, key in ipairs(KEYS) do
  local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', key, ARGV[1], '0', 'MKSTREAM')
  if not ok and not string.find(tostring(err.err or err), 'BUSYGROUP', 1, true) then
    return redis.error_reply(tostring(err.err or err))
  end
end
return #KEYS
