//! The `[app_store]` section: where apps come from.
//!
//! ```toml
//! [app_store]
//! driver = "postgres"                         # "config" (default: the [[apps]] tables), "postgres" or "mysql"
//! url = "postgres://herald@db.internal/herald" # also HERALD_APP_STORE_URL; required with a SQL driver
//! table = "herald_apps"                       # or "schema.table"; default herald_apps
//! cache_ttl = 30                              # seconds a looked-up app is trusted; 1..=86400
//! ```
//! Env: `HERALD_APP_STORE_DRIVER`, `HERALD_APP_STORE_URL`, `HERALD_APP_STORE_TABLE`,
//! `HERALD_APP_STORE_CACHE_TTL` (env overrides the file, like every other key).
//!
//! Owns [`AppStoreConfig`] and its validation. With a SQL driver the database is the one source
//! of truth: `[[apps]]`, `HERALD_APP_ID`/`_KEY`/`_SECRET` and `--app-id`/… are then an error
//! (checked in `validate.rs`, which knows which source set them), and the built-in default app
//! is not used. The URL is checked here as far as it can be without connecting (scheme matches
//! the driver, the driver's own option parser accepts it), so `herald check-config` catches a
//! bad one; it may hold a password, so it is never printed: [`SqlStoreConfig`]'s `Debug` and
//! every message here show it with the password replaced.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Environment variables of this section.
pub const APP_STORE_VARS: [&str; 4] =
    ["HERALD_APP_STORE_DRIVER", "HERALD_APP_STORE_URL", "HERALD_APP_STORE_TABLE", "HERALD_APP_STORE_CACHE_TTL"];

/// The default table name.
pub const DEFAULT_TABLE: &str = "herald_apps";
/// The default `cache_ttl`, seconds.
pub const DEFAULT_CACHE_TTL: u64 = 30;
/// The largest `cache_ttl`, seconds (one day).
pub const MAX_CACHE_TTL: u64 = 86_400;

/// `[app_store]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAppStore {
    pub driver: Option<String>,
    pub url: Option<String>,
    pub table: Option<String>,
    pub cache_ttl: Option<u64>,
}

/// The resolved choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AppStoreConfig {
    /// Apps come from the configuration (`[[apps]]`, the single-app env variables or flags, or
    /// the built-in default app).
    #[default]
    Config,
    /// Apps come from a SQL table.
    Sql(SqlStoreConfig),
}

impl AppStoreConfig {
    /// The SQL store's settings, if apps come from one.
    pub fn sql(&self) -> Option<&SqlStoreConfig> {
        match self {
            AppStoreConfig::Config => None,
            AppStoreConfig::Sql(s) => Some(s),
        }
    }
}

/// Which SQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDriver {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://` or `mariadb://`).
    Mysql,
}

impl SqlDriver {
    /// The `driver` value naming it.
    pub fn name(self) -> &'static str {
        match self {
            SqlDriver::Postgres => "postgres",
            SqlDriver::Mysql => "mysql",
        }
    }

    /// The URL schemes it accepts.
    fn schemes(self) -> [&'static str; 2] {
        match self {
            SqlDriver::Postgres => ["postgres", "postgresql"],
            SqlDriver::Mysql => ["mysql", "mariadb"],
        }
    }
}

/// A SQL app store: the database, the table, how long lookups are cached.
#[derive(Clone, PartialEq)]
pub struct SqlStoreConfig {
    /// The database kind; matches the URL's scheme.
    pub driver: SqlDriver,
    /// The connection URL (may hold a password: print [`SqlStoreConfig::redacted_url`]).
    pub url: String,
    /// The table, `name` or `schema.name`, each part `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    pub table: String,
    /// How long a looked-up app is used before it is read again.
    pub cache_ttl: Duration,
}

impl SqlStoreConfig {
    /// The URL with its password (if any) replaced by `********`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl std::fmt::Debug for SqlStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStoreConfig")
            .field("driver", &self.driver)
            .field("url", &self.redacted_url())
            .field("table", &self.table)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// `url` with its password replaced by `********` (unparsable URLs are shown as `<invalid URL>`,
/// since where the password is cannot be told).
pub(crate) fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("********"));
            }
            u.to_string()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// Resolves the section from the file's table and the environment (env wins per key).
