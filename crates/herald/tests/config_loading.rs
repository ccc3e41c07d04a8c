//! Configuration loading, end to end through the public API (`herald::config::load_from`).
//!
//! Owns the behavioural tests of the config module: source precedence (defaults < file <
//! env < flags), the default app, error messages that name the offending key, and the
//! repository's `herald.example.toml`. The environment is always passed as a map, never read
//! from the process, so these tests are independent of the machine they run on.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

use std::path::Path;

use herald::config::{Config, ConfigError, LogFormat};

mod config_support;
use config_support::{load, load_err, TempFile};

const TWO_APPS: &str = r#"
port = 7000
log_level = "debug"

[[apps]]
id = "one"
key = "key-one"
secret = "secret-one"

[[apps]]
id = "two"
key = "key-two"
secret = "secret-two"
max_event_batch_size = 20
"#;

#[test]
fn defaults_without_file_use_default_app() {
    let c = load(&[], &[]).unwrap();
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.port, 6001);
    assert_eq!(c.path_prefix, "");
    assert_eq!(c.activity_timeout, 120);
    assert_eq!(c.pong_timeout, 30);
    assert_eq!(c.authorized_connection_timeout, 30);
    assert_eq!(c.max_ws_message_kb, 32);
    assert_eq!(c.max_http_body_kb, 256);
    assert_eq!(c.api_timestamp_tolerance, 600);
    assert!(!c.strict_protocol_param);
    assert_eq!(c.max_connections, None);
    assert_eq!(c.outbound_queue_messages, 1000);
    assert_eq!(c.outbound_queue_kb, 1024);
    assert_eq!(c.shutdown_grace, 10);
    assert_eq!(c.cache_ttl, 1800);
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.data_dir, Path::new("./herald-data"));
    assert!(!c.check_only);
    assert_eq!(c.config_file, None);

    assert!(c.default_app_in_use);
    assert_eq!(c.apps.len(), 1);
    let app = &c.apps[0];
    assert_eq!((app.id.as_str(), app.key.as_str(), app.secret.as_str()), ("app-id", "app-key", "app-secret"));
    assert!(app.limits.enable_client_messages);
    assert_eq!(c, Config::default());
}

#[test]
fn file_overrides_defaults() {
    let f = TempFile::new(TWO_APPS);
    let c = load(&["--config", f.path()], &[]).unwrap();
    assert_eq!(c.port, 7000);
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.host, "0.0.0.0", "keys not in the file keep their default");
    assert!(!c.default_app_in_use);
    assert_eq!(c.apps.len(), 2);
    assert_eq!(c.apps[1].id, "two");
    assert_eq!(c.apps[1].limits.max_event_batch_size, 20);
    assert_eq!(c.apps[1].limits.max_event_channels_at_once, 100);
    assert!(!c.apps[0].limits.enable_client_messages, "configured apps get the hosted default (client events off)");
    assert_eq!(c.config_file.as_deref(), Some(Path::new(f.path())));
}

#[test]
fn config_file_can_come_from_env() {
    let f = TempFile::new(TWO_APPS);
    let c = load(&[], &[("HERALD_CONFIG", f.path())]).unwrap();
    assert_eq!(c.port, 7000);
}

#[test]
fn config_flag_wins_over_config_env() {
    let f = TempFile::new("port = 7001\n");
    let c = load(&["--config", f.path()], &[("HERALD_CONFIG", "/nonexistent/herald.toml")]).unwrap();
    assert_eq!(c.port, 7001);
}

#[test]
fn env_overrides_file() {
    let f = TempFile::new(TWO_APPS);
    let c = load(
        &["--config", f.path()],
        &[
            ("HERALD_PORT", "7100"),
            ("HERALD_LOG_FORMAT", "json"),
            ("HERALD_STRICT_PROTOCOL_PARAM", "true"),
            ("HERALD_MAX_CONNECTIONS", "500"),
            ("HERALD_OUTBOUND_QUEUE_KB", "64"),
        ],
    )
    .unwrap();
    assert_eq!(c.port, 7100);
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(c.strict_protocol_param);
    assert_eq!(c.max_connections, Some(500));
    assert_eq!(c.outbound_queue_kb, 64);
    assert_eq!(c.log_level, "debug", "file value kept where env is silent");
    assert_eq!(c.apps.len(), 2, "env without app credentials keeps the file's apps");
}

