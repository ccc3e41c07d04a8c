//! Upper bounds of the configuration: every duration and size key refuses a value above its
//! bound at start-up with a message naming the key (from a file or the environment), and a
//! value at the bound loads (so no arithmetic on it can overflow later: a huge
//! `activity_timeout` or `cache_ttl` once panicked on every connection or cache publish).
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod config_support;
use config_support::{load, load_err, TempFile};

/// Node-wide keys, their bound, and their environment variable.
const NODE_BOUNDS: [(&str, u64); 30] = [
    ("activity_timeout", 3_600),
    ("pong_timeout", 3_600),
    ("authorized_connection_timeout", 3_600),
    ("max_ws_message_kb", 65_536),
    ("max_http_body_kb", 65_536),
    ("api_timestamp_tolerance", 86_400),
    ("outbound_queue_messages", 1_000_000),
    ("outbound_queue_kb", 1_048_576),
    ("shutdown_grace", 3_600),
    ("shutdown_drain_window_ms", 3_600_000),
    ("cache_ttl", 2_592_000),
    ("subscription_count_threshold", 10_000_000),
    ("subscription_count_throttle", 3_600),
    ("webhook_removal_delay_ms", 600_000),
    ("webhook_batch_ms", 60_000),
    ("webhook_batch_max", 10_000),
    ("webhook_retry_max_elapsed", 604_800),
    ("webhook_timeout", 300),
    ("webhook_queue_size", 10_000_000),
    ("webhook_max_pending", 10_000_000),
    ("webhook_dead_letters_max", 1_000_000),
    ("webhook_dead_letter_max_age", 31_536_000),
    ("webhook_cache_miss_dedup_max", 1_000_000),
    ("http_header_read_timeout", 300),
    ("http_keep_alive_timeout", 300),
    ("http_body_read_timeout", 3_600),
    ("max_pending_connections", 1_000_000),
    ("ws_connect_rate_per_ip", 1_000_000),
    ("ws_connect_burst_per_ip", 1_000_000),
    ("fd_reserve", 65_536),
];

/// Per-app overrides of node-wide webhook caps: the same bounds.
const APP_WEBHOOK_BOUNDS: [(&str, u64); 3] = [
    ("webhook_max_pending", 10_000_000),
    ("webhook_dead_letters_max", 1_000_000),
    ("webhook_dead_letter_max_age", 31_536_000),
];

const APP_BOUNDS: [(&str, u64); 10] = [
    ("max_presence_members_per_channel", 1_000_000),
    ("max_presence_member_size_in_kb", 1_024),
    ("max_event_payload_in_kb", 65_536),
    ("max_event_channels_at_once", 10_000),
    ("max_event_batch_size", 10_000),
    ("max_event_name_length", 1_000),
    ("max_user_id_length", 1_000),
    ("max_client_events_per_second", 1_000_000),
    ("max_watchlist_size", 10_000),
    ("max_subscriptions_per_connection", 100_000),
];

const ONE_APP: &str = "[[apps]]\nid = \"one\"\nkey = \"key-one\"\nsecret = \"secret-one\"\n";

fn env_var(key: &str) -> String {
    format!("HERALD_{}", key.to_uppercase())
}

#[test]
fn node_key_above_its_bound_is_refused_naming_the_key() {
    for (key, max) in NODE_BOUNDS {
        let f = TempFile::new(&format!("{key} = {}\n", max + 1));
        let err = load_err(&["--config", f.path()], &[]);
        assert_eq!(err, format!("{key}: must be at most {max}, got {}", max + 1));
    }
}

#[test]
fn node_key_above_its_bound_from_the_environment_names_the_variable() {
    for (key, max) in NODE_BOUNDS {
        let var = env_var(key);
        let err = load_err(&[], &[(var.as_str(), &(max + 1).to_string())]);
        assert_eq!(err, format!("{key}: must be at most {max}, got {} (from {var})", max + 1));
    }
}

#[test]
fn largest_u64_timeouts_are_refused_at_start_up() {
    for key in ["activity_timeout", "cache_ttl", "shutdown_grace"] {
        let var = env_var(key);
        let err = load_err(&[], &[(var.as_str(), "18446744073709551615")]);
        assert!(err.starts_with(&format!("{key}: must be at most ")), "{err}");
    }
}

#[test]
fn node_keys_at_their_bound_load() {
    let mut file = String::new();
    for (key, max) in NODE_BOUNDS {
        // The drain window must also be shorter than shutdown_grace (at most 3,600 s).
        let v = if key == "shutdown_drain_window_ms" { max - 1 } else { max };
        file.push_str(&format!("{key} = {v}\n"));
    }
    let f = TempFile::new(&file);
    let c = load(&["--config", f.path()], &[]).unwrap();
    assert_eq!((c.activity_timeout, c.cache_ttl, c.webhook_queue_size), (3_600, 2_592_000, 10_000_000));
}

#[test]
fn app_limit_above_its_bound_is_refused_naming_app_and_key() {
    for (key, max) in APP_BOUNDS {
        let f = TempFile::new(&format!("{ONE_APP}{key} = {}\n", max + 1));
        let err = load_err(&["--config", f.path()], &[]);
        assert_eq!(err, format!("apps[0].{key}: must be at most {max}, got {}", max + 1));
        let f = TempFile::new(&format!("{ONE_APP}{key} = {max}\n"));
        assert!(load(&["--config", f.path()], &[]).is_ok(), "{key} = {max} must load");
    }
}

