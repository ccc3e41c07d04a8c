//! The `info` parameter: a comma-separated list of attributes to report (PROTOCOL.md 10.3–10.6).

use herald_core::namespace::ChannelCounts;
use herald_protocol::channel::ChannelKind;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Which attributes were asked for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Info {
    pub user_count: bool,
    pub subscription_count: bool,
    pub cache: bool,
}

impl Info {
    /// Parses `info`, accepting only the attributes in `allowed`; anything else is a 400.
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Info, ApiError> {
        let mut info = Info::default();
        for attr in raw.unwrap_or("").split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if !allowed.contains(&attr) {
                return Err(ApiError::bad_request(format!("Unsupported info attribute: {attr}")));
            }
            match attr {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                "cache" => info.cache = true,
                _ => {}
            }
        }
        Ok(info)
    }

    pub(crate) fn any(&self) -> bool {
        self.user_count || self.subscription_count || self.cache
    }

    /// The per-channel attribute object: `user_count` only for presence channels,
    /// `subscription_count` for every type.
    pub(crate) fn attributes(&self, kind: ChannelKind, counts: ChannelCounts) -> Map<String, Value> {
        let mut m = Map::new();
        if self.user_count && kind.is_presence() {
            m.insert("user_count".into(), counts.user_count.into());
        }
        if self.subscription_count {
            m.insert("subscription_count".into(), counts.subscription_count.into());
        }
        m
    }
}
