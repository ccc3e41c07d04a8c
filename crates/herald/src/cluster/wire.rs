//! Redis key names and the pub/sub message format of the Redis adapter.
//!
//! Everything is under a configurable prefix `P` so several clusters can share one Redis. The
//! per-app state keys carry the hash tag `{app}`, so every key one Lua script touches lives in
//! one Redis Cluster slot; pub/sub channels carry no tag, so channels spread over the shards.
//!
//! | name | type | holds |
//! | --- | --- | --- |
//! | `P:c:{app}:{channel}` (no hash tag) | pub/sub channel (sharded in Redis Cluster) | events and presence/count changes of one channel (interest-based: only nodes with local subscribers listen) |
//! | `P:ctl` | pub/sub channel | cluster control: node gone, terminate user, user online/offline |
//! | `P:nodes` | sorted set | node id → last heartbeat (ms) |
//! | `P:{app}:n:{node}` | set | channels of the app the node wrote state for (what the reaper cleans) |
//! | `P:{app}:cnt:{channel}` | hash | node id → that node's subscription count |
//! | `P:{app}:chs` | set | occupied channels of the app (cluster-wide) |
//! | `P:{app}:pres:{channel}` | hash | `{node}\|{user_id}` → user_info JSON ("" when none) |
//! | `P:{app}:cache:{channel}` | string with expiry | `{event}\0{data}` of a cache channel |
//!
//! Messages on `P:c:…` start with a one-line JSON header, then `\n`, then (events only) the
//! frame bytes exactly as local subscribers receive them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Key and channel names for one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Names { prefix: prefix.to_owned() }
    }
    pub(crate) fn channel(&self, app: &str, channel: &str) -> String {
        format!("{}:c:{app}:{channel}", self.prefix)
    }
    /// Splits a pub/sub channel name back into (app, channel).
    pub(crate) fn parse_channel<'a>(&self, name: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = name.strip_prefix(self.prefix.as_str())?.strip_prefix(":c:")?;
        // app ids match [A-Za-z0-9_-]+ (config validation), so the first ':' ends the app id.
        rest.split_once(':')
    }
    pub(crate) fn control(&self) -> String {
        format!("{}:ctl", self.prefix)
    }
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// The reap lock of a dead node.
    pub(crate) fn reap_lock(&self, node: u32) -> String {
        format!("{}:reap:{node}", self.prefix)
    }
    pub(crate) fn node_entries(&self, app: &str, node: u32) -> String {
        format!("{}:{{{app}}}:n:{node}", self.prefix)
    }
    pub(crate) fn counts(&self, app: &str, channel: &str) -> String {
        format!("{}:{{{app}}}:cnt:{channel}", self.prefix)
    }
    pub(crate) fn occupied(&self, app: &str) -> String {
        format!("{}:{{{app}}}:chs", self.prefix)
    }
    pub(crate) fn presence(&self, app: &str, channel: &str) -> String {
        format!("{}:{{{app}}}:pres:{channel}", self.prefix)
    }
    pub(crate) fn cache(&self, app: &str, channel: &str) -> String {
        format!("{}:{{{app}}}:cache:{channel}", self.prefix)
    }
}

/// Header of a message on a channel's pub/sub channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub(crate) enum ChannelMsg {
    /// An event; the frame follows the header. `x`: excluded socket id; `c`: cache entry.
    #[serde(rename = "e")]
    Event {
        n: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        x: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        c: Option<CacheEntry>,
    },
    #[serde(rename = "j")]
    Joined {
        n: u32,
        u: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        i: Option<String>,
    },
    #[serde(rename = "l")]
    Left { n: u32, u: String },
    #[serde(rename = "k")]
    Count { n: u32, c: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    pub e: String,
    pub d: String,
    /// Lifetime in ms.
    pub t: u64,
}

impl ChannelMsg {
    pub(crate) fn node(&self) -> u32 {
        match self {
            ChannelMsg::Event { n, .. }
            | ChannelMsg::Joined { n, .. }
            | ChannelMsg::Left { n, .. }
            | ChannelMsg::Count { n, .. } => *n,
        }
    }
}

/// Encodes header + optional frame.
pub(crate) fn encode(msg: &ChannelMsg, frame: Option<&Bytes>) -> Bytes {
    let mut out = serde_json::to_vec(msg).unwrap_or_default();
    out.push(b'\n');
    if let Some(f) = frame {
        out.extend_from_slice(f);
    }
    Bytes::from(out)
}

/// Decodes a channel message: header and the frame bytes that follow it.
pub(crate) fn decode(raw: &Bytes) -> Option<(ChannelMsg, Bytes)> {
    let nl = raw.iter().position(|b| *b == b'\n')?;
    let msg = serde_json::from_slice(&raw[..nl]).ok()?;
    Some((msg, raw.slice(nl + 1..)))
}

/// Messages on `P:ctl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub(crate) enum ControlMsg {
    /// A node left or was declared dead; its state is gone from Redis.
    #[serde(rename = "gone")]
    NodeGone { n: u32 },
    /// Close every connection of `u` in app `a` signed in on any node.
    #[serde(rename = "term")]
    Terminate { a: String, u: String },
    /// User `u` of app `a` came online on its first node (`on`) or went offline on its last.
    #[serde(rename = "user")]
    UserStatus { a: String, u: String, on: bool },
}

/// The pseudo-channel under which signed-in users are recorded like presence members
/// (`P:pres:{app}:#online`), so the same scripts decide online/offline and the reaper cleans it.
pub(crate) const ONLINE: &str = "#online";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_with_colons_in_channel() {
        let n = Names::new("herald");
        let name = n.channel("app-1", "presence-a:b");
        assert_eq!(n.parse_channel(&name), Some(("app-1", "presence-a:b")));
        assert_eq!(n.parse_channel("other:c:x:y"), None);
    }

    #[test]
    fn event_message_round_trips_with_frame() {
        let msg = ChannelMsg::Event { n: 7, x: Some("1.2".into()), c: None };
        let frame = Bytes::from_static(b"{\"event\":\"e\",\"data\":\"a\\nb\"}");
        let (back, f) = decode(&encode(&msg, Some(&frame))).unwrap();
        assert_eq!(back, msg);
        assert_eq!(f, frame);
    }

    #[test]
    fn garbage_message_is_rejected() {
        assert!(decode(&Bytes::from_static(b"nonsense")).is_none());
        assert!(decode(&Bytes::from_static(b"{\"t\":\"zz\"}\n")).is_none());
    }
}
