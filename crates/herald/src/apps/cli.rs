//! `herald apps …`: manage the apps of a SQL app store, straight in the database.
//!
//! ```text
//! herald apps list [--show-secrets]
//! herald apps add --id shop --key shop-key --secret S3CRET [--set max_connections=100 ...]
//! herald apps set shop enable_client_messages=true webhooks='[{"url":"https://…","event_types":["channel_occupied"]}]'
//! herald apps disable shop | enable shop | remove shop
//! ```
//!
//! No server is needed: the command reads the same configuration as the server (`--config` /
//! `HERALD_CONFIG`, the `HERALD_*` variables, so `HERALD_APP_STORE_*` too) and talks to the
//! configured table directly. Every write is validated with the `[[apps]]` rules before it is
//! written (`SqlStore`), so a bad value is refused with the key named and nothing changes.
//! With `app_store.driver = "config"` there is no table: the command says so and fails.
//! `main` dispatches here before the server's own flags are parsed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use super::row::{app_from_row, apply_change, AppRow};
use super::sql::{SqlStore, StoreError};
use crate::config::{self, ConfigError};

const AFTER_HELP: &str = "\
Apps live in the table named by [app_store] (driver \"postgres\" or \"mysql\"); the
configuration is read as the server reads it (--config or HERALD_CONFIG, and the
HERALD_APP_STORE_DRIVER / _URL / _TABLE variables).

NAME=VALUE: NAME is any [[apps]] key (docs/PROTOCOL.md section 13.1, herald.example.toml).
`key`, `secret` and `enabled` are columns; every other name is a key of the row's `settings`
JSON object. VALUE is read as JSON when it parses (100, true, [\"a\"], {\"x\": 1}) and as a
string otherwise; `null` removes the setting (back to its default). Examples:
  --set max_connections=100 --set enable_client_messages=true
  webhooks='[{\"url\": \"https://example.com/hook\", \"event_types\": [\"channel_occupied\"]}]'

Exit status: 0 done; 1 the database could not be reached or failed; 2 bad usage, bad
configuration or an invalid value (nothing was written); 3 no app with that id.";

#[derive(Debug, Parser)]
#[command(name = "herald apps", bin_name = "herald apps", about = "Manage the apps of a SQL app store ([app_store]).", after_help = AFTER_HELP)]
struct AppsCli {
    /// TOML config file, as for the server (default: none; also HERALD_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print every app: id, key, enabled, secret (masked) and settings.
    List {
        /// Print secrets (and webhook header values) instead of ********.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Add an app (creates the table if it does not exist).
    Add {
        /// The app id (letters, digits, '_' and '-').
        #[arg(long)]
        id: String,
        /// The app key (letters, digits, '_' and '-'); unique.
        #[arg(long)]
        key: String,
        /// The app secret.
        #[arg(long)]
        secret: String,
        /// A setting, NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Change settings or columns of an app: NAME=VALUE ...
    Set {
        /// The app id.
        id: String,
        /// The changes, NAME=VALUE (at least one).
        #[arg(value_name = "NAME=VALUE", required = true)]
        changes: Vec<String>,
    },
    /// Turn an app off: its connections and API requests are refused. Always allowed.
    Disable {
        /// The app id.
        id: String,
    },
    /// Turn an app back on (its row must be valid).
    Enable {
        /// The app id.
        id: String,
    },
    /// Delete an app.
    Remove {
        /// The app id.
        id: String,
    },
}

/// Runs `herald apps` with `args` (the program name first, then `apps` …).
pub fn run(args: Vec<std::ffi::OsString>) -> ExitCode {
    // Drop the "apps" word so clap sees `herald-apps list …`.
    let args: Vec<std::ffi::OsString> = args.into_iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, a)| a).collect();
    let cli = match AppsCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let fail = |code: u8, message: &dyn std::fmt::Display| {
        eprintln!("herald apps: {message}");
        ExitCode::from(code)
    };

    // The server's configuration, from the same sources (its flags other than --config are
    // not accepted here).
    let mut server_args = vec![std::ffi::OsString::from("herald")];
    if let Some(path) = &cli.config {
        server_args.extend(["--config".into(), path.clone().into_os_string()]);
    }
    let loaded = config::process_env().and_then(|env| config::load_from(server_args, &env));
    let config = match loaded {
        Ok(c) => c,
        Err(e) => return fail(2, &format!("configuration error: {e}")),
    };
    let Some(sql) = config.app_store.sql() else {
        return fail(
            2,
            &"apps come from the config file ([[apps]]; app_store.driver is \"config\"): edit them there, \
              or set app_store.driver to \"postgres\" or \"mysql\" to keep them in a database",
        );
    };

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let store = SqlStore::connect_lazy(sql)?;
        execute(&store, cli.command).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => fail(2, &m),
        Err(CliError::Store(e)) => {
            let code = match e {
                StoreError::NotFound(_) => 3,
                StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::Url(_) => 2,
                _ => 1,
            };
            fail(code, &e)
        }
    }
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Store(StoreError::Invalid(e))
    }
}

