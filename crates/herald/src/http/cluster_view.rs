//! Channel counts and lists as the HTTP API reports them: from this node's memory on a single
//! node, from the cluster's shared state (through the adapter) in a cluster. Handlers never
//! ask other nodes directly, so a slow or dead node cannot delay an API answer.

use herald_core::adapter::{Answer, Query};
use herald_core::hub::Hub;
use herald_core::namespace::ChannelCounts;

use super::error::ApiError;

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// Counts of one channel.
pub(crate) async fn counts(hub: &Hub, app_id: &str, name: &str) -> Result<ChannelCounts, ApiError> {
    match hub.adapter().query(app_id, Query::Channel { name: name.to_owned() }) {
        None => Ok(hub.namespace(app_id).counts(name)),
        Some(fut) => match fut.await.map_err(unavailable)? {
            Answer::Channel(c) => Ok(c),
            other => Err(unavailable(format!("unexpected answer {other:?}"))),
        },
    }
}

/// Occupied channels starting with `prefix`, sorted by name.
pub(crate) async fn occupied(hub: &Hub, app_id: &str, prefix: &str) -> Result<Vec<(String, ChannelCounts)>, ApiError> {
    match hub.adapter().query(app_id, Query::Channels { prefix: prefix.to_owned() }) {
        None => Ok(hub.namespace(app_id).occupied(prefix).into_iter().map(|(n, c)| (n.to_string(), c)).collect()),
        Some(fut) => match fut.await.map_err(unavailable)? {
            Answer::Channels(list) => Ok(list),
            other => Err(unavailable(format!("unexpected answer {other:?}"))),
        },
    }
}

/// User ids of a presence channel, sorted.
pub(crate) async fn user_ids(hub: &Hub, app_id: &str, name: &str) -> Result<Vec<String>, ApiError> {
    match hub.adapter().query(app_id, Query::Users { name: name.to_owned() }) {
        None => Ok(hub.namespace(app_id).user_ids(name).iter().map(|u| u.to_string()).collect()),
        Some(fut) => match fut.await.map_err(unavailable)? {
            Answer::Users(list) => Ok(list),
            other => Err(unavailable(format!("unexpected answer {other:?}"))),
        },
    }
}
