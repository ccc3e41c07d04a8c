//! `[app_store]` through the public loader (`herald::config::load_from`): the file section and
//! its `HERALD_APP_STORE_*` variables, and the rule that a SQL store is the only source of
//! apps (no `[[apps]]`, no single-app variables or flags, no built-in default app).
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

use std::time::Duration;

use herald::config::app_store::{AppStoreConfig, SqlDriver};

mod config_support;
use config_support::{load, load_err, TempFile};

const PG_STORE: &str = r#"
[app_store]
driver = "postgres"
url = "postgres://herald:pw@127.0.0.1:5432/herald"
"#;

#[test]
fn default_store_is_the_config() {
    let c = load(&[], &[]).unwrap();
    assert_eq!(c.app_store, AppStoreConfig::Config);
    assert!(c.default_app_in_use);
}

#[test]
fn sql_store_from_the_file_has_no_apps_and_no_default_app() {
    let file = TempFile::new(PG_STORE);
    let c = load(&["--config", file.path()], &[]).unwrap();
    let sql = c.app_store.sql().unwrap();
    assert_eq!(sql.driver, SqlDriver::Postgres);
    assert_eq!(sql.table, "herald_apps");
    assert_eq!(sql.cache_ttl, Duration::from_secs(30));
    assert!(c.apps.is_empty());
    assert!(!c.default_app_in_use);
}

#[test]
fn sql_store_from_the_environment_alone() {
    let c = load(
        &[],
        &[
            ("HERALD_APP_STORE_DRIVER", "mysql"),
            ("HERALD_APP_STORE_URL", "mysql://root@127.0.0.1:3306/test"),
            ("HERALD_APP_STORE_TABLE", "tenants"),
            ("HERALD_APP_STORE_CACHE_TTL", "60"),
        ],
    )
    .unwrap();
    let sql = c.app_store.sql().unwrap();
    assert_eq!((sql.driver, sql.table.as_str(), sql.cache_ttl), (SqlDriver::Mysql, "tenants", Duration::from_secs(60)));
    // The variables are known: no "unknown environment variable" warning.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn apps_tables_with_a_sql_store_are_an_error_naming_apps() {
    let file = TempFile::new(&format!("{PG_STORE}\n[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n"));
    let err = load_err(&["--config", file.path()], &[]);
    assert!(
        err.starts_with("apps: [[apps]] tables in the config file cannot be used with app_store.driver = \"postgres\""),
        "{err}"
    );
}

#[test]
fn single_app_variables_or_flags_with_a_sql_store_are_an_error_naming_apps() {
    let store = [("HERALD_APP_STORE_DRIVER", "postgres"), ("HERALD_APP_STORE_URL", "postgres://db/herald")];
    let mut vars = store.to_vec();
    vars.extend([("HERALD_APP_ID", "a"), ("HERALD_APP_KEY", "k"), ("HERALD_APP_SECRET", "s")]);
    let err = load_err(&[], &vars);
    assert!(err.starts_with("apps: HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET cannot be used"), "{err}");
    let err = load_err(&["--app-id", "a", "--app-key", "k", "--app-secret", "s"], &store);
    assert!(err.starts_with("apps: --app-id, --app-key and --app-secret cannot be used"), "{err}");
}

#[test]
fn a_bad_app_store_key_is_named() {
    let file = TempFile::new("[app_store]\ndriver = \"postgres\"\n");
    let err = load_err(&["--config", file.path()], &[]);
    assert!(err.starts_with("app_store.url: is required when driver is \"postgres\""), "{err}");
    let file = TempFile::new("[app_store]\ndriver = \"mysql\"\nurl = \"postgres://db/x\"\n");
    let err = load_err(&["--config", file.path()], &[]);
    assert!(err.starts_with("app_store.url: must start with mysql:// or mariadb://"), "{err}");
    let file = TempFile::new("[app_store]\ndriver = \"postgres\"\nurl = \"postgres://db/x\"\ntabel = \"x\"\n");
    let err = load_err(&["--config", file.path()], &[]);
    assert!(err.starts_with("app_store.tabel: unknown field"), "{err}");
    let err = load_err(&[], &[("HERALD_APP_STORE_DRIVER", "oracle")]);
    assert!(err.starts_with("app_store.driver: must be \"config\", \"postgres\" or \"mysql\""), "{err}");
}
