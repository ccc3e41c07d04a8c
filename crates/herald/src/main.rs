//! `herald` — start a Pusher Channels compatible server.
//!
//! Loads the configuration (defaults < file < env < flags), sets up logging, starts the server,
//! prints where it listens (and the credentials when the built-in default app is in use), then
//! runs until SIGINT/SIGTERM and shuts down gracefully. SIGHUP reloads the apps and the `[tls]`
//! certificate without dropping a connection (`RunningServer::reload`).

use std::process::ExitCode;

use herald::config::{self, Config, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // `herald dead-letters …` is a client of a running server: no server config is loaded.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "dead-letters") {
        return herald::webhooks::cli::run(args);
    }
    // `herald apps …` manages the rows of a SQL app store directly; it reads the server's
    // configuration itself (only `--config` of the server's flags applies).
    if args.get(1).is_some_and(|a| a == "apps") {
        return herald::apps::cli::run(args);
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
        match config.app_store.sql() {
            // The database is not contacted: check-config validates the configuration only.
            Some(sql) => println!(
                "configuration OK (apps from the {} table {} at {})",
                sql.driver.name(),
                sql.table,
                sql.redacted_url()
            ),
            None => println!("configuration OK ({} app(s))", config.apps.len()),
        }
        if let Some(console) = &config.console {
            println!("console enabled at /console (user {})", console.username);
        }
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
    // Every handler is registered before the banner: whoever reads it may signal at once, and
    // a signal that arrived before its handler existed would end the process without the
    // graceful shutdown (SIGTERM) or kill it (SIGHUP).
    let signals = Signals::register();
    banner.print(server.local_addr(), server.metrics_addr());
    signals.run_until_shutdown(&server).await;
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
    /// How the apps line reads: "3 app(s) configured" or the SQL table they come from.
    apps: String,
    /// The DogStatsD line, with `[datadog]`.
    datadog: Option<String>,
    /// Whether `[console]` serves the console at /console.
    console: bool,
}

impl Banner {
    fn from(config: &Config) -> Self {
        let default_app = config
            .default_app_in_use
            .then(|| config.apps.first().map(|a| (a.id.clone(), a.key.clone(), a.secret.clone())))
            .flatten();
        let apps = match config.app_store.sql() {
            Some(sql) => format!(
                "apps from the {} table {} at {} (re-read every {} s)",
                sql.driver.name(),
                sql.table,
                sql.redacted_url(),
                sql.cache_ttl.as_secs()
            ),
            None => format!("{} app(s) configured", config.apps.len()),
        };
        Banner {
            bind: config.bind_addr(),
            tls: config.tls.is_some(),
            prefix: config.path_prefix.clone(),
            default_app,
            apps,
            datadog: config.datadog.as_ref().map(|dd| {
                let names = if dd.prefix.is_empty() { String::new() } else { format!(" as {}.*", dd.prefix) };
                format!("DogStatsD: metrics{names} to udp://{} every {} s", dd.statsd_addr, dd.interval.as_secs())
            }),
            console: config.console.is_some(),
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
        if let Some(datadog) = &self.datadog {
            text.push_str(&format!("  {datadog}\n"));
        }
        if self.console {
            text.push_str(&format!("  console: {http}://{addr}/console\n"));
        }
        match &self.default_app {
            Some((id, key, secret)) => {
                text.push_str(&format!("  default app: id={id} key={key} secret={secret}\n"));
                text.push_str("  WARNING: these are the built-in default credentials, known to everyone.\n");
                text.push_str(
                    "           Configure your own apps (herald --config herald.toml) before exposing herald.\n",
                );
            }
            None => text.push_str(&format!("  {}\n", self.apps)),
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

/// The process signals herald acts on, registered once at start-up.
struct Signals {
    #[cfg(unix)]
    interrupt: std::io::Result<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: std::io::Result<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: std::io::Result<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()),
                terminate: signal(SignalKind::terminate()),
                hangup: signal(SignalKind::hangup()),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Runs until SIGINT or SIGTERM; each SIGHUP meanwhile re-reads the configuration (file and
    /// environment, as at start-up) and the TLS files, and applies them (`reload.rs`).
    #[cfg(unix)]
    async fn run_until_shutdown(self, server: &herald::RunningServer) {
        async fn next(signal: &mut std::io::Result<tokio::signal::unix::Signal>) {
            match signal {
                Ok(s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        let Signals { mut interrupt, mut terminate, mut hangup } = self;
        if let Err(e) = &hangup {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; configuration reload is unavailable");
        }
        loop {
            tokio::select! {
                () = next(&mut interrupt) => return,
                () = next(&mut terminate) => return,
                () = next(&mut hangup) => {
                    tracing::info!("SIGHUP: reloading the configuration and the TLS certificate");
                    server.reload(config::load()).await;
                }
            }
        }
    }

    #[cfg(not(unix))]
    async fn run_until_shutdown(self, _server: &herald::RunningServer) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