#[test]
fn app_channel_cap_of_zero_is_refused_and_omitting_it_means_no_cap() {
    let f = TempFile::new(&format!("{ONE_APP}max_channels = 0\n"));
    let err = load_err(&["--config", f.path()], &[]);
    assert_eq!(err, "apps[0].max_channels: must be greater than 0 (omit it for no cap)");
    let f = TempFile::new(&format!("{ONE_APP}max_channels = 5\n"));
    assert_eq!(load(&["--config", f.path()], &[]).unwrap().apps[0].limits.max_channels, Some(5));
    let f = TempFile::new(ONE_APP);
    assert_eq!(load(&["--config", f.path()], &[]).unwrap().apps[0].limits.max_channels, None);
}

#[test]
fn app_webhook_cap_out_of_bounds_is_refused_naming_app_and_key() {
    for (key, max) in APP_WEBHOOK_BOUNDS {
        let f = TempFile::new(&format!("{ONE_APP}{key} = {}\n", max + 1));
        let err = load_err(&["--config", f.path()], &[]);
        assert_eq!(err, format!("apps[0].{key}: must be at most {max}, got {}", max + 1));
        let f = TempFile::new(&format!("{ONE_APP}{key} = 0\n"));
        assert_eq!(load_err(&["--config", f.path()], &[]), format!("apps[0].{key}: must be greater than 0"));
        let f = TempFile::new(&format!("{ONE_APP}{key} = {max}\n"));
        assert!(load(&["--config", f.path()], &[]).is_ok(), "{key} = {max} must load");
    }
}

#[test]
fn app_webhook_caps_override_the_node_keys() {
    let hooks = "[[apps.webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nevent_types = [\"channel_occupied\"]\n";
    let text =
        format!("webhook_max_pending = 70\n{ONE_APP}webhook_max_pending = 7\nwebhook_dead_letter_max_age = 9\n{hooks}");
    let f = TempFile::new(&text);
    let c = load(&["--config", f.path()], &[]).unwrap();
    assert_eq!(c.webhook_max_pending, 70);
    let w = &c.webhooks["one"];
    assert_eq!((w.max_pending, w.dead_letters_max, w.dead_letter_max_age), (Some(7), None, Some(9)));
}

#[test]
fn node_caps_of_zero_are_refused_naming_the_key() {
    for key in [
        "webhook_max_pending",
        "webhook_dead_letters_max",
        "webhook_dead_letter_max_age",
        "webhook_cache_miss_dedup_max",
        "http_header_read_timeout",
        "http_keep_alive_timeout",
        "http_body_read_timeout",
        "max_pending_connections",
        "ws_connect_burst_per_ip",
    ] {
        let var = env_var(key);
        let err = load_err(&[], &[(var.as_str(), "0")]);
        assert_eq!(err, format!("{key}: must be greater than 0 (from {var})"));
    }
    // 0 is meaningful for these two: the limit is off.
    let c = load(&[], &[("HERALD_WS_CONNECT_RATE_PER_IP", "0"), ("HERALD_FD_RESERVE", "0")]).unwrap();
    assert_eq!((c.ws_connect_rate_per_ip, c.fd_reserve), (0, 0));
}

#[test]
fn keep_alive_longer_than_the_header_read_timeout_is_refused() {
    let f = TempFile::new("http_header_read_timeout = 10\nhttp_keep_alive_timeout = 11\n");
    let err = load_err(&["--config", f.path()], &[]);
    assert_eq!(err, "http_keep_alive_timeout: must not be longer than http_header_read_timeout (10 s), got 11");
}

#[test]
fn metrics_port_equal_to_the_main_port_is_refused() {
    let err = load_err(&[], &[("HERALD_PORT", "7000"), ("HERALD_METRICS_PORT", "7000")]);
    assert_eq!(err, "metrics_port: must differ from port (7000) (from HERALD_METRICS_PORT)");
    let c = load(&[], &[("HERALD_METRICS_PORT", "7001")]).unwrap();
    assert_eq!(c.metrics_port, Some(7001));
}

#[test]
fn connection_bounds_have_their_documented_defaults() {
    let c = load(&[], &[]).unwrap();
    let got = (
        c.http_header_read_timeout,
        c.http_keep_alive_timeout,
        c.http_body_read_timeout,
        c.max_pending_connections,
        c.ws_connect_rate_per_ip,
        c.ws_connect_burst_per_ip,
        c.fd_reserve,
        c.metrics_port,
    );
    assert_eq!(got, (10, 10, 30, 4096, 0, 50, 64, None));
}

#[test]
fn metrics_host_defaults_to_loopback_and_a_bad_one_is_refused_naming_the_key() {
    assert_eq!(load(&[], &[]).unwrap().metrics_host, "127.0.0.1");
    let c = load(&[], &[("HERALD_METRICS_HOST", "0.0.0.0"), ("HERALD_METRICS_PORT", "9100")]).unwrap();
    assert_eq!((c.metrics_host.as_str(), c.metrics_port), ("0.0.0.0", Some(9100)));
    let err = load_err(&[], &[("HERALD_METRICS_HOST", "a b")]);
    assert!(err.starts_with("metrics_host: invalid value \"a b\" (from HERALD_METRICS_HOST)"), "{err}");
}
