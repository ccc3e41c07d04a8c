//! `pusher:subscribe` (PROTOCOL.md 5.1): validate, authorize, join, reply.

use std::sync::Arc;

use herald_protocol::auth::authorize_subscription;
use herald_protocol::channel::{validate_channel_name, ChannelKind};
use herald_protocol::outbound;
use herald_protocol::presence::parse_channel_data;

use super::Session;
use crate::namespace::{JoinAs, Joined, SubscribePolicy};

/// A subscription that passed every check and waits for the cluster to be ready.
#[derive(Debug)]
pub struct PendingSubscribe {
    /// The channel to join.
    pub channel: String,
    kind: ChannelKind,
    join_as: Option<JoinAs>,
}

impl Session {
    /// Validates and authorizes; joins at once on a single node, or returns the pending join
    /// when the cluster adapter must prepare the channel first.
    pub(super) fn subscribe(
        &mut self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Option<super::Pending> {
        match self.check_subscribe(channel, auth, channel_data) {
            Err(message) => {
                self.refuse_subscription(channel, &message);
                None
            }
            Ok(p) if self.hub.adapter().is_clustered() && !self.subscriptions.contains_key(channel) => {
                Some(super::Pending::Subscribe(p))
            }
            Ok(p) => {
                self.finish_subscribe(p);
                None
            }
        }
    }

    /// Joins the channel (after `prepare` in cluster mode).
    pub(super) fn finish_subscribe(&mut self, p: PendingSubscribe) {
        let policy = SubscribePolicy {
            max_members: self.app.limits.max_presence_members_per_channel,
            count: self.hub.count_policy(&self.app),
            max_channels: self.app.limits.max_channels,
        };
        match self.ns.subscribe(&self.conn, &p.channel, p.kind, p.join_as, policy, &self.hub.metrics) {
            Ok(joined) => {
                if matches!(joined, Joined::New { .. }) {
                    self.hub.subscription_changed(&self.app.id, &self.conn.socket_id_str, &p.channel, true);
                }
                self.subscriptions.insert(Arc::from(p.channel.as_str()), ());
                if p.kind.requires_signature() {
                    self.authorized = true;
                }
            }
            Err(e) => self.refuse_subscription(&p.channel, &e.to_string()),
        }
    }

    fn check_subscribe(
        &mut self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<PendingSubscribe, String> {
        let limits = &self.app.limits;
        let kind = validate_channel_name(channel, limits.max_channel_name_length)
            .map_err(|_| format!("Invalid channel name: {channel}"))?;
        let max = limits.max_subscriptions_per_connection;
        if self.subscriptions.len() >= max && !self.subscriptions.contains_key(channel) {
            return Err(format!(
                "Subscription limit reached: a connection may be subscribed to at most {max} channels; \
                 not subscribed to {channel}"
            ));
        }

        if kind == ChannelKind::ServerToUser {
            let own = self.user.as_ref().map(|u| format!("#server-to-user-{}", u.id));
            if own.as_deref() != Some(channel) {
                return Err(format!("Not allowed to subscribe to {channel}"));
            }
        }
        let app = self.app.clone();
        authorize_subscription(
            kind,
            &self.conn.socket_id_str,
            channel,
            auth,
            channel_data,
            self.user.is_some(),
            |key| app.secret_for_key(key).map(|s| s.as_bytes().to_vec()),
        )
        .map_err(|e| e.to_string())?;

        let join_as = if kind.is_presence() { Some(self.presence_identity(channel_data)?) } else { None };
        Ok(PendingSubscribe { channel: channel.to_owned(), kind, join_as })
    }

    /// The member a presence subscription joins as: from `channel_data`, or from the signed-in
    /// user when the auth endpoint sent none (PROTOCOL.md 5.6).
    fn presence_identity(&self, channel_data: Option<&str>) -> Result<JoinAs, String> {
        let limits = &self.app.limits;
        let (user_id, user_info): (Arc<str>, Option<Arc<str>>) = match channel_data {
            Some(cd) => {
                let m = parse_channel_data(cd, limits.max_user_id_length).map_err(|e| e.to_string())?;
                (m.user_id.into(), m.user_info.map(Arc::from))
            }
            None => match &self.user {
                Some(u) => (u.id.clone(), u.user_info.clone()),
                None => return Err("channel_data required to subscribe to presence channel".to_owned()),
            },
        };
        if let Some(info) = &user_info {
            if info.len() > limits.max_member_bytes() {
                return Err(format!("Presence member data exceeds {} bytes", limits.max_member_bytes()));
            }
        }
        Ok(JoinAs { user_id, user_info })
    }

    /// Hosted answer to a refused subscription: a connection-level `pusher:error` with a null
    /// code (PROTOCOL.md 5.9), plus the optional channel-scoped `pusher:subscription_error`.
    fn refuse_subscription(&self, channel: &str, message: &str) {
        self.send_error(None, message);
        if self.app.limits.emit_subscription_error {
            self.send(outbound::subscription_error(channel, message, 401));
        }
    }
}