pub(super) fn resolve(
    file: Option<&FileAppStore>,
    env: &HashMap<String, String>,
) -> Result<AppStoreConfig, ConfigError> {
    let file = file.cloned().unwrap_or_default();
    let env_of = |var: &str| env.get(var).cloned();
    let driver = env_of("HERALD_APP_STORE_DRIVER").or(file.driver);
    let url = env_of("HERALD_APP_STORE_URL").or(file.url);
    let table = env_of("HERALD_APP_STORE_TABLE").or(file.table);
    let cache_ttl = match env_of("HERALD_APP_STORE_CACHE_TTL") {
        Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| ConfigError::InvalidValue {
            key: "app_store.cache_ttl".to_owned(),
            source_name: "HERALD_APP_STORE_CACHE_TTL".to_owned(),
            value: raw.clone(),
            reason: "expected a whole number of seconds".to_owned(),
        })?),
        None => file.cache_ttl,
    };

    let driver = match driver.as_deref().map(str::trim) {
        None | Some("config") => {
            // The other keys mean nothing without a SQL driver: a forgotten `driver` line.
            for (key, set) in [("url", url.is_some()), ("table", table.is_some()), ("cache_ttl", cache_ttl.is_some())] {
                if set {
                    return Err(ConfigError::invalid(
                        format!("app_store.{key}"),
                        "is only used with driver \"postgres\" or \"mysql\" (app_store.driver is \"config\")",
                    ));
                }
            }
            return Ok(AppStoreConfig::Config);
        }
        Some("postgres") => SqlDriver::Postgres,
        Some("mysql") => SqlDriver::Mysql,
        Some(other) => {
            return Err(ConfigError::invalid(
                "app_store.driver",
                format!("must be \"config\", \"postgres\" or \"mysql\", got {other:?}"),
            ))
        }
    };

    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Err(ConfigError::invalid(
            "app_store.url",
            format!("is required when driver is {:?} (or set HERALD_APP_STORE_URL)", driver.name()),
        ));
    };
    let url = url.trim().to_owned();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !scheme.as_deref().is_some_and(|s| driver.schemes().contains(&s)) {
        let [a, b] = driver.schemes();
        return Err(ConfigError::invalid(
            "app_store.url",
            format!(
                "must start with {a}:// or {b}:// when driver is {:?}, got {}",
                driver.name(),
                match &scheme {
                    Some(s) => format!("{s}://…"),
                    None => "no scheme".to_owned(),
                }
            ),
        ));
    }
    if let Err(reason) = crate::apps::sql::check_url(driver, &url) {
        return Err(ConfigError::invalid("app_store.url", format!("invalid URL {}: {reason}", redact(&url))));
    }

    let table = table.unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    if let Some(reason) = table_problem(&table) {
        return Err(ConfigError::invalid("app_store.table", format!("invalid value {table:?}: {reason}")));
    }

    let cache_ttl = cache_ttl.unwrap_or(DEFAULT_CACHE_TTL);
    if !(1..=MAX_CACHE_TTL).contains(&cache_ttl) {
        return Err(ConfigError::invalid(
            "app_store.cache_ttl",
            format!("must be 1..={MAX_CACHE_TTL} seconds, got {cache_ttl}"),
        ));
    }
    Ok(AppStoreConfig::Sql(SqlStoreConfig { driver, url, table, cache_ttl: Duration::from_secs(cache_ttl) }))
}

