//! Command-line source (clap derive).
//!
//! Owns the flag definitions and their conversion into a [`Layer`]. clap is used for flags
//! only: environment variables are read by `env.rs` from an injected map, so the clap
//! `env` feature is deliberately not used here (it would read the process environment and
//! make tests depend on it). All flags are `global`, so `herald check-config --config x.toml`
//! and `herald --config x.toml check-config` both work.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::file::Layer;
use super::{ConfigError, LogFormat};

const AFTER_HELP: &str = "\
Configuration precedence (lowest to highest): built-in defaults, the TOML file
(--config or HERALD_CONFIG), environment variables, command-line flags.

Every top-level file key can be set from the environment as HERALD_<KEY IN UPPERCASE>,
e.g. HERALD_PORT, HERALD_LOG_LEVEL, HERALD_MAX_WS_MESSAGE_KB. HERALD_APP_ID, HERALD_APP_KEY
and HERALD_APP_SECRET (all three together) replace the configured apps with one app.
HERALD_TLS_CERT_FILE and HERALD_TLS_KEY_FILE (both together) turn on TLS ([tls] in the file).
See herald.example.toml for every key.

Webhook dead letters of a running server: herald dead-letters --help
Apps kept in PostgreSQL or MySQL ([app_store]): herald apps --help";

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "A self-hosted, Pusher Channels compatible realtime server.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// TOML config file (default: none; also HERALD_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 0.0.0.0).
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 lets the OS pick (default 6001).
    #[arg(long, global = true, value_name = "PORT")]
    pub port: Option<u16>,
    /// Path prefix for every route, e.g. /pusher (default: none).
    #[arg(long, global = true, value_name = "PREFIX", allow_hyphen_values = true)]
    pub path_prefix: Option<String>,
    /// Log output format.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, a tracing EnvFilter directive such as `info` or `herald=debug,warn`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Seconds of client silence before the server probes it (default 120).
    #[arg(long, global = true, value_name = "SECS")]
    pub activity_timeout: Option<u64>,
    /// Node-wide connection cap, or `unlimited` (default unlimited).
    #[arg(long, global = true, value_name = "N", value_parser = parse_limit)]
    pub max_connections: Option<Limit>,
    /// Directory for persistent state (default ./herald-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TLS certificate chain, PEM, leaf first (requires --tls-key-file; also HERALD_TLS_CERT_FILE).
    #[arg(long, global = true, value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key, PEM (requires --tls-cert-file; also HERALD_TLS_KEY_FILE).
    #[arg(long, global = true, value_name = "PATH")]
    pub tls_key_file: Option<PathBuf>,
    /// Single-app id (requires --app-key and --app-secret; replaces configured apps).
    #[arg(long, global = true, value_name = "ID")]
    pub app_id: Option<String>,
    /// Single-app key.
    #[arg(long, global = true, value_name = "KEY")]
    pub app_key: Option<String>,
    /// Single-app secret.
    #[arg(long, global = true, value_name = "SECRET")]
    pub app_secret: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Load and validate the configuration, then exit without serving.
    CheckConfig,
}

/// A parsed `--max-connections` value (`None` = unlimited).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit(pub Option<u64>);

fn parse_limit(v: &str) -> Result<Limit, String> {
    super::env::limit(v.trim()).map(Limit).map_err(str::to_string)
}

/// The names used in error messages for the credential flags, in (id, key, secret) order.
pub(crate) const APP_FLAGS: [&str; 3] = ["--app-id", "--app-key", "--app-secret"];

impl Cli {
    /// The flags as a layer (flags not given stay `None`).
    pub(super) fn layer(&self) -> Result<Layer, ConfigError> {
        let single_app = super::env::credentials(APP_FLAGS, |flag| match flag {
            "--app-id" => self.app_id.clone(),
            "--app-key" => self.app_key.clone(),
            _ => self.app_secret.clone(),
        })?;
        Ok(Layer {
            host: self.host.clone(),
            port: self.port,
            path_prefix: self.path_prefix.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            activity_timeout: self.activity_timeout,
            max_connections: self.max_connections.map(|l| l.0),
            data_dir: self.data_dir.clone(),
            single_app,
            ..Layer::default()
        })
    }

    pub(super) fn check_only(&self) -> bool {
        matches!(self.command, Some(Command::CheckConfig))
    }
}