#[test]
fn env_app_credentials_replace_file_apps() {
    let f = TempFile::new(TWO_APPS);
    let c = load(
        &["--config", f.path()],
        &[("HERALD_APP_ID", "env-app"), ("HERALD_APP_KEY", "env-key"), ("HERALD_APP_SECRET", "env-secret")],
    )
    .unwrap();
    assert_eq!(c.apps.len(), 1);
    assert_eq!(c.apps[0].key, "env-key");
    assert_eq!(c.apps[0].limits, herald_core::app::AppLimits::default());
    assert!(!c.default_app_in_use);
}

#[test]
fn flag_overrides_env() {
    let c = load(
        &[
            "--port",
            "7200",
            "--host",
            "127.0.0.1",
            "--log-level",
            "warn",
            "--log-format",
            "human",
            "--max-connections",
            "unlimited",
            "--activity-timeout",
            "60",
            "--data-dir",
            "/var/lib/herald",
            "--path-prefix",
            "/pusher",
            "--app-id",
            "flag-app",
            "--app-key",
            "flag-key",
            "--app-secret",
            "flag-secret",
        ],
        &[
            ("HERALD_PORT", "7100"),
            ("HERALD_HOST", "10.0.0.1"),
            ("HERALD_LOG_LEVEL", "debug"),
            ("HERALD_LOG_FORMAT", "json"),
            ("HERALD_MAX_CONNECTIONS", "500"),
            ("HERALD_ACTIVITY_TIMEOUT", "90"),
            ("HERALD_APP_ID", "env-app"),
            ("HERALD_APP_KEY", "env-key"),
            ("HERALD_APP_SECRET", "env-secret"),
        ],
    )
    .unwrap();
    assert_eq!(c.port, 7200);
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.max_connections, None);
    assert_eq!(c.activity_timeout, 60);
    assert_eq!(c.data_dir, Path::new("/var/lib/herald"));
    assert_eq!(c.path_prefix, "/pusher");
    assert_eq!(c.apps.len(), 1);
    assert_eq!(c.apps[0].id, "flag-app");
}

#[test]
fn payload_above_transport_limit_warns() {
    let f = TempFile::new(&format!("max_ws_message_kb = 8\n{ONE_APP}enable_client_messages = true\n"));
    let c = load(&["--config", f.path()], &[]).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("apps[0].max_event_payload_in_kb"));
}

#[test]
fn port_zero_is_allowed() {
    assert_eq!(load(&["--port", "0"], &[]).unwrap().port, 0);
}

