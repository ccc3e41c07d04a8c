//! The WebSocket side: the upgrade on `/app/{key}` and one task per connection.
//!
//! - `upgrade.rs`: validates the HTTP upgrade, answers 101, then runs admission (PROTOCOL.md
//!   2.2) on the upgraded socket — 4xxx codes can only be sent after the upgrade.
//! - `connection.rs`: the per-connection task: reads frames into the session, writes the
//!   outbox, keeps the connection alive (ping/pong, activity timeout) and closes it.
//! - `rate.rs`: the per-IP limit on new connections (429 before the upgrade), off by default.
//! - `client_ip.rs`: the client address those limits apply to (`trusted_proxies`).

mod client_ip;
mod connection;
mod rate;
mod upgrade;

pub(crate) use client_ip::client_ip;
pub(crate) use rate::ConnectLimiter;
pub(crate) use upgrade::{websocket_config, ws_upgrade};
