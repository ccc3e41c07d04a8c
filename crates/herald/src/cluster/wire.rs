//! Redis key names and the pub/sub message format of the Redis adapter.
//!
//! Everything is under a configurable prefix `P` so several clusters can share one Redis. In
//! the table `<app>`, `<channel>` and `<node>` stand for an app id, a channel name and a node
//! id; braces are literal: the per-app state keys carry the hash tag `{<app>}`, so every key
//! one Lua script touches lives in one Redis Cluster slot. Pub/sub channels carry no tag, so
//! channels spread over the shards. [`Names`] builds exactly these names.
//!
//! | name | type | holds |
//! | --- | --- | --- |
//! | `P:c:<app>:<channel>` | pub/sub channel (sharded in Redis Cluster) | events and presence/count changes of one channel (interest-based: only nodes with local subscribers listen) |
//! | `P:ctl` | pub/sub channel | cluster control ([`ControlMsg`]): node gone, terminate user, user online/offline |
//! | `P:tap:<app>` | pub/sub channel (never sharded) | the debug console's entries of the app ([`TapMsg`]), published only while some node's console watches it; only watching nodes listen |
//! | `P:tapw` | sorted set | `<app>\|<node>` → Unix ms until which that node's console watches the app (refreshed every second while it does, see `tap.rs`) |
//! | `P:nodes` | sorted set | node id → last heartbeat (Unix ms) |
//! | `P:reap:<node>` | string, 30 s expiry | lock of the survivor reaping dead node `<node>` (`SET NX`) |
//! | `P:{<app>}:n:<node>` | set | channels of the app the node wrote counts or members for, and [`ONLINE`] (what the reaper cleans) |
//! | `P:{<app>}:cnt:<channel>` | hash | node id → that node's subscription count (`0` while its drop to 0 is pending) |
//! | `P:{<app>}:chs` | set | occupied channels of the app (cluster-wide) |
//! | `P:{<app>}:pres:<channel>` | hash | `<node>\|<user_id>` → user_info JSON (`""` when none; `\0leaving` while the removal is pending) |
//! | `P:{<app>}:pres:#online` | hash | the same for signed-in users ([`ONLINE`]; values `""`) |
//! | `P:{<app>}:cache:<channel>` | string with expiry | `<event>\0<data>` of a cache channel ([`cache_value`]) |
//! | `P:{<app>}:usage:…` | strings and a hash, with expiry | the app's message and connection usage (`usage/shared.rs`) |
//!
//! Messages on `P:c:…` start with a one-line JSON header, then `\n`, then (events only) the
//! frame bytes exactly as local subscribers receive them.
//!
//! A cached event ([`CachedEvent`], the core's one type for it) is encoded here only: in an
//! event header (`cache_entry`) and as the Redis value ([`cache_value`] / [`cache_from_value`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_core::channel::CachedEvent;
use herald_protocol::socket_id::SocketId;
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
    /// The pub/sub channel of an app's debug console entries.
    pub(crate) fn tap(&self, app: &str) -> String {
        format!("{}:tap:{app}", self.prefix)
    }
    /// The app of a debug console channel name.
    pub(crate) fn parse_tap<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.prefix.as_str())?.strip_prefix(":tap:")
    }
    /// The sorted set of apps watched by a console, per node.
    pub(crate) fn tap_watchers(&self) -> String {
        format!("{}:tapw", self.prefix)
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
    /// An event; the frame follows the header. `x`: excluded socket id; `c`: the event to
    /// keep as the channel's cache ([`cache_entry`]).
    #[serde(rename = "e")]
    Event {
        n: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        x: Option<SocketId>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "cache_entry")]
        c: Option<CachedEvent>,
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

/// The pub/sub encoding of a [`CachedEvent`] (field `c` of an event header):
/// `{"e": event, "d": data, "t": remaining lifetime in ms}`. The lifetime is measured when the
/// header is encoded and counted again from when it is decoded: an `Instant` means nothing on
/// another node.
mod cache_entry {
    use std::time::{Duration, Instant};

    use herald_core::channel::CachedEvent;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a> {
        e: &'a str,
        d: &'a str,
        t: u64,
    }

    #[derive(Deserialize)]
    struct In {
        e: String,
        d: String,
        t: u64,
    }