#[test]
fn unknown_key_error_names_key() {
    let f = TempFile::new("port = 6001\nprot = 1\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.contains("prot"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains(f.path()), "{err}");
}

#[test]
fn unknown_app_key_error_names_app_and_key() {
    let f = TempFile::new(&format!("{TWO_APPS}enable_client_events = true\n"));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].enable_client_events:"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn unknown_adapter_key_is_rejected_naming_it() {
    let f = TempFile::new("[adapter]\ndriver = \"redis\"\nurll = \"redis://x\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.contains("urll"), "{err}");
}

#[test]
fn alerts_tables_load_and_every_bad_value_names_its_key() {
    let ok = "[[alerts]]\nurl = \"https://hooks.example/x\"\nformat = \"slack\"\n\
              [[alerts]]\nurl = \"http://ops.example/a\"\nformat = \"json\"\nevents = [\"node_lost\"]\n";
    let f = TempFile::new(ok);
    let cfg = load(&["--config", f.path()], &[]).unwrap();
    assert_eq!(cfg.alerts.len(), 2);
    assert_eq!(cfg.alerts[1].format, herald::alerts::AlertFormat::Json);
    assert!(cfg.alerts[1].events.contains(herald::alerts::AlertKind::NodeLost));
    assert!(!cfg.alerts[1].events.contains(herald::alerts::AlertKind::RedisDown));
    for (text, key) in [
        ("url = \"ftp://x/\"\nformat = \"json\"", "alerts[1].url:"),
        ("format = \"json\"", "alerts[1].url: is required"),
        ("url = \"http://x/\"\nformat = \"teams\"", "alerts[1].format:"),
        ("url = \"http://x/\"\nformat = \"json\"\nevents = [\"redis_down\", \"oops\"]", "alerts[1].events[1]:"),
        ("url = \"http://x/\"\nformat = \"json\"\nchannel = \"#ops\"", "alerts[1].channel:"),
    ] {
        let f = TempFile::new(&format!("[[alerts]]\nurl = \"http://x/\"\nformat = \"json\"\n[[alerts]]\n{text}\n"));
        let err = load_err(&["--config", f.path()], &[]);
        assert!(err.starts_with(key), "{key}: {err}");
    }
}

#[test]
fn bad_adapter_driver_names_key() {
    let f = TempFile::new("[adapter]\ndriver = \"etcd\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.contains("adapter.driver"), "{err}");
    let f = TempFile::new("[adapter]\ndriver = \"redis\"\nurl = \"http://x\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.contains("adapter.url"), "{err}");
}

#[test]
fn redis_adapter_from_file_and_env_overrides_url() {
    use herald::config::adapter::AdapterConfig;
    let f = TempFile::new("[adapter]\ndriver = \"redis\"\nurl = \"redis://127.0.0.1:1\"\nprefix = \"p1\"\n");
    let env: std::collections::HashMap<String, String> =
        [("HERALD_REDIS_URL".to_string(), "redis://127.0.0.1:2".to_string())].into_iter().collect();
    let cfg = herald::config::load_from(["herald", "--config", f.path()], &env).unwrap();
    match cfg.adapter {
        AdapterConfig::Redis(c) => {
            assert_eq!(c.url, "redis://127.0.0.1:2");
            assert_eq!(c.prefix, "p1");
        }
        other => panic!("expected redis, got {other:?}"),
    }
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let plain = herald::config::load_from(["herald"], &Default::default()).unwrap();
    assert_eq!(plain.adapter, AdapterConfig::Local);
}

#[test]
fn wrong_type_in_file_names_key() {
    let f = TempFile::new("[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\nmax_event_batch_size = \"ten\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[0].max_event_batch_size:"), "{err}");
}

#[test]
fn invalid_toml_reports_location() {
    let f = TempFile::new("port = \n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.contains("line 1"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn duplicate_app_key_rejected() {
    let f = TempFile::new(&TWO_APPS.replace("key-two", "key-one"));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].key: duplicate app key \"key-one\""), "{err}");
}

#[test]
fn duplicate_app_id_rejected() {
    let f = TempFile::new(&TWO_APPS.replace("id = \"two\"", "id = \"one\""));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].id: duplicate app id"), "{err}");
}

#[test]
fn empty_secret_rejected() {
    let f = TempFile::new(&TWO_APPS.replace("secret-two", ""));
    let err = load_err(&["--config", f.path()], &[]);
    assert_eq!(err, "apps[1].secret: must not be empty");
}

#[test]
fn missing_secret_rejected() {
    let f = TempFile::new("[[apps]]\nid = \"a\"\nkey = \"k\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert_eq!(err, "apps[0].secret: is required");
}

#[test]
fn bad_app_id_and_key_characters_rejected() {
    let f = TempFile::new(&TWO_APPS.replace("id = \"two\"", "id = \"two apps\""));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].id: invalid value"), "{err}");

    let f = TempFile::new(&TWO_APPS.replace("key-two", "key:two"));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].key: invalid value"), "{err}");
}

const ONE_APP: &str = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n";

