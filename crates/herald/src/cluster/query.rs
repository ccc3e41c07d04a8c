//! HTTP API queries answered from the cluster's shared state in Redis (never from other
//! nodes, so a slow or dead node cannot delay them). A dead node's contribution disappears
//! when it is reaped (`node_timeout`).

use std::collections::{BTreeSet, HashMap};

use fred::prelude::*;
use herald_core::adapter::{Answer, Query, QueryError};
use herald_core::namespace::ChannelCounts;
use herald_protocol::channel::ChannelKind;

use super::Inner;

fn err(e: impl std::fmt::Display) -> QueryError {
    QueryError(e.to_string())
}

pub(crate) async fn run(inner: &Inner, app: &str, query: Query) -> Result<Answer, QueryError> {
    match query {
        Query::Channel { name } => Ok(Answer::Channel(counts(inner, app, &name).await?)),
        Query::Users { name } => Ok(Answer::Users(users(inner, app, &name).await?.into_iter().collect())),
        Query::Channels { prefix } => {
            let all: Vec<String> = inner.client.smembers(inner.names.occupied(app)).await.map_err(err)?;
            let mut names: Vec<String> =
                all.into_iter().filter(|c| c.starts_with(&prefix) && !ChannelKind::of(c).is_internal()).collect();
            names.sort();
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let c = counts(inner, app, &name).await?;
                if c.subscription_count > 0 {
                    out.push((name, c));
                }
            }
            Ok(Answer::Channels(out))
        }
    }
}

async fn counts(inner: &Inner, app: &str, channel: &str) -> Result<ChannelCounts, QueryError> {
    let per_node: HashMap<String, u64> = inner.client.hgetall(inner.names.counts(app, channel)).await.map_err(err)?;
    let subscription_count = per_node.values().sum::<u64>() as usize;
    let user_count = if ChannelKind::of(channel).is_presence() { users(inner, app, channel).await?.len() } else { 0 };
    Ok(ChannelCounts { subscription_count, user_count })
}

async fn users(inner: &Inner, app: &str, channel: &str) -> Result<BTreeSet<String>, QueryError> {
    let fields: HashMap<String, String> =
        inner.client.hgetall(inner.names.presence(app, channel)).await.map_err(err)?;
    Ok(fields
        .into_iter()
        .filter(|(_, info)| !info.starts_with('\0')) // leaving: removal announced, not settled yet
        .filter_map(|(f, _)| f.split_once('|').map(|(_, u)| u.to_owned()))
        .collect())
}
