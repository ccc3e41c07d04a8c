//! `[datadog]`: a server on port 0, configured from a TOML file to send DogStatsD to a UDP
//! socket this test owns, every second; after a client connects and an event is published, the
//! socket receives the metrics with the configured prefix, their DogStatsD types and the tags
//! (the metric's labels, such as `app_id`, and the configured `tags`), while `/metrics` still
//! shows the same numbers.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use support::*;
use tokio::net::UdpSocket;

/// One DogStatsD line `name:value|type|#tags` (tags in the order sent).
#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    value: f64,
    kind: String,
    tags: Vec<String>,
}

fn parse(line: &str) -> Line {
    let (name, rest) = line.split_once(':').unwrap_or_else(|| panic!("no ':' in {line:?}"));
    let mut fields = rest.split('|');
    let value = fields.next().unwrap().parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let kind = fields.next().unwrap_or_else(|| panic!("no type in {line:?}")).to_owned();
    let tags =
        fields.find_map(|f| f.strip_prefix('#')).map(|t| t.split(',').map(String::from).collect()).unwrap_or_default();
    Line { name: name.to_owned(), value, kind, tags }
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

/// The sum of the values of `name|kind|#tags` over every line received (counters arrive as
/// per-interval deltas), or the last value for a gauge.
fn total(lines: &[Line], name: &str, kind: &str, want_tags: &[&str]) -> Option<f64> {
    let matching: Vec<&Line> =
        lines.iter().filter(|l| l.name == name && l.kind == kind && l.tags == tags(want_tags)).collect();
    match kind {
        "g" => matching.last().map(|l| l.value),
        _ => (!matching.is_empty()).then(|| matching.iter().map(|l| l.value).sum()),
    }
}

#[tokio::test]
async fn datadog_receives_prefixed_typed_and_tagged_metrics_every_interval() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dir = temp_data_dir("datadog-export");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        format!(
            "host = \"127.0.0.1\"\nport = 0\nshutdown_grace = 2\nshutdown_drain_window_ms = 0\n\
             [datadog]\nstatsd_addr = \"{}\"\ntags = [\"env:test\"]\ninterval = 1\n\
             [[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n",
            agent.local_addr().unwrap()
        ),
    )
    .unwrap();
    let config = herald::config::load_from(["herald", "--config", file.to_str().unwrap()], &HashMap::new()).unwrap();
    let srv = start_with(config).await;

    let mut client = subscriber(&srv, &["news"]).await;
    let r = srv.api().trigger(json!({"name": "flash", "channel": "news", "data": "{}"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    client.recv_event("flash").await;

    // Read datagrams until every expected series has been seen with its final value (at most a
    // few intervals: the first flush may come before the connection).
    let mut lines: Vec<Line> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut buf = vec![0u8; 65536];
    let complete = |lines: &[Line]| {
        total(lines, "herald.app_connections", "g", &["app_id:app-id", "env:test"]) == Some(1.0)
            && total(lines, "herald.connections", "g", &["env:test"]) == Some(1.0)
            && total(lines, "herald.connections_total", "c", &["env:test"]) == Some(1.0)
            && total(lines, "herald.api_events_published_total", "c", &["env:test"]) == Some(1.0)
            && total(lines, "herald.http_requests_total", "c", &["status:200", "env:test"]).is_some_and(|n| n >= 1.0)
            && total(lines, "herald.ws_messages_out_total", "c", &["env:test"]).is_some_and(|n| n >= 3.0)
    };
    while !complete(&lines) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(got) = tokio::time::timeout(left, agent.recv(&mut buf)).await else {
            panic!("not every expected DogStatsD line within 6 s; got:\n{lines:#?}");
        };
        let text = std::str::from_utf8(&buf[..got.unwrap()]).unwrap();
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(parse));
    }
    // Every metric carries the prefix and the configured tag; the types are DogStatsD's.
    for l in &lines {
        assert!(l.name.starts_with("herald.") && !l.name.starts_with("herald.herald_"), "{l:?}");
        assert!(l.tags.last().is_some_and(|t| t == "env:test"), "{l:?}");
        assert!(["c", "g", "d"].contains(&l.kind.as_str()), "{l:?}");
    }
    // Prometheus still gets every update (the same handles feed both).
    let prom = raw_http(srv.addr, "GET", "/metrics", b"").await.body;
    assert!(prom.contains(&format!("herald_app_connections{{app_id=\"{APP_ID}\"}} 1\n")), "{prom}");
    assert!(prom.contains("herald_api_events_published_total 1\n"), "{prom}");
    drop(client);
    srv.server.shutdown().await;
}
