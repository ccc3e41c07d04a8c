//! `deploy/grafana/herald.json` queries only metrics herald exports: every `herald_*` name in
//! its PromQL (panel targets and variable queries) appears in `GET /metrics` of a server that
//! has a Redis cluster adapter (a private `redis-server`) and a webhook target, after a client
//! connected and subscribed, an event was published and a webhook delivered. It also checks the
//! dashboard imports cleanly: every query uses the `${DS_PROMETHEUS}` input it declares.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use support::*;

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/herald.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("herald.json is JSON")
}

/// Every PromQL string of the dashboard: panel targets' `expr` and the variables' queries.
fn queries(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap_or_else(|| panic!("target without expr: {target}")).to_owned());
        }
    }
    for var in d["templating"]["list"].as_array().unwrap() {
        out.push(var["query"]["query"].as_str().unwrap().to_owned());
    }
    out
}

/// The `herald_*` identifiers in a PromQL string (metric names: no label of herald's starts so).
fn metric_names(promql: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = Vec::new();
    let mut rest = promql;
    while let Some(i) = rest.find("herald_") {
        let starts_word = !rest[..i].ends_with(is_ident);
        let tail = &rest[i..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        if starts_word {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The metric names of a Prometheus text rendering.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_query_uses_the_declared_prometheus_input() {
    let d = dashboard();
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(d["__inputs"][0]["pluginId"], "prometheus");
    let want = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let panels = d["panels"].as_array().unwrap();
    let mut targets = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"], want, "panel {}", panel["title"]);
        let list = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {} has no targets", panel["title"]));
        assert!(!list.is_empty(), "panel {} has no targets", panel["title"]);
        for t in list {
            assert_eq!(t["datasource"], want, "a target of {}", panel["title"]);
            targets += 1;
        }
    }
    assert!(targets >= 20, "{targets} targets");
    let ids: BTreeSet<_> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

#[test]
fn metric_names_are_read_from_promql() {
    let q = r#"sum by (app_id) (rate(herald_app_connections{instance=~"$instance"}[$__rate_interval])) / herald_x"#;
    assert_eq!(metric_names(q), ["herald_app_connections", "herald_x"]);
    assert_eq!(metric_names("label_values(herald_connections, instance)"), ["herald_connections"]);
    assert!(metric_names("not_herald_y").is_empty());
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let wanted: BTreeSet<String> = queries(&dashboard()).iter().flat_map(|q| metric_names(q)).collect();
    assert!(wanted.len() >= 25, "{wanted:?}");

    let redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let mut cfg = webhook_config(&receiver.url(), &["channel_occupied"], "grafana-dashboard");
    cfg.adapter = node_config(&redis).adapter;
    let srv = start_with(cfg).await;
    let mut client = subscriber(&srv, &["news"]).await;
    let r = srv.api().trigger(json!({"name": "flash", "channel": "news", "data": "{}"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    client.recv_event("flash").await;
    receiver.wait_events(1, WAIT).await;
    // The labelled error series appear with their first occurrence: a protocol error (an
    // unparsable frame) and a close by the server (an unknown app key).
    client.send_raw("not json").await;
    client.recv_event("pusher:error").await;
    let refused = Client::connect(&srv.ws_url("unknown-key")).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let (metrics, have) = loop {
        let metrics = raw_http(srv.addr, "GET", "/metrics", b"").await;
        assert_eq!(metrics.status, 200);
        let have = exported(&metrics.body);
        if wanted.iter().all(|m| have.contains(m)) || tokio::time::Instant::now() > deadline {
            break (metrics, have);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let missing: Vec<&String> = wanted.iter().filter(|m| !have.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "queried by deploy/grafana/herald.json but not in /metrics: {missing:?}\n{}",
        metrics.body
    );
    drop((client, refused));
    srv.server.shutdown().await;
}
