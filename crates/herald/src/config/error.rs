//! Configuration errors.
//!
//! Owns [`ConfigError`], the single error type of the configuration loader. Every variant
//! names the offending key (and, where it matters, the variable, flag or file location it came
//! from) so an operator can fix a bad deployment from one line of output; `Display` never
//! spans more than one line.

use std::path::PathBuf;

/// Why the configuration could not be loaded. `Display` is one line naming the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Command-line parsing stopped: a bad flag, or `--help` / `--version` was requested.
    /// `main` should call [`clap::Error::exit`], which prints the message and exits with 0 for
    /// help/version and 2 for usage errors.
    #[error("{}", .0.to_string().trim_end())]
    Cli(#[from] clap::Error),

    /// A config file was named (`--config` / `HERALD_CONFIG`) but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The config file is not valid TOML, has an unknown key, or a value of the wrong type.
    /// `key` is the dotted key path (`apps[1].max_event_batch_size`) when it could be located.
    #[error(
        "{}{message} (in {}, line {line}, column {column})",
        key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default(),
        path.display()
    )]
    Parse { path: PathBuf, key: Option<String>, line: usize, column: usize, message: String },

    /// An environment variable or flag value did not parse.
    #[error("{key}: invalid value {value:?} from {source_name} ({reason})")]
    InvalidValue {
        /// The config key, e.g. `port`.
        key: String,
        /// Where the value came from, e.g. `HERALD_PORT` or `--max-connections`.
        source_name: String,
        value: String,
        reason: String,
    },

    /// Only some of the app credentials were given in one source (env or flags).
    #[error("{missing}: missing; {all} must be set together (given: {given})")]
    IncompleteAppCredentials {
        /// The first missing variable or flag, e.g. `HERALD_APP_SECRET`.
        missing: String,
        /// The three names, for the message.
        all: String,
        /// The names that were given.
        given: String,
    },

    /// The `[tls]` certificate or key file is unusable; the message names `tls.cert_file` or
    /// `tls.key_file`.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),

    /// A value parsed but is not acceptable (zero where >0 is required, duplicate app key, ...).
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },

    /// A row of the SQL app store is not a valid app; `error` names the column or the
    /// `settings.<key>` (`app "shop": settings.max_connections: must be greater than 0`).
    #[error("app {app:?}: {error}")]
    AppRow { app: String, error: Box<ConfigError> },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), reason: reason.into() }
    }
}
