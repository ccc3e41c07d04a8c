//! Where the server's apps come from at run time.
//!
//! - `directory.rs`: [`Directory`], the current view of every app (credentials, limits, webhook
//!   targets), read on every connection and API request and replaced whole when the apps
//!   change (a config reload, a refresh from the app store); it reports what changed so the hub
//!   and the webhooks follow.
//! - `store_sync.rs`: `StoreSync`, which keeps the directory in step with a SQL app store
//!   (refresh every `cache_ttl`, immediate lookups of unknown keys, outages).
//! - `row.rs`: [`row::AppRow`] (one table row) and [`row::app_from_row`], which validates a row
//!   with the config's own `[[apps]]` rules;
//! - `sql.rs`: [`sql::SqlStore`], the table in PostgreSQL or MySQL/MariaDB (sqlx, queries built
//!   at run time);
//! - `cli.rs`: `herald apps …`, which manages the rows directly (no server needed).
//!
//! The choice of store is `[app_store]` (`crate::config::app_store`).

pub mod cli;
mod directory;
pub mod row;
pub mod sql;
mod store_sync;

pub(crate) use directory::{Directory, Replaced};
pub(crate) use store_sync::{By, StoreHealth, StoreSync};
