"""The Lua scripts nodes run in Redis: one atomic step each, whichever node calls them.

Every key a script touches carries the `{journal.key}` hash tag, so all of them live in one
slot (Redis Cluster) and one script call sees a consistent view.
"""

# KEYS: stream, event counter, lease (the counter again when unfenced).
# ARGV: id ttl ms, lease holder ('' = unfenced), a JSON array of id keys ('' = no id), and the
# events' JSON joined by newlines (JSON text never holds a raw newline). Three arguments,
# not two per event: packing thousands of arguments cost the client more than the script.
# Returns {kept, positions (1-based) of the duplicates, entry id}; kept = -1: the lease is no
# longer this holder's.
APPEND_LUA = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return {-1, {}, ''}
end
local ids = cjson.decode(ARGV[3])
local kept, dup, i = {}, {}, 0
for body in string.gmatch(ARGV[4], '[^\\n]+') do
  i = i + 1
  local key = ids[i]
  if key == '' or redis.call('SET', key, '1', 'NX', 'PX', ARGV[1]) then
    kept[#kept + 1] = body
  else
    dup[#dup + 1] = i
  end
end
if #kept == 0 then return {0, dup, ''} end
local n = redis.call('INCRBY', KEYS[2], #kept)
local id = redis.call('XADD', KEYS[1], '*', 'e', '[' .. table.concat(kept, ',') .. ']',
                      'n', n, 'h', ARGV[2])
return {#kept, dup, id}
"""

# Take the lease if nobody holds it: the value is "<node>:<fencing token>", the token one
# more than the last one given for this source.
ACQUIRE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""

RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
