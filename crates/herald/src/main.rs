//! `herald` — start a Pusher Channels compatible server.
//!
//! Loads the configuration (defaults < file < env < flags), sets up logging, starts the server,
//! prints where it listens (and the credentials when the built-in default app is in use), then
//! runs until SIGINT/SIGTERM and shuts down gracefully. SIGHUP reloads (`RunningServer::reload`:
//! the `[tls]` certificate and key) without dropping a connection.

use std::process::ExitCode;

use herald::config::{self, Config, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // `herald dead-letters …` is a client of a running server: no server config is loaded.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "dead-letters") {
        return herald::webhooks::cli::run(args);
    }
    let config = match config::load() {
        Ok(c) => c,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("herald: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.check_only {
        println!("configuration OK ({} app(s))", config.apps.len());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> ExitCode {
    let banner = Banner::from(&config);
    let server = match herald::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("herald: cannot start (listening on {}): {e}", banner.bind);
            return ExitCode::FAILURE;
        }
    };
    banner.print(server.local_addr(), server.metrics_addr());
    wait_for_shutdown(&server).await;
    tracing::info!("shutdown requested; draining connections");
    server.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// What start-up prints to stdout.
struct Banner {
    bind: String,
    tls: bool,
    prefix: String,
    default_app: Option<(String, String, String)>,
    apps: usize,
}

impl Banner {
    fn from(config: &Config) -> Self {
        let default_app = config
            .default_app_in_use
            .then(|| config.apps.first().map(|a| (a.id.clone(), a.key.clone(), a.secret.clone())))
            .flatten();
        Banner {
            bind: config.bind_addr(),
            tls: config.tls.is_some(),
            prefix: config.path_prefix.clone(),
            default_app,
            apps: config.apps.len(),
        }
    }

    /// Writes the banner to stdout. A closed stdout (the reader went away) must never take the
    /// server down, so write errors are ignored rather than panicking like `println!`.
    fn print(&self, addr: std::net::SocketAddr, ops: Option<std::net::SocketAddr>) {
        use std::io::Write;
        let mut text = String::new();
        let (http, ws) = if self.tls { ("https", "wss") } else { ("http", "ws") };
        // Tests and scripts parse this first line.
        text.push_str(&format!("herald listening on {http}://{addr}\n"));
        text.push_str(&format!(
            "  WebSocket: {ws}://{addr}{}/app/{{key}}   HTTP API: {http}://{addr}{}/apps/{{id}}/...\n",
            self.prefix, self.prefix
        ));
        text.push_str(&format!("  metrics: {http}://{addr}/metrics   liveness: /up   readiness: /ready\n"));
        if let Some(ops) = ops {
            // Tests parse this line too.
            text.push_str(&format!("  metrics listener on http://{ops} (/up, /ready, /metrics)\n"));
        }
        match &self.default_app {
            Some((id, key, secret)) => {
                text.push_str(&format!("  default app: id={id} key={key} secret={secret}\n"));
                text.push_str("  WARNING: these are the built-in default credentials, known to everyone.\n");
                text.push_str(
                    "           Configure your own apps (herald --config herald.toml) before exposing herald.\n",
                );
            }
            None => text.push_str(&format!("  {} app(s) configured\n", self.apps)),
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

/// Waits for SIGINT or SIGTERM; each SIGHUP meanwhile reloads (`RunningServer::reload`, which
/// logs what it did).
async fn wait_for_shutdown(server: &herald::RunningServer) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // The streams are made once, so a signal arriving during a reload is not missed.
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            eprintln!("herald: cannot install the signal handlers; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    server.reload().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = server;
        let _ = tokio::signal::ctrl_c().await;
    }
}