/// Why `table` is not a plain (optionally schema-qualified) SQL identifier, if it is not.
/// Identifiers are quoted when used, so a reserved word is fine; the check keeps every other
/// character out of the SQL text.
fn table_problem(table: &str) -> Option<&'static str> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 {
        return Some("expected `table` or `schema.table`");
    }
    let plain = |p: &str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    if parts.iter().all(|p| plain(p)) {
        None
    } else {
        Some("each part must be a letter or '_' followed by at most 62 letters, digits or '_'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(driver: &str, url: &str) -> FileAppStore {
        FileAppStore { driver: Some(driver.into()), url: Some(url.into()), ..FileAppStore::default() }
    }

    #[test]
    fn defaults_to_config() {
        assert_eq!(resolve(None, &HashMap::new()).unwrap(), AppStoreConfig::Config);
    }

    #[test]
    fn postgres_with_defaults() {
        let c =
            resolve(Some(&file("postgres", "postgresql://u:pw@db/herald?sslmode=require")), &HashMap::new()).unwrap();
        let sql = c.sql().unwrap();
        assert_eq!(sql.driver, SqlDriver::Postgres);
        assert_eq!(sql.table, "herald_apps");
        assert_eq!(sql.cache_ttl, Duration::from_secs(30));
        let debug = format!("{c:?}");
        assert!(!debug.contains("pw"), "{debug}");
        assert!(debug.contains("********"), "{debug}");
    }

    #[test]
    fn env_overrides_every_key() {
        let e = env(&[
            ("HERALD_APP_STORE_DRIVER", "mysql"),
            ("HERALD_APP_STORE_URL", "mariadb://root@127.0.0.1/test"),
            ("HERALD_APP_STORE_TABLE", "herald.apps"),
            ("HERALD_APP_STORE_CACHE_TTL", "5"),
        ]);
        let c = resolve(Some(&file("postgres", "postgres://x/y")), &e).unwrap();
        let sql = c.sql().unwrap();
        assert_eq!(sql.driver, SqlDriver::Mysql);
        assert_eq!(sql.url, "mariadb://root@127.0.0.1/test");
        assert_eq!(sql.table, "herald.apps");
        assert_eq!(sql.cache_ttl, Duration::from_secs(5));
    }

    #[test]
    fn url_is_required_with_a_sql_driver() {
        let f = FileAppStore { driver: Some("postgres".into()), ..FileAppStore::default() };
        let err = resolve(Some(&f), &HashMap::new()).unwrap_err().to_string();
        assert!(err.starts_with("app_store.url: is required when driver is \"postgres\""), "{err}");
    }

    #[test]
    fn scheme_must_match_the_driver_and_the_password_is_not_shown() {
        let err = resolve(Some(&file("postgres", "mysql://root:hunter2@db/x")), &HashMap::new()).unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with("app_store.url: must start with postgres:// or postgresql://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = resolve(Some(&file("mysql", "postgres://db/x")), &HashMap::new()).unwrap_err().to_string();
        assert!(err.starts_with("app_store.url: must start with mysql:// or mariadb://"), "{err}");
    }

    #[test]
    fn driver_options_are_checked_without_connecting() {
        let err = resolve(Some(&file("postgres", "postgres://u:hunter2@db/x?sslmode=sometimes")), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("app_store.url: invalid URL postgres://u:********@db/x"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn unknown_driver_is_named() {
        let err = resolve(Some(&file("sqlite", "sqlite://x")), &HashMap::new()).unwrap_err().to_string();
        assert_eq!(err, "app_store.driver: must be \"config\", \"postgres\" or \"mysql\", got \"sqlite\"");
    }

    #[test]
    fn table_must_be_a_plain_identifier() {
        for bad in ["", "1apps", "apps;drop", "a.b.c", "my-apps", "\"apps\"", &"a".repeat(64)] {
            let f = FileAppStore { table: Some(bad.to_owned()), ..file("postgres", "postgres://db/x") };
            let err = resolve(Some(&f), &HashMap::new()).unwrap_err().to_string();
            assert!(err.starts_with("app_store.table: invalid value"), "{bad:?}: {err}");
        }
        for good in ["apps", "_a1", "public.herald_apps", &"a".repeat(63)] {
            let f = FileAppStore { table: Some(good.to_owned()), ..file("postgres", "postgres://db/x") };
            assert!(resolve(Some(&f), &HashMap::new()).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn cache_ttl_is_bounded() {
        for (ttl, ok) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
            let f = FileAppStore { cache_ttl: Some(ttl), ..file("mysql", "mysql://db/x") };
            let r = resolve(Some(&f), &HashMap::new());
            assert_eq!(r.is_ok(), ok, "{ttl}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().starts_with("app_store.cache_ttl: must be 1..=86400"), "{e}");
            }
        }
        let err = resolve(
            None,
            &env(&[
                ("HERALD_APP_STORE_DRIVER", "mysql"),
                ("HERALD_APP_STORE_URL", "mysql://d/x"),
                ("HERALD_APP_STORE_CACHE_TTL", "soon"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("HERALD_APP_STORE_CACHE_TTL"), "{err}");
    }

    #[test]
    fn sql_keys_without_a_sql_driver_are_an_error() {
        let err = resolve(None, &env(&[("HERALD_APP_STORE_URL", "postgres://db/x")])).unwrap_err().to_string();
        assert!(err.starts_with("app_store.url: is only used with driver"), "{err}");
    }
}
