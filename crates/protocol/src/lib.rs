//! `herald-protocol`: the Pusher Channels wire protocol as pure functions.
//!
//! This crate owns every byte-level detail of the protocol (message shapes, channel names,
//! signatures, error codes) so that the stateful server crates never hand-build JSON or
//! strings-to-sign themselves. It performs no I/O, holds no global state and never panics on
//! input: every function here is fed attacker-controlled data.
//!
//! The protocol is described in `docs/PROTOCOL.md`; section numbers in the module docs (e.g.
//! "(5.9)") refer to its sections.

#![warn(missing_docs)]

pub mod api_auth;
pub mod auth;
pub mod channel;
pub mod codes;
pub mod event;
pub mod inbound;
mod json;
pub mod outbound;
pub mod presence;
pub mod socket_id;
pub mod user;