async fn execute(store: &SqlStore, action: Action) -> Result<(), CliError> {
    match action {
        Action::List { show_secrets } => {
            let rows = store.load_all().await?;
            print!("{}", table(&rows, show_secrets));
            // A row the server cannot load is listed anyway, and explained.
            for row in &rows {
                if let Err(e) = app_from_row(row) {
                    eprintln!("herald apps: warning: the server cannot load this app: {e}");
                }
            }
        }
        Action::Add { id, key, secret, set } => {
            let mut row = AppRow { id, key, secret, enabled: true, settings: "{}".to_owned() };
            for assignment in &set {
                let (name, value) = parse_assignment(assignment)?;
                apply_change(&mut row, &name, value)?;
            }
            // Validated before anything touches the database (`insert` validates again).
            app_from_row(&row)?;
            store.ensure_table().await?;
            store.insert(&row).await?;
            println!("added app {:?} (key {:?}) to table {}", row.id, row.key, store.table());
        }
        Action::Set { id, changes } => {
            let changes = changes.iter().map(|c| parse_assignment(c)).collect::<Result<Vec<_>, _>>()?;
            store.set(&id, &changes).await?;
            println!("updated app {id:?}");
        }
        Action::Disable { id } => {
            store.disable(&id).await?;
            println!("disabled app {id:?}");
        }
        Action::Enable { id } => {
            store.enable(&id).await?;
            println!("enabled app {id:?}");
        }
        Action::Remove { id } => {
            store.remove(&id).await?;
            println!("removed app {id:?}");
        }
    }
    Ok(())
}

/// `NAME=VALUE` → the name and its JSON value. `key` and `secret` take the text as it is;
/// other values are JSON when they parse, else the text as a string.
fn parse_assignment(assignment: &str) -> Result<(String, Value), CliError> {
    let Some((name, raw)) = assignment.split_once('=') else {
        return Err(CliError::Usage(format!("expected NAME=VALUE, got {assignment:?}")));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(CliError::Usage(format!("expected NAME=VALUE, got {assignment:?} (no name)")));
    }
    let value = match name {
        "key" | "secret" => Value::String(raw.to_owned()),
        _ => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())),
    };
    Ok((name.to_owned(), value))
}

/// The `list` output: a header and one line per app, columns aligned.
fn table(rows: &[AppRow], show_secrets: bool) -> String {
    let mut lines =
        vec![["ID".to_owned(), "KEY".to_owned(), "ENABLED".to_owned(), "SECRET".to_owned(), "SETTINGS".to_owned()]];
    for row in rows {
        let secret = if show_secrets { row.secret.clone() } else { MASK.to_owned() };
        lines.push([
            row.id.clone(),
            row.key.clone(),
            if row.enabled { "yes" } else { "no" }.to_owned(),
            secret,
            settings_for_display(&row.settings, show_secrets),
        ]);
    }
    let width = |col: usize| lines.iter().map(|l| l[col].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    let mut out = String::new();
    for l in &lines {
        for (col, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", l[col], w = *w));
        }
        out.push_str(&l[4]);
        out.push('\n');
    }
    out
}

const MASK: &str = "********";

/// `settings` as compact JSON; webhook header values (often credentials) masked unless asked.
/// Text that is not JSON is shown as it is (the warning below the table explains it).
fn settings_for_display(settings: &str, show_secrets: bool) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(settings) else {
        return settings.to_owned();
    };
    if !show_secrets {
        if let Some(hooks) = v.get_mut("webhooks").and_then(Value::as_array_mut) {
            for hook in hooks {
                if let Some(headers) = hook.get_mut("headers").and_then(Value::as_object_mut) {
                    for value in headers.values_mut() {
                        *value = Value::String(MASK.to_owned());
                    }
                }
            }
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn assignments_are_json_when_they_parse_else_strings() {
        let parse = |s: &str| parse_assignment(s).unwrap();
        assert_eq!(parse("max_connections=100"), ("max_connections".to_owned(), json!(100)));
        assert_eq!(parse("enable_client_messages=true"), ("enable_client_messages".to_owned(), json!(true)));
        assert_eq!(parse("force_tls=null"), ("force_tls".to_owned(), Value::Null));
        assert_eq!(parse("x=a=b"), ("x".to_owned(), json!("a=b")));
        assert_eq!(parse("webhooks=[{\"url\":\"u\"}]"), ("webhooks".to_owned(), json!([{"url": "u"}])));
        // Credentials stay text even when they look like JSON.
        assert_eq!(parse("key=12345"), ("key".to_owned(), json!("12345")));
        assert_eq!(parse("secret=true"), ("secret".to_owned(), json!("true")));
        assert!(matches!(parse_assignment("novalue"), Err(CliError::Usage(_))));
        assert!(matches!(parse_assignment("=1"), Err(CliError::Usage(_))));
    }

    #[test]
    fn list_masks_secrets_and_webhook_headers() {
        let rows = [AppRow {
            id: "shop".into(),
            key: "shop-key".into(),
            secret: "s3cret".into(),
            enabled: false,
            settings: json!({"webhooks": [{"url": "https://x", "headers": {"Authorization": "Bearer tok"}}]})
                .to_string(),
        }];
        let masked = table(&rows, false);
        assert!(!masked.contains("s3cret") && !masked.contains("Bearer tok"), "{masked}");
        let line = masked.lines().nth(1).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cols[..4], ["shop", "shop-key", "no", "********"]);
        let shown = table(&rows, true);
        assert!(shown.contains("s3cret") && shown.contains("Bearer tok"), "{shown}");
    }
}
