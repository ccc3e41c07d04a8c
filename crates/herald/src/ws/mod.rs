//! The WebSocket side: the upgrade on `/app/{key}` and one task per connection.
//!
//! - `upgrade.rs`: validates the HTTP upgrade, answers 101, then runs admission (PROTOCOL.md
//!   2.2) on the upgraded socket — 4xxx codes can only be sent after the upgrade.
//! - `connection.rs`: the per-connection task: reads frames into the session, writes the
//!   outbox, keeps the connection alive (ping/pong, activity timeout) and closes it.

mod connection;
mod upgrade;

pub(crate) use upgrade::ws_upgrade;
