//! `herald apps …`: the built binary run against real PostgreSQL and MariaDB/MySQL tables
//! (configured by `HERALD_APP_STORE_*`, as an operator would), every change checked with plain
//! SQL through the database's own client; its refusals, exit codes and help.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// Runs `herald apps ARGS` with `env` and no other `HERALD_*` variable of this process.
fn herald_apps(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD_")) {
        cmd.env_remove(k);
    }
    cmd.arg("apps").args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "exit {:?}: {}{}", o.status.code(), stdout(&o), stderr(&o));
    stdout(&o)
}

/// The row's columns as plain SQL sees them: key, secret, enabled (true/false), settings.
fn stored(t: &SqlTable, id: &str) -> Option<(String, String, bool, Value)> {
    let k = t.db.q("key");
    let rows = t.rows(&format!("SELECT {k}, secret, enabled, settings FROM {{t}} WHERE id = '{id}'"));
    rows.first()
        .map(|r| (r[0].clone(), r[1].clone(), matches!(r[2].as_str(), "t" | "1"), serde_json::from_str(&r[3]).unwrap()))
}

#[test]
fn add_list_set_disable_enable_remove_round_trip() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "cli");
        let env = t.env();
        let out = ok(herald_apps(
            &env,
            &[
                "add",
                "--id",
                "shop",
                "--key",
                "shop-key",
                "--secret",
                "s3cret-value",
                "--set",
                "max_connections=100",
                "--set",
                "enable_client_messages=true",
            ],
        ));
        assert!(out.contains("added app \"shop\""), "{out}");
        let (key, secret, enabled, settings) = stored(&t, "shop").unwrap();
        assert_eq!((key.as_str(), secret.as_str(), enabled), ("shop-key", "s3cret-value", true), "{db:?}");
        assert_eq!(settings, json!({"max_connections": 100, "enable_client_messages": true}), "{db:?}");

        let list = ok(herald_apps(&env, &["list"]));
        assert!(!list.contains("s3cret-value"), "{db:?}: the secret is masked: {list}");
        let line: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(&line[..4], ["shop", "shop-key", "yes", "********"], "{db:?}: {list}");
        let shown: Value = serde_json::from_str(line[4]).unwrap();
        assert_eq!(shown, json!({"max_connections": 100, "enable_client_messages": true}));
        assert!(ok(herald_apps(&env, &["list", "--show-secrets"])).contains("s3cret-value"));

        ok(herald_apps(&env, &["set", "shop", "max_connections=200", "force_tls=true", "secret=new-secret"]));
        let (_, secret, _, settings) = stored(&t, "shop").unwrap();
        assert_eq!(secret, "new-secret");
        assert_eq!(settings, json!({"max_connections": 200, "enable_client_messages": true, "force_tls": true}));
        ok(herald_apps(&env, &["set", "shop", "force_tls=null"]));
        assert_eq!(stored(&t, "shop").unwrap().3, json!({"max_connections": 200, "enable_client_messages": true}));

        ok(herald_apps(&env, &["disable", "shop"]));
        assert!(!stored(&t, "shop").unwrap().2, "{db:?}");
        let list = ok(herald_apps(&env, &["list"]));
        assert_eq!(list.lines().nth(1).unwrap().split_whitespace().nth(2), Some("no"));
        ok(herald_apps(&env, &["enable", "shop"]));
        assert!(stored(&t, "shop").unwrap().2, "{db:?}");

        ok(herald_apps(&env, &["remove", "shop"]));
        assert_eq!(stored(&t, "shop"), None, "{db:?}");
    }
}

