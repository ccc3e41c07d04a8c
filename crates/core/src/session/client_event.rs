//! Client events (`client-*`, PROTOCOL.md 7): the acceptance rules, in the specified order,
//! then relay to the channel's other subscribers through the publish path ([`crate::publish`])
//! and the `client_event` webhook.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_protocol::channel::ChannelKind;
use herald_protocol::codes::ErrorCode;

use super::Session;
use crate::events::{ChannelEvent, EventKind};
use crate::publish::{Origin, Publication};

impl Session {
    pub(super) fn client_event(&mut self, event: &str, channel: &str, data: &str) {
        let app = self.app.clone();
        let limits = &app.limits;
        if !limits.enable_client_messages {
            return self.send_error(None, "Client events are not enabled for this app");
        }
        let kind = ChannelKind::of(channel);
        if !kind.allows_client_events() {
            return self.send_error(None, "Client events are only allowed on private and presence channels");
        }
        if !self.subscriptions.contains_key(channel) {
            return self.send_error(None, &format!("Not subscribed to {channel}"));
        }
        let max_rate = limits.max_client_events_per_second;
        if !self.take_rate_token(max_rate) {
            return self.send_error(
                Some(ErrorCode::CLIENT_EVENT_RATE_LIMIT),
                &format!("Client event rate limit exceeded ({max_rate} per second)"),
            );
        }
        if data.len() > limits.max_payload_bytes() {
            return self.send_error(None, &format!("Client event data exceeds {} bytes", limits.max_payload_bytes()));
        }
        if event.chars().count() > limits.max_event_name_length {
            return self
                .send_error(None, &format!("Event name is longer than {} characters", limits.max_event_name_length));
        }
        if self.ns.over_message_quota() {
            self.hub.metrics.quota_refusal(&app.id, "messages");
            return self.send_error(None, "Application is over its daily message quota; client event not sent");
        }
        // user_id only on presence channels, from the sender's membership, never the payload.
        let user_id = if kind.is_presence() { self.presence_user_id(channel) } else { None };
        let publication = Publication {
            event,
            data,
            user_id: user_id.as_deref(),
            exclude: Some(self.conn.socket_id),
            origin: Origin::Client,
        };
        self.ns.publish([channel], &publication, &self.hub.metrics);
        self.ns.events.emit_with(EventKind::ClientEvent, kind, || ChannelEvent::ClientEvent {
            channel: Arc::from(channel),
            event: Arc::from(event),
            data: Arc::from(data),
            socket_id: Arc::from(&*self.conn.socket_id_str),
            user_id,
        });
    }

    /// Fixed one-second window: at most `max` events per window.
    fn take_rate_token(&mut self, max: u32) -> bool {
        let now = Instant::now();
        if now.duration_since(self.rate.started) >= Duration::from_secs(1) {
            self.rate.started = now;
            self.rate.count = 0;
        }
        if self.rate.count >= max {
            return false;
        }
        self.rate.count += 1;
        true
    }

    /// The user id this connection joined `channel` as.
    fn presence_user_id(&self, channel: &str) -> Option<std::sync::Arc<str>> {
        self.ns.member_of(channel, self.conn.socket_id.seq)
    }
}
