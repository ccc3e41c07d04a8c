//! The console: a live debug log and an overview of the apps in the browser, served by herald
//! itself under `/console` (docs/OPERATIONS.md, "Console"), off unless `[console]` enables it.
//!
//! - [`tap`]: what happened to a watched app (connections, subscriptions, channel and presence
//!   events, API messages, client events, webhooks), handed to the consoles watching it. It
//!   costs one atomic load per recording point while nobody watches.

// `Watch` (and `Tap::watch`) are used by the console's stream route (removed when it lands).
#[allow(dead_code)]
pub(crate) mod tap;