#[test]
fn zero_limits_rejected() {
    for key in [
        "max_event_payload_in_kb",
        "max_event_batch_size",
        "max_event_channels_at_once",
        "max_channel_name_length",
        "max_event_name_length",
        "max_presence_members_per_channel",
        "max_presence_member_size_in_kb",
        "max_user_id_length",
        "max_client_events_per_second",
        "max_watchlist_size",
        "max_subscriptions_per_connection",
        "max_connections",
    ] {
        let f = TempFile::new(&format!("{ONE_APP}{key} = 0\n"));
        let err = load_err(&["--config", f.path()], &[]);
        assert!(err.starts_with(&format!("apps[0].{key}: must be greater than 0")), "{err}");
    }
    for key in [
        "activity_timeout",
        "pong_timeout",
        "authorized_connection_timeout",
        "max_ws_message_kb",
        "max_http_body_kb",
        "outbound_queue_messages",
        "outbound_queue_kb",
        "cache_ttl",
    ] {
        let f = TempFile::new(&format!("{key} = 0\n"));
        let err = load_err(&["--config", f.path()], &[]);
        assert_eq!(err, format!("{key}: must be greater than 0"));
    }
}

#[test]
fn zero_from_env_names_variable() {
    let err = load_err(&[], &[("HERALD_PONG_TIMEOUT", "0")]);
    assert_eq!(err, "pong_timeout: must be greater than 0 (from HERALD_PONG_TIMEOUT)");
}

#[test]
fn channel_name_length_over_1000_rejected() {
    let f = TempFile::new(&format!("{TWO_APPS}max_channel_name_length = 1001\n"));
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("apps[1].max_channel_name_length:"), "{err}");
}

#[test]
fn bad_env_value_names_variable() {
    let err = load_err(&[], &[("HERALD_PORT", "abc")]);
    assert!(err.starts_with("port: invalid value \"abc\" from HERALD_PORT"), "{err}");
    let err = load_err(&[], &[("HERALD_STRICT_PROTOCOL_PARAM", "maybe")]);
    assert!(err.contains("HERALD_STRICT_PROTOCOL_PARAM"), "{err}");
    let err = load_err(&[], &[("HERALD_LOG_FORMAT", "xml")]);
    assert!(err.starts_with("log_format: invalid value \"xml\" from HERALD_LOG_FORMAT"), "{err}");
}

#[test]
fn invalid_log_level_rejected() {
    let err = load_err(&[], &[("HERALD_LOG_LEVEL", "herald=loud")]);
    assert!(err.starts_with("log_level: invalid filter"), "{err}");
    assert!(err.contains("HERALD_LOG_LEVEL"), "{err}");
}

