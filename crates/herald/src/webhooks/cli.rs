//! `herald dead-letters …`: a small client for the dead-letter admin endpoints.
//!
//! ```text
//! herald dead-letters list       --url http://127.0.0.1:6001 --app-id ID --key KEY --secret SECRET
//! herald dead-letters list --limit 50 --after 42 --url …   (one page; `next` is the next `--after`)
//! herald dead-letters resend 42  --url … --app-id … --key … --secret …
//! herald dead-letters resend-all --url … --app-id … --key … --secret …
//! ```
//!
//! Requests are signed exactly like a server SDK signs HTTP API calls (PROTOCOL.md 10.2).
//! `main` dispatches here before loading the server configuration, so the server's own
//! flags (`--app-id` for the single-app mode) do not interfere.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use herald_protocol::auth::hmac_sha256_hex;

#[derive(Debug, Parser)]
#[command(name = "herald dead-letters", about = "List and re-send webhook dead letters of a running herald.")]
pub struct DeadLettersCli {
    /// Base URL of the herald HTTP API, including any path prefix (e.g. http://127.0.0.1:6001).
    #[arg(long, global = true, value_name = "URL", env = "HERALD_URL")]
    url: Option<String>,
    /// App id.
    #[arg(long, global = true, value_name = "ID")]
    app_id: Option<String>,
    /// App key (signs the request).
    #[arg(long, global = true, value_name = "KEY")]
    key: Option<String>,
    /// App secret (signs the request).
    #[arg(long, global = true, value_name = "SECRET")]
    secret: Option<String>,
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print one page of the app's dead letters (JSON: `dead_letters` and the `next` cursor).
    List {
        /// Dead letters per page (server default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
        /// Start after this dead-letter id (the previous page's `next`).
        #[arg(long)]
        after: Option<u64>,
    },
    /// Put one dead letter back into the delivery queue.
    Resend {
        /// The dead letter's id (from `list`).
        id: u64,
    },
    /// Put every dead letter of the app back into the delivery queue.
    ResendAll,
}

/// Runs `herald dead-letters` with `args` (the program name first, then `dead-letters` …).
pub fn run(args: Vec<std::ffi::OsString>) -> ExitCode {
    // Drop the "dead-letters" word so clap sees `herald-dead-letters list …`.
    let args: Vec<std::ffi::OsString> = args.into_iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, a)| a).collect();
    let cli = match DeadLettersCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let missing: Vec<&str> =
        [("--url", &cli.url), ("--app-id", &cli.app_id), ("--key", &cli.key), ("--secret", &cli.secret)]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n)
            .collect();
    if !missing.is_empty() {
        eprintln!("herald dead-letters: missing {}", missing.join(", "));
        return ExitCode::from(2);
    }
    let (url, app_id, key, secret) = (
        cli.url.unwrap_or_default(),
        cli.app_id.unwrap_or_default(),
        cli.key.unwrap_or_default(),
        cli.secret.unwrap_or_default(),
    );
    let mut extra: Vec<(&str, String)> = Vec::new();
    let (method, path) = match cli.command {
        Action::List { limit, after } => {
            if let Some(a) = after {
                extra.push(("after", a.to_string()));
            }
            if let Some(l) = limit {
                extra.push(("limit", l.to_string()));
            }
            ("GET", format!("/apps/{app_id}/webhooks/dead_letters"))
        }
        Action::Resend { id } => ("POST", format!("/apps/{app_id}/webhooks/dead_letters/{id}/resend")),
        Action::ResendAll => ("POST", format!("/apps/{app_id}/webhooks/dead_letters/resend_all")),
    };
    let base = url.trim_end_matches('/');
    // A path prefix in the URL is not signed (SDKs do not sign it either).
    let query = signed_query(method, &path, &extra, &key, &secret, now());
    let full = format!("{base}{path}?{query}");
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald dead-letters: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let client = reqwest::Client::new();
        let req = if method == "GET" { client.get(&full) } else { client.post(&full) };
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                if status.is_success() {
                    println!("{}", body.trim_end());
                    ExitCode::SUCCESS
                } else {
                    eprintln!("herald dead-letters: HTTP {}: {}", status.as_u16(), body.trim_end());
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("herald dead-letters: request to {base} failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The signed query string of a body-less request (PROTOCOL.md 10.2; no body, so no
/// `body_md5`). `extra` values must need no escaping (they are numbers); all parameters are
/// sorted by name, as the signature requires.
fn signed_query(method: &str, path: &str, extra: &[(&str, String)], key: &str, secret: &str, timestamp: u64) -> String {
    let mut params: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
    params.push(format!("auth_key={key}"));
    params.push(format!("auth_timestamp={timestamp}"));
    params.push("auth_version=1.0".to_owned());
    params.sort();
    let canonical = params.join("&");
    let signature = hmac_sha256_hex(secret.as_bytes(), format!("{method}\n{path}\n{canonical}").as_bytes());
    format!("{canonical}&auth_signature={signature}")
}