    pub(super) fn serialize<S: Serializer>(cache: &Option<CachedEvent>, s: S) -> Result<S::Ok, S::Error> {
        let out = cache.as_ref().map(|c| Out { e: &c.event, d: &c.data, t: millis(c.remaining(Instant::now())) });
        out.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CachedEvent>, D::Error> {
        Ok(Option::<In>::deserialize(d)?.map(|c| CachedEvent::new(&c.e, &c.d, Duration::from_millis(c.t))))
    }

    pub(super) fn millis(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The Redis encoding of a [`CachedEvent`] (key [`Names::cache`]): the string value
/// `{event}\0{data}` and its expiry in ms (`PX`, at least 1).
pub(crate) fn cache_value(cache: &CachedEvent) -> (String, i64) {
    let ttl = cache_entry::millis(cache.remaining(Instant::now())).max(1);
    (format!("{}\0{}", cache.event, cache.data), i64::try_from(ttl).unwrap_or(i64::MAX))
}

/// A [`CachedEvent`] back from its Redis value and the key's `PTTL` in ms.
pub(crate) fn cache_from_value(value: &str, pttl_ms: i64) -> Option<CachedEvent> {
    let (event, data) = value.split_once('\0')?;
    Some(CachedEvent::new(event, data, Duration::from_millis(pttl_ms.max(0) as u64)))
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

/// A message on `P:tap:<app>`: an entry of the debug console, recorded on node `n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TapMsg {
    pub n: u32,
    pub e: crate::console::tap::Entry,
}

/// The pseudo-channel under which signed-in users are recorded like presence members
/// (`P:{<app>}:pres:#online`), so the same scripts decide online/offline and the reaper cleans it.
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
        let msg = ChannelMsg::Event { n: 7, x: Some(SocketId { node: 1, seq: 2 }), c: None };
        let frame = Bytes::from_static(b"{\"event\":\"e\",\"data\":\"a\\nb\"}");
        let raw = encode(&msg, Some(&frame));
        assert!(raw.starts_with(br#"{"t":"e","n":7,"x":"1.2"}"#), "{raw:?}");
        let (back, f) = decode(&raw).unwrap();
        assert_eq!(back, msg);
        assert_eq!(f, frame);
    }

    #[test]
    fn cached_event_round_trips_through_the_event_header_with_its_remaining_lifetime() {
        let cache = CachedEvent::new("price", "{\"usd\":7}", Duration::from_secs(60));
        let msg = ChannelMsg::Event { n: 7, x: None, c: Some(cache) };
        let raw = encode(&msg, Some(&Bytes::from_static(b"{}")));
        assert!(raw.starts_with(br#"{"t":"e","n":7,"c":{"e":"price","d":"{\"usd\":7}","t":"#), "{raw:?}");
        let Some((ChannelMsg::Event { c: Some(back), .. }, _)) = decode(&raw) else { panic!("not an event: {raw:?}") };
        assert_eq!((&*back.event, &*back.data), ("price", "{\"usd\":7}"));
        let left = back.remaining(Instant::now());
        assert!(left > Duration::from_secs(59) && left <= Duration::from_secs(60), "{left:?}");
    }

    #[test]
    fn cached_event_round_trips_through_its_redis_value() {
        let cache = CachedEvent::new("price", "a\nb", Duration::from_secs(60));
        let (value, px) = cache_value(&cache);
        assert_eq!(value, "price\0a\nb");
        assert!(px > 59_000 && px <= 60_000, "{px}");
        let back = cache_from_value(&value, px).expect("decodes");
        assert_eq!((&*back.event, &*back.data), ("price", "a\nb"));
        assert!(cache_from_value("no separator", 1000).is_none());
    }

    #[test]
    fn tap_names_round_trip_and_stay_apart_from_channel_names() {
        let n = Names::new("herald");
        assert_eq!(n.parse_tap(&n.tap("app-1")), Some("app-1"));
        assert_eq!(n.parse_channel(&n.tap("app-1")), None);
        assert_eq!(n.parse_tap(&n.channel("app-1", "tap")), None);
    }

    #[test]
    fn garbage_message_is_rejected() {
        assert!(decode(&Bytes::from_static(b"nonsense")).is_none());
        assert!(decode(&Bytes::from_static(b"{\"t\":\"zz\"}\n")).is_none());
    }
}
