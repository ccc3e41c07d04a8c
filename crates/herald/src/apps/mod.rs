//! Where the server's apps come from at run time.
//!
//! - `directory.rs`: [`Directory`], the current view of every app (credentials, limits, webhook
//!   targets), read on every connection and API request and replaced whole when the apps
//!   change (a config reload, a refresh from the app store); it reports what changed so the hub
//!   and the webhooks follow.

mod directory;

pub(crate) use directory::Directory;
