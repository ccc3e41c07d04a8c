//! The cluster's shared usage counts in Redis (the Redis adapter's client and key prefix).
//!
//! Each node's flusher adds its last second's messages with one Lua script per app
//! ([`FLUSH`]): `INCRBY` on the app's day key and hour key (expiring after 48 h and 25 h), and
//! its own connection count into the app's connection hash; the script answers the day's
//! cluster-wide total, the cluster's current connections and today's peak. The usage API reads
//! the same keys with [`READ`]. Every key carries the app's hash tag, so one script touches one
//! Redis Cluster slot. Keys (`P` is the adapter prefix, see `cluster/wire.rs`):
//!
//! | key | holds |
//! | --- | --- |
//! | `P:{<app>}:usage:d:<YYYY-MM-DD>` | messages of that UTC day (48 h expiry) |
//! | `P:{<app>}:usage:h:<hour>` | messages of that UTC hour, `<hour>` counted from the epoch (25 h expiry) |
//! | `P:{<app>}:usage:peak:<YYYY-MM-DD>` | most connections seen at once that day (48 h expiry) |
//! | `P:{<app>}:usage:conns` | node id → `<connections>:<Redis time in ms>` (entries older than 5 s are dropped) |

use fred::prelude::*;

/// A Redis error of a usage read or write.
pub(crate) use fred::error::Error;

/// Seconds a day key lives (the day plus a day for the usage API's rollover).
const DAY_TTL: u64 = 48 * 3_600;
/// Seconds an hour key lives (the usage API shows the last 24).
const HOUR_TTL: u64 = 25 * 3_600;
/// A node's connection count older than this (ms) is from a node that stopped flushing.
const FRESH_MS: u64 = 5_000;

/// KEYS: day, hour, connections hash, peak. ARGV: messages to add, day TTL, hour TTL, node id,
/// node's connections, freshness in ms. Returns {day total, cluster connections, peak today}.
const FLUSH: &str = r#"
local total
if tonumber(ARGV[1]) > 0 then
  total = redis.call('INCRBY', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('INCRBY', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
else
  total = tonumber(redis.call('GET', KEYS[1]) or '0')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. ':' .. now)
redis.call('EXPIRE', KEYS[3], ARGV[2])
local conns = 0
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do
  local v = flat[i + 1]
  local sep = string.find(v, ':', 1, true)
  local at = sep and tonumber(string.sub(v, sep + 1)) or 0
  if now - at <= tonumber(ARGV[6]) then
    conns = conns + tonumber(string.sub(v, 1, sep - 1))
  else
    redis.call('HDEL', KEYS[3], flat[i])
  end
end
local peak = tonumber(redis.call('GET', KEYS[4]) or '0')
if conns > peak then peak = conns end
redis.call('SET', KEYS[4], peak, 'EX', ARGV[2])
return {total, conns, peak}
"#;

/// KEYS: day, peak, connections hash, then the 24 hour keys oldest first. ARGV: freshness in
/// ms. Returns {day total, peak, cluster connections, 24 hourly counts}.
const READ: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'), 0}
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do
  local v = flat[i + 1]
  local sep = string.find(v, ':', 1, true)
  if sep and now - tonumber(string.sub(v, sep + 1)) <= tonumber(ARGV[1]) then
    out[3] = out[3] + tonumber(string.sub(v, 1, sep - 1))
  end
end
for i = 4, #KEYS do out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
return out
"#;

/// What one flush learnt from the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub messages: u64,
    pub connections: u64,
    pub peak_connections: u64,
}

/// The cluster-wide view the usage API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    pub messages: u64,
    pub peak_connections: u64,
    pub connections: u64,
    pub hourly: Vec<u64>,
}

/// The Redis adapter's client, under its key prefix.
#[derive(Clone)]
pub(crate) struct Shared {
    client: Client,
    prefix: String,
}

impl Shared {
    pub(crate) fn new(client: Client, prefix: &str) -> Self {
        Shared { client, prefix: prefix.to_owned() }
    }

    fn key(&self, app: &str, rest: &str) -> String {
        format!("{}:{{{app}}}:usage:{rest}", self.prefix)
    }

    /// Adds `messages` (counted in UTC hour `hour` of day `date`) and this node's connections.
    pub(crate) async fn flush(
        &self,
        app: &str,
        date: &str,
        hour: u64,
        messages: u64,
        node: u32,
        connections: u64,
    ) -> Result<Flushed, Error> {
        let keys = vec![
            self.key(app, &format!("d:{date}")),
            self.key(app, &format!("h:{hour}")),
            self.key(app, "conns"),
            self.key(app, &format!("peak:{date}")),
        ];
        let args: Vec<String> = vec![
            messages.to_string(),
            DAY_TTL.to_string(),
            HOUR_TTL.to_string(),
            node.to_string(),
            connections.to_string(),
            FRESH_MS.to_string(),
        ];
        let reply: Vec<u64> = self.client.eval(FLUSH, keys, args).await?;
        match reply[..] {
            [messages, connections, peak_connections] => Ok(Flushed { messages, connections, peak_connections }),
            _ => Err(Error::new(ErrorKind::Parse, "usage flush: unexpected reply")),
        }
    }

    /// Today's cluster-wide usage of `app`, with the 24 hours ending at `hour`.
    pub(crate) async fn read(&self, app: &str, date: &str, hour: u64) -> Result<Read, Error> {
        let mut keys =
            vec![self.key(app, &format!("d:{date}")), self.key(app, &format!("peak:{date}")), self.key(app, "conns")];
        keys.extend((0..24).rev().map(|back| self.key(app, &format!("h:{}", hour.saturating_sub(back)))));
        let reply: Vec<u64> = self.client.eval(READ, keys, vec![FRESH_MS.to_string()]).await?;
        if reply.len() != 27 {
            return Err(Error::new(ErrorKind::Parse, "usage read: unexpected reply"));
        }
        Ok(Read { messages: reply[0], peak_connections: reply[1], connections: reply[2], hourly: reply[3..].to_vec() })
    }
}
