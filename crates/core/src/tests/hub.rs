//! Admission of connections (PROTOCOL.md 2.2): the checks and their close codes, the per-app
//! and node-wide connection limits, shutdown, and what a session's end gives back.

use herald_protocol::codes::CloseCode;
use serde_json::json;

use super::*;
use crate::hub::Refusal;

fn refusal_code(result: Result<Session, Refusal>) -> CloseCode {
    result.expect_err("refused").code
}

#[test]
fn an_admitted_connection_gets_connection_established_first() {
    let settings = HubSettings { activity_timeout: 30, ..HubSettings::default() };
    let (hub, _) = hub_with(vec![app(AppLimits::default())], settings);
    let session = hub.connect(KEY, Some("7"), false).expect("admitted");
    let frames = take(session.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, "pusher:connection_established");
    assert_eq!(frames[0].data, json!({ "socket_id": &*session.connection().socket_id_str, "activity_timeout": 30 }));
    assert_eq!(session.app().id, APP_ID);
    assert_eq!(hub.connection_count(), 1);
}

#[test]
fn each_connection_gets_a_new_socket_id_of_this_node() {
    let (hub, _) = hub(AppLimits::default());
    let (a, b) = (connect(&hub), connect(&hub));
    let (ida, idb) = (a.connection().socket_id, b.connection().socket_id);
    assert_ne!(ida, idb);
    assert_eq!((ida.node, idb.node), (hub.node(), hub.node()));
}

#[test]
fn an_unknown_app_key_is_refused_with_4001() {
    let (hub, _) = hub(AppLimits::default());
    let refusal = hub.connect("no-such-key", Some("7"), false).expect_err("refused");
    assert_eq!(
        refusal,
        Refusal { code: CloseCode::APP_NOT_FOUND, message: "App key no-such-key not in this cluster".into() }
    );
    assert_eq!(hub.connection_count(), 0);
}

#[test]
fn a_disabled_app_is_refused_with_4003() {
    let (hub, _) = hub(AppLimits { enabled: false, ..AppLimits::default() });
    assert_eq!(refusal_code(hub.connect(KEY, Some("7"), true)), CloseCode::APP_DISABLED);
}

#[test]
fn a_tls_only_app_refuses_plain_connections_with_4000() {
    let (hub, _) = hub(AppLimits { force_tls: true, ..AppLimits::default() });
    assert_eq!(refusal_code(hub.connect(KEY, Some("7"), false)), CloseCode::APP_ONLY_TLS);
    assert!(hub.connect(KEY, Some("7"), true).is_ok());
}

#[test]
fn protocol_versions_5_to_7_are_accepted_and_others_refused_with_4007() {
    let (hub, _) = hub(AppLimits::default());
    for ok in ["5", "6", "7"] {
        assert!(hub.connect(KEY, Some(ok), false).is_ok(), "{ok}");
    }
    for bad in ["4", "8", "seven", ""] {
        assert_eq!(refusal_code(hub.connect(KEY, Some(bad), false)), CloseCode::UNSUPPORTED_PROTOCOL, "{bad:?}");
    }
}

#[test]
fn a_missing_protocol_is_accepted_unless_strict_and_then_refused_with_4008() {
    let (lenient, _) = hub(AppLimits::default());
    assert!(lenient.connect(KEY, None, false).is_ok());
    let settings = HubSettings { strict_protocol_param: true, ..HubSettings::default() };
    let (strict, _) = hub_with(vec![app(AppLimits::default())], settings);
    assert_eq!(refusal_code(strict.connect(KEY, None, false)), CloseCode::NO_PROTOCOL);
}

#[test]
fn the_protocol_is_checked_before_the_app_key() {
    let (hub, _) = hub(AppLimits::default());
    assert_eq!(refusal_code(hub.connect("no-such-key", Some("3"), false)), CloseCode::UNSUPPORTED_PROTOCOL);
}

