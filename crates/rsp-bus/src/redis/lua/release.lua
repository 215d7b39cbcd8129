-- Drops a claim (KEYS[1]) so a retry can claim the event again; a completed mark is kept.
if redis.call('GET', KEYS[1]) == 'claimed' then
  return redis.call('DEL', KEYS[1])
end
return 0
