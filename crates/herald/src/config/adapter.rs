//! The `[adapter]` section: single node (`local`, the default) or a cluster over Redis.
//!
//! ```toml
//! [adapter]
//! driver = "redis"                 # default "local"
//! url = "redis://127.0.0.1:6379"   # also HERALD_REDIS_URL; a Redis Cluster:
//!                                  # "redis-cluster://host1:7000?node=host2:7001&node=host3:7002"
//! prefix = "herald"                # keys and channels live under it; clusters sharing a Redis use different prefixes
//! node_timeout = 10                # seconds without heartbeat before a node is declared dead
//! leave_grace_ms = 3000            # graceful leave: keep drained members this long (no flapping)
//! ```
//! Env: `HERALD_ADAPTER_DRIVER`, `HERALD_REDIS_URL`, `HERALD_ADAPTER_PREFIX` (env overrides the
//! file, like every other key). Setting `HERALD_REDIS_URL` alone does not switch the driver.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::cluster::ClusterConfig;

/// Environment variables of this section.
pub const ADAPTER_VARS: [&str; 3] = ["HERALD_ADAPTER_DRIVER", "HERALD_REDIS_URL", "HERALD_ADAPTER_PREFIX"];

/// `[adapter]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAdapter {
    pub driver: Option<String>,
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub node_timeout: Option<u64>,
    pub leave_grace_ms: Option<u64>,
}

/// The resolved choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AdapterConfig {
    /// Single node, everything in memory.
    #[default]
    Local,
    Redis(ClusterConfig),
}

pub(super) fn resolve(file: Option<&FileAdapter>, env: &HashMap<String, String>) -> Result<AdapterConfig, ConfigError> {
    let file = file.cloned().unwrap_or_default();
    let pick = |var: &str, from_file: Option<String>| env.get(var).cloned().or(from_file);
    let driver = pick("HERALD_ADAPTER_DRIVER", file.driver).unwrap_or_else(|| "local".to_owned());
    let invalid = |key: &str, reason: String| ConfigError::Invalid { key: key.to_owned(), reason };
    match driver.as_str() {
        "local" => Ok(AdapterConfig::Local),
        "redis" => {
            let url = pick("HERALD_REDIS_URL", file.url).unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
            const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"];
            if !SCHEMES.iter().any(|s| url.starts_with(s)) {
                return Err(invalid(
                    "adapter.url",
                    format!("must start with redis://, rediss://, redis-cluster:// or rediss-cluster://, got {url:?}"),
                ));
            }
            let prefix = pick("HERALD_ADAPTER_PREFIX", file.prefix).unwrap_or_else(|| "herald".to_owned());
            if prefix.is_empty() || prefix.contains(char::is_whitespace) {
                return Err(invalid("adapter.prefix", "must be non-empty and contain no whitespace".to_owned()));
            }
            let node_timeout = file.node_timeout.unwrap_or(10);
            if !(2..=3600).contains(&node_timeout) {
                return Err(invalid("adapter.node_timeout", format!("must be 2..=3600 seconds, got {node_timeout}")));
            }
            let node_timeout = Duration::from_secs(node_timeout);
            // Heartbeat a few times per timeout so one slow beat never kills a live node.
            let heartbeat = (node_timeout / 5).max(Duration::from_millis(400));
            let leave_grace = Duration::from_millis(file.leave_grace_ms.unwrap_or(3000));
            if leave_grace > Duration::from_secs(60) {
                return Err(invalid("adapter.leave_grace_ms", "must be at most 60000".to_owned()));
            }
            // `removal_delay` follows `webhook_removal_delay_ms` (set where the server starts).
            let removal_delay = Duration::from_secs(3);
            Ok(AdapterConfig::Redis(ClusterConfig { url, prefix, node_timeout, heartbeat, leave_grace, removal_delay }))
        }
        other => Err(invalid("adapter.driver", format!("must be \"local\" or \"redis\", got {other:?}"))),
    }
}