#[test]
fn an_app_over_its_connection_quota_is_refused_with_4004_until_a_session_ends() {
    let (hub, _) = hub(AppLimits { max_connections: Some(2), ..AppLimits::default() });
    let first = connect(&hub);
    let _second = connect(&hub);
    assert_eq!(refusal_code(hub.connect(KEY, Some("7"), false)), CloseCode::APP_OVER_QUOTA);
    assert_eq!(hub.namespace(APP_ID).connection_count(), 2);
    drop(first);
    assert_eq!(hub.namespace(APP_ID).connection_count(), 1);
    assert!(hub.connect(KEY, Some("7"), false).is_ok());
}

#[test]
fn a_node_at_its_connection_cap_refuses_with_4100_without_counting_the_refused_one() {
    let other = App { id: "app-2".into(), key: "key-2".into(), secret: "s".into(), limits: AppLimits::default() };
    let settings = HubSettings { max_connections: Some(2), ..HubSettings::default() };
    let (hub, _) = hub_with(vec![app(AppLimits::default()), other], settings);
    let first = connect(&hub);
    let _second = hub.connect("key-2", Some("7"), false).expect("admitted");
    assert_eq!(refusal_code(hub.connect(KEY, Some("7"), false)), CloseCode::OVER_CAPACITY);
    assert_eq!(hub.connection_count(), 2);
    assert_eq!(hub.namespace(APP_ID).connection_count(), 1, "the refused connection left no trace in its app");
    assert_eq!(hub.namespace(APP_ID).connections().len(), 1);
    drop(first);
    assert_eq!(hub.connection_count(), 1);
    assert!(hub.connect(KEY, Some("7"), false).is_ok());
}

#[test]
fn after_stop_accepting_new_connections_are_refused_with_4200_and_open_ones_stay() {
    let (hub, _) = hub(AppLimits::default());
    let open = connect(&hub);
    hub.stop_accepting();
    assert!(!hub.is_accepting());
    let refusal = hub.connect(KEY, Some("7"), false).expect_err("refused");
    assert_eq!(refusal.code, CloseCode::RECONNECT);
    assert_eq!(hub.connection_count(), 1);
    assert!(!open.connection().outbox.is_closing());
}

#[test]
fn shutdown_refuses_before_any_other_check() {
    let (hub, _) = hub(AppLimits::default());
    hub.stop_accepting();
    assert_eq!(refusal_code(hub.connect("no-such-key", Some("3"), false)), CloseCode::RECONNECT);
}

#[test]
fn close_all_asks_every_connection_of_every_app_to_close() {
    let other = App { id: "app-2".into(), key: "key-2".into(), secret: "s".into(), limits: AppLimits::default() };
    let (hub, _) = hub_with(vec![app(AppLimits::default()), other], HubSettings::default());
    let a = connect(&hub);
    let b = hub.connect("key-2", Some("7"), false).expect("admitted");
    hub.close_all(CloseCode::RECONNECT, "restarting");
    for s in [&a, &b] {
        let req = close_request(s.connection()).expect("close requested");
        assert_eq!((req.code, req.message.as_str()), (CloseCode::RECONNECT, "restarting"));
    }
    assert_eq!(hub.connections().len(), 2);
}

#[test]
fn the_hub_sweep_drops_empty_expired_channels_of_every_app() {
    let (hub, _) = hub(AppLimits::default());
    let ns = hub.namespace(APP_ID);
    publish_cached(&ns, "cache-a", "e", "1", std::time::Duration::ZERO);
    publish_cached(&ns, "cache-b", "e", "1", std::time::Duration::from_secs(60));
    hub.sweep();
    assert!(!ns.has_channel("cache-a"));
    assert!(ns.has_channel("cache-b"));
}

#[test]
fn the_count_policy_combines_the_apps_flag_with_the_nodes_throttle() {
    let settings = HubSettings {
        subscription_count_threshold: 7,
        subscription_count_interval: std::time::Duration::from_secs(3),
        ..HubSettings::default()
    };
    let (hub, _) = hub_with(vec![], settings);
    let policy = hub.count_policy(&app(AppLimits { enable_subscription_count: true, ..AppLimits::default() }));
    assert!(policy.enabled);
    assert_eq!((policy.threshold, policy.interval), (7, std::time::Duration::from_secs(3)));
    assert!(!hub.count_policy(&app(AppLimits::default())).enabled);
}