#[test]
fn unknown_log_format_in_file_rejected() {
    let f = TempFile::new("log_format = \"xml\"\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert!(err.starts_with("log_format: unknown variant"), "{err}");
}

#[test]
fn bad_path_prefix_rejected() {
    for bad in ["pusher", "/pusher/", "/"] {
        let err = load_err(&["--path-prefix", bad], &[]);
        assert!(err.starts_with("path_prefix: invalid value"), "{err}");
        assert!(err.contains("--path-prefix"), "{err}");
    }
}

#[test]
fn example_config_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../herald.example.toml");
    let c = load(&["--config", example.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c.apps.len(), 2);
    assert!(!c.default_app_in_use);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The example documents the defaults, so apart from the apps it equals them.
    let d = Config::default();
    assert_eq!(
        (c.host.as_str(), c.port, c.path_prefix.as_str(), c.log_level.as_str()),
        (d.host.as_str(), d.port, d.path_prefix.as_str(), d.log_level.as_str())
    );
    assert_eq!(c.apps[0].limits, herald_core::app::AppLimits::default());
    assert!(c.apps[1].limits.enable_client_messages);
}

#[test]
fn missing_config_file_names_path() {
    let path = std::env::temp_dir().join("herald-config-test-does-not-exist.toml");
    let err = load_err(&["--config", path.to_str().unwrap()], &[]);
    assert!(err.contains(path.to_str().unwrap()), "{err}");

    let err = load_err(&[], &[("HERALD_CONFIG", path.to_str().unwrap())]);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn partial_app_credentials_in_env_rejected() {
    let err = load_err(&[], &[("HERALD_APP_ID", "a"), ("HERALD_APP_KEY", "k")]);
    assert!(err.starts_with("HERALD_APP_SECRET: missing"), "{err}");
}

#[test]
fn partial_app_credentials_in_flags_rejected() {
    let err = load_err(&["--app-key", "k"], &[]);
    assert!(err.starts_with("--app-id: missing"), "{err}");
}

#[test]
fn empty_env_credential_names_variable() {
    let err = load_err(&[], &[("HERALD_APP_ID", "a"), ("HERALD_APP_KEY", "k"), ("HERALD_APP_SECRET", "")]);
    assert_eq!(err, "HERALD_APP_SECRET: must not be empty");
}

#[test]
fn unknown_herald_env_var_is_a_warning() {
    let c = load(&[], &[("HERALD_PROT", "1"), ("PATH", "/bin")]).unwrap();
    assert_eq!(c.warnings, vec!["ignoring unknown environment variable HERALD_PROT".to_string()]);
}

#[test]
fn help_and_version_are_cli_errors_for_main() {
    for flag in ["--help", "--version"] {
        match load(&[flag], &[]) {
            Err(ConfigError::Cli(e)) => assert_eq!(e.exit_code(), 0, "{flag}"),
            other => panic!("{flag}: expected ConfigError::Cli, got {other:?}"),
        }
    }
    match load(&["--port", "abc"], &[]) {
        Err(ConfigError::Cli(e)) => assert_ne!(e.exit_code(), 0),
        other => panic!("expected ConfigError::Cli, got {other:?}"),
    }
}

#[test]
fn check_config_subcommand_sets_check_only() {
    let f = TempFile::new(TWO_APPS);
    let c = load(&["check-config", "--config", f.path()], &[]).unwrap();
    assert!(c.check_only);
    assert_eq!(c.port, 7000);
}

// ---- webhooks ----

const WEBHOOK_APP: &str = r#"
[[apps]]
id = "one"
key = "key-one"
secret = "secret-one"
batch_webhooks = true

[[apps.webhooks]]
url = "http://127.0.0.1:9000/pusher/webhooks"
event_types = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"]
filter = { channel_name_starts_with = "presence-" }
headers = { "X-Extra" = "1" }

[[apps.webhooks]]
url = "https://hooks.example.com/all"
event_types = ["cache_miss", "subscription_count"]
"#;

#[test]
fn webhook_targets_and_settings_load() {
    use herald::webhooks::config::ChannelFilter;
    let file = TempFile::new(&format!("webhook_timeout = 5\nwebhook_removal_delay_ms = 1000\n{WEBHOOK_APP}"));
    let c = load(&["--config", file.path()], &[("HERALD_WEBHOOK_BATCH_MAX", "7")]).unwrap();
    assert_eq!((c.webhook_timeout, c.webhook_removal_delay_ms, c.webhook_batch_max), (5, 1000, 7));
    let d = Config::default();
    assert_eq!(
        (d.webhook_removal_delay_ms, d.webhook_batch_ms, d.webhook_batch_max, d.webhook_retry_initial_ms),
        (3000, 50, 100, 1000)
    );
    assert_eq!((d.webhook_retry_max_elapsed, d.webhook_timeout, d.webhook_queue_size), (300, 10, 100_000));
    assert!(d.webhooks.is_empty());
    let hooks = &c.webhooks["one"];
    assert!(hooks.batch);
    assert_eq!(hooks.targets.len(), 2);
    let t = &hooks.targets[0];
    assert_eq!(t.url, "http://127.0.0.1:9000/pusher/webhooks");
    assert_eq!(
        t.event_types.names().collect::<Vec<_>>(),
        ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"]
    );
    assert_eq!(t.filter, ChannelFilter { starts_with: Some("presence-".into()), ends_with: None });
    assert_eq!(t.headers, [("X-Extra".to_string(), "1".to_string())]);
    assert_eq!(hooks.targets[1].event_types.names().collect::<Vec<_>>(), ["cache_miss", "subscription_count"]);
}

#[test]
fn bad_webhook_config_names_key() {
    let base = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\n";
    let cases: &[(&str, &str)] = &[
        ("event_types = [\"channel_occupied\"]\n", "apps[0].webhooks[0].url: is required"),
        ("url = \"ftp://x/y\"\nevent_types = [\"channel_occupied\"]\n", "apps[0].webhooks[0].url: invalid value"),
        ("url = \"not a url\"\nevent_types = [\"channel_occupied\"]\n", "apps[0].webhooks[0].url: invalid URL"),
        ("url = \"http://x/\"\n", "apps[0].webhooks[0].event_types: is required"),
        ("url = \"http://x/\"\nevent_types = []\n", "apps[0].webhooks[0].event_types: must not be empty"),
        (
            "url = \"http://x/\"\nevent_types = [\"channel_occupied\", \"joined\"]\n",
            "apps[0].webhooks[0].event_types[1]: unknown webhook event type \"joined\"",
        ),
        (
            "url = \"http://x/\"\nevent_types = [\"client_event\"]\nheaders = { \"X-Pusher-Key\" = \"z\" }\n",
            "apps[0].webhooks[0].headers.\"X-Pusher-Key\": is set by herald",
        ),
        (
            "url = \"http://x/\"\nevent_types = [\"client_event\"]\nfilter = { channel_name_starts_with = \"\" }\n",
            "apps[0].webhooks[0].filter.channel_name_starts_with: must not be empty",
        ),
        (
            "url = \"http://x/\"\nevent_types = [\"client_event\"]\nbogus = 1\n",
            "apps[0].webhooks[0].bogus: unknown field",
        ),
    ];
    for (webhook, expected) in cases {
        let file = TempFile::new(&format!("{base}{webhook}"));
        let err = load_err(&["--config", file.path()], &[]);
        assert!(err.starts_with(expected), "for {webhook:?}: {err}");
    }
    let err = load_err(&[], &[("HERALD_WEBHOOK_TIMEOUT", "0")]);
    assert!(err.starts_with("webhook_timeout: must be greater than 0 (from HERALD_WEBHOOK_TIMEOUT)"), "{err}");
    let err = load_err(&[], &[("HERALD_WEBHOOK_BATCH_MS", "soon")]);
    assert!(err.starts_with("webhook_batch_ms: invalid value \"soon\" from HERALD_WEBHOOK_BATCH_MS"), "{err}");
    let file = TempFile::new("webhook_retry_initial_ms = 120000\n");
    let err = load_err(&["--config", file.path()], &[]);
    assert!(err.starts_with("webhook_retry_initial_ms: must be at most 60000"), "{err}");
}

#[test]
fn listen_backlog_defaults_to_4096_and_is_bounded() {
    assert_eq!(load(&[], &[]).expect("defaults").listen_backlog, 4096);
    let f = TempFile::new("listen_backlog = 16384\n");
    assert_eq!(load(&["--config", f.path()], &[]).expect("file").listen_backlog, 16384);
    assert_eq!(load(&[], &[("HERALD_LISTEN_BACKLOG", "512")]).expect("env").listen_backlog, 512);
    let too_big = TempFile::new("listen_backlog = 70000\n");
    let e = load_err(&["--config", too_big.path()], &[]);
    assert!(e.contains("listen_backlog") && e.contains("65535"), "{e}");
    let zero = load_err(&[], &[("HERALD_LISTEN_BACKLOG", "0")]);
    assert!(zero.contains("listen_backlog"), "{zero}");
    let junk = load_err(&[], &[("HERALD_LISTEN_BACKLOG", "lots")]);
    assert!(junk.contains("HERALD_LISTEN_BACKLOG"), "{junk}");
}

#[test]
fn trusted_proxies_take_addresses_and_cidr_ranges_from_file_or_env() {
    assert!(load(&[], &[]).unwrap().trusted_proxies.is_empty(), "none trusted by default");
    let f = TempFile::new("trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n");
    let c = load(&["--config", f.path()], &[]).unwrap();
    let shown: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);
    let c = load(&[], &[("HERALD_TRUSTED_PROXIES", "127.0.0.1, 10.1.2.0/24")]).unwrap();
    assert_eq!(c.trusted_proxies.len(), 2);
    let err = load_err(&[], &[("HERALD_TRUSTED_PROXIES", "127.0.0.1,proxy.local")]);
    assert_eq!(
        err,
        "trusted_proxies: invalid entry \"proxy.local\" (from HERALD_TRUSTED_PROXIES): expected an IP address or a \
         CIDR range (10.0.0.0/8)"
    );
}
