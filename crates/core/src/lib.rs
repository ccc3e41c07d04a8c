//! herald-core: the state of a herald node and the protocol logic that changes it.
//!
//! - [`adapter`]: the seam to other nodes ([`adapter::LocalAdapter`] on a single node);
//!   [`remote`] applies what other nodes report.
//! - [`app`]: tenants and where they come from ([`app::AppStore`]).
//! - [`hub`]: the node — namespaces per app, socket ids, admission of connections.
//! - [`namespace`]: one app's channels and connections; subscribe and queries.
//! - [`publish`]: the one publish path (local fan-out, cache, cluster forward, counting) that
//!   the HTTP API and client events share, and that events from other nodes reuse.
//! - [`channel`]: one channel's subscribers and presence members.
//! - [`connection`] / [`outbox`]: the shared handle of a socket and its bounded send queue.
//! - [`session`]: a connection's protocol state machine (subscribe, client events, signin).
//! - [`users`]: signed-in users, online state, watchlists.
//! - [`events`]: channel lifecycle events reported to an [`events::EventSink`] (webhooks).
//! - [`metrics`]: pre-registered metric handles.
//!
//! Nothing here does socket I/O: the `herald` binary reads frames, calls [`session::Session`],
//! and writes whatever the connection's outbox yields. That keeps this crate testable without
//! sockets and keeps the transport replaceable.

#![warn(missing_docs)]

pub mod adapter;
pub mod app;
pub mod channel;
pub mod connection;
pub mod events;
pub mod hub;
pub mod metrics;
pub mod namespace;
pub mod outbox;
pub mod publish;
pub mod remote;
pub mod session;
pub mod users;

#[cfg(test)]
mod tests;
