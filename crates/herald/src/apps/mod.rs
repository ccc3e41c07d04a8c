//! Apps kept outside the config file: the SQL app store.
//!
//! - `row.rs`: [`row::AppRow`] (one table row) and [`row::app_from_row`], which validates a row
//!   with the config's own `[[apps]]` rules;
//! - `sql.rs`: [`sql::SqlStore`], the table in PostgreSQL or MySQL/MariaDB (sqlx, queries built
//!   at run time);
//! - `cli.rs`: `herald apps …`, which manages the rows directly (no server needed).
//!
//! The choice of store is `[app_store]` (`crate::config::app_store`).

pub mod cli;
pub mod row;
pub mod sql;
