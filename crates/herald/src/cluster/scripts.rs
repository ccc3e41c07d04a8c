//! Lua scripts: the cluster-wide verdicts (occupied/vacated, member added/removed) are decided
//! atomically inside Redis, so exactly one node reports each of them, however nodes race.
//!
//! Presence fields are `{node}|{user_id}`; node ids are digits, so the first `|` separates them.

/// KEYS: counts hash, occupied set, node entries set (all tagged with the app). ARGV: node,
/// local count, entry (the channel), channel.
/// Returns 1 when the channel became occupied cluster-wide, 2 when it became vacated, else 0.
pub(crate) const SET_COUNT: &str = r#"
local before = redis.call('HLEN', KEYS[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
  if before == 0 then redis.call('SADD', KEYS[2], ARGV[4]); return 1 end
  return 0
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[4])
  return 2
end
return 0
"#;

/// KEYS: presence hash, node entries set. ARGV: node, user_id, user_info, entry.
/// Returns 1 when the user was not a member on any node before.
pub(crate) const ADD_MEMBER: &str = r#"
local existed = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local sep = string.find(f, '|', 1, true)
  if sep and string.sub(f, sep + 1) == ARGV[2] then existed = 1; break end
end
redis.call('HSET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
if existed == 1 then return 0 end
return 1
"#;

/// Marks a field as leaving (the removal is announced but not settled yet): snapshot readers
/// skip it, verdict scripts still count it as present. No-op when the field is gone.
/// KEYS: hash. ARGV: field, marker value.
pub(crate) const MARK_LEAVING: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"#;

/// Value of a presence field whose removal is pending (user_info JSON never starts with NUL).
pub(crate) const LEAVING: &str = "\u{0}leaving";

/// KEYS: presence hash. ARGV: node, user_id.
/// Returns 1 when no node has the user any more (member removed cluster-wide).
pub(crate) const REMOVE_MEMBER: &str = r#"
if redis.call('HDEL', KEYS[1], ARGV[1] .. '|' .. ARGV[2]) == 0 then return 0 end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local sep = string.find(f, '|', 1, true)
  if sep and string.sub(f, sep + 1) == ARGV[2] then return 0 end
end
return 1
"#;

/// Removes everything a dead node held for one channel.
/// KEYS: counts hash, occupied set, presence hash. ARGV: node, channel.
/// Returns { vacated (0/1), removed user ids... }.
pub(crate) const REAP_CHANNEL: &str = r#"
local out = {0}
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  out[1] = 1
end
local mine = {}
local others = {}
local prefix = ARGV[1] .. '|'
for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
  local sep = string.find(f, '|', 1, true)
  if sep then
    local user = string.sub(f, sep + 1)
    if string.sub(f, 1, sep) == prefix then
      table.insert(mine, user)
      redis.call('HDEL', KEYS[3], f)
    else
      others[user] = true
    end
  end
end
for _, user in ipairs(mine) do
  if not others[user] then table.insert(out, user) end
end
return out
"#;
