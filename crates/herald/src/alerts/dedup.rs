//! "Once per day" for alerts that would otherwise repeat (the quota alerts): per key, the first
//! call within [`ONCE_PER`] wins.
//!
//! Two levels:
//! * in memory, per node: a key seen within the last 24 h is not sent again by this node (a
//!   restart forgets it, so a single node may repeat an alert after a restart);
//! * in a cluster, once per cluster: the node that sets the Redis key `P:alerts:<key>` with
//!   `SET … NX EX 86400` (the adapter's own client and prefix) sends; every other node's SET
//!   finds the key and does not. When Redis does not answer, the node sends anyway (a
//!   duplicate is better than a lost alert) and says so in the log.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fred::prelude::{Client, Expiration, KeysInterface, SetOptions};
use parking_lot::Mutex;

/// How long a sent key suppresses the same alert.
pub(crate) const ONCE_PER: Duration = Duration::from_secs(86_400);
/// Local entries kept before the expired ones are swept on insert.
const SWEEP_ABOVE: usize = 4_096;

/// The shared Redis the once-per-cluster check uses.
pub(crate) struct ClusterKeys {
    pub client: Client,
    /// The adapter's key prefix (`[adapter].prefix`).
    pub prefix: String,
}

#[derive(Default)]
pub(crate) struct Dedup {
    /// Key → when this node last let it through. parking_lot mutex: held for one lookup and
    /// insert (and, past `SWEEP_ABOVE` entries, a sweep), never across an await.
    seen: Mutex<HashMap<String, Instant>>,
    /// Set once at start-up when the node is in a cluster; read without a lock after.
    cluster: OnceLock<ClusterKeys>,
}

impl Dedup {
    pub(crate) fn use_cluster(&self, keys: ClusterKeys) {
        let _ = self.cluster.set(keys);
    }

    pub(crate) fn clustered(&self) -> bool {
        self.cluster.get().is_some()
    }

    /// Whether this node has not let `key` through within [`ONCE_PER`]; records it if so.
    pub(crate) fn first_here(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock();
        if seen.get(key).is_some_and(|at| now.duration_since(*at) < ONCE_PER) {
            return false;
        }
        if seen.len() >= SWEEP_ABOVE {
            seen.retain(|_, at| now.duration_since(*at) < ONCE_PER);
        }
        seen.insert(key.to_owned(), now);
        true
    }

    /// Whether this node is the first of the cluster to claim `key` within [`ONCE_PER`] (always
    /// true without a cluster, and when Redis does not answer).
    pub(crate) async fn first_in_cluster(&self, key: &str) -> bool {
        let Some(cluster) = self.cluster.get() else { return true };
        let redis_key = format!("{}:alerts:{key}", cluster.prefix);
        let ttl = Expiration::EX(ONCE_PER.as_secs() as i64);
        let claimed: Result<Option<String>, _> =
            cluster.client.set(redis_key, "1", Some(ttl), Some(SetOptions::NX), false).await;
        match claimed {
            Ok(won) => won.is_some(),
            Err(e) => {
                tracing::warn!(%e, key, "alerts: Redis did not answer the once-per-cluster check; sending from this node");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_passes_once_and_other_keys_are_independent() {
        let d = Dedup::default();
        assert!(d.first_here("quota:a:messages:warning"));
        assert!(!d.first_here("quota:a:messages:warning"));
        assert!(d.first_here("quota:a:messages:exceeded"));
        assert!(d.first_here("quota:b:messages:warning"));
    }
}