#[test]
fn an_invalid_value_is_refused_with_the_key_named_and_nothing_written() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "cli_invalid");
        let env = t.env();
        let o = herald_apps(&env, &["add", "--id", "shop", "--key", "k", "--secret", "s", "--set", "max_conections=5"]);
        assert_eq!(o.status.code(), Some(2), "{db:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("app \"shop\": settings.max_conections: unknown field"), "{}", stderr(&o));
        assert!(!t.exists(), "{db:?}: refused before the table was even created");

        ok(herald_apps(&env, &["add", "--id", "shop", "--key", "k", "--secret", "s"]));
        let o = herald_apps(&env, &["set", "shop", "max_connections=0"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains("app \"shop\": settings.max_connections: must be greater than 0"),
            "{}",
            stderr(&o)
        );
        let o = herald_apps(&env, &["set", "shop", "id=other"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("id: cannot be changed"), "{}", stderr(&o));
        assert_eq!(stored(&t, "shop").unwrap().3, json!({}), "{db:?}: unchanged");

        let o = herald_apps(&env, &["add", "--id", "other", "--key", "k", "--secret", "s"]);
        assert_eq!(o.status.code(), Some(2), "{db:?}: a key in use");
        assert!(stderr(&o).contains("already used"), "{}", stderr(&o));
    }
}

#[test]
fn an_unknown_id_exits_3() {
    let t = SqlTable::shared(Db::Postgres, "cli_unknown");
    ok(herald_apps(&t.env(), &["add", "--id", "a", "--key", "a", "--secret", "s"]));
    for args in [&["disable", "nope"][..], &["enable", "nope"], &["remove", "nope"], &["set", "nope", "force_tls=true"]]
    {
        let o = herald_apps(&t.env(), args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("no app with id \"nope\""), "{}", stderr(&o));
    }
}

#[test]
fn with_the_config_driver_the_commands_say_apps_come_from_the_config_file() {
    let o = herald_apps(&[], &["list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("apps come from the config file"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_database_fails_fast_with_exit_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (driver, url) in [
        ("postgres", format!("postgres://postgres@127.0.0.1:{port}/x")),
        ("mysql", format!("mysql://root@127.0.0.1:{port}/x")),
    ] {
        let env = [("HERALD_APP_STORE_DRIVER", driver.to_owned()), ("HERALD_APP_STORE_URL", url)];
        let started = Instant::now();
        let o = herald_apps(&env, &["list"]);
        assert_eq!(o.status.code(), Some(1), "{driver}: {}", stderr(&o));
        assert!(stderr(&o).contains("app store unavailable"), "{}", stderr(&o));
        assert!(started.elapsed() < Duration::from_secs(10), "{driver}: took {:?}", started.elapsed());
    }
}

#[test]
fn sql_driver_with_apps_in_the_environment_is_a_configuration_error() {
    let t = SqlTable::shared(Db::Mysql, "cli_conflict");
    let mut env = t.env();
    env.extend([("HERALD_APP_ID", "a".into()), ("HERALD_APP_KEY", "k".into()), ("HERALD_APP_SECRET", "s".into())]);
    let o = herald_apps(&env, &["list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("configuration error: apps: HERALD_APP_ID"), "{}", stderr(&o));
}

#[test]
fn help_documents_the_commands_and_exit_codes() {
    let help = ok(herald_apps(&[], &["--help"]));
    for word in ["list", "add", "set", "disable", "enable", "remove", "NAME=VALUE", "Exit status"] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let server_help = stdout(&Command::new(env!("CARGO_BIN_EXE_herald")).arg("--help").output().unwrap());
    assert!(server_help.contains("herald apps --help"), "{server_help}");
}

#[test]
fn check_config_names_the_table_without_the_password_or_a_connection() {
    // Nothing listens on this port: check-config validates, it does not connect.
    let o = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("check-config")
        .env("HERALD_APP_STORE_DRIVER", "postgres")
        .env("HERALD_APP_STORE_URL", "postgres://herald:hunter2@127.0.0.1:1/herald")
        .env("HERALD_APP_STORE_TABLE", "tenants")
        .output()
        .unwrap();
    let out = ok(o);
    assert!(
        out.contains("apps from the postgres table tenants at postgres://herald:********@127.0.0.1:1/herald"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
}
