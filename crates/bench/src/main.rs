//! `herald-bench`: a load generator for any Pusher Channels compatible server (herald, sockudo,
//! soketi, ...) over loopback. Command-line parsing and dispatch to the scenarios; every
//! scenario is bounded in count (its parameters) and in time (`--max-seconds`).

mod client;
mod fleet;
mod procstat;
mod publisher;
mod report;
mod scenario;
mod sign;
mod stats;
mod tls;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::Target;
use crate::fleet::RampOpts;
use crate::scenario::Ctx;

#[derive(Parser)]
#[command(
    name = "herald-bench",
    version,
    about = "Load generator for Pusher Channels compatible servers (loopback only)."
)]
struct Cli {
    /// Server address; must be in 127.0.0.0/8.
    #[arg(long, global = true, default_value = "127.0.0.1", env = "BENCH_HOST")]
    host: Ipv4Addr,
    #[arg(long, global = true, default_value_t = 6001, env = "BENCH_PORT")]
    port: u16,
    #[arg(long, global = true, default_value = "app-id", env = "BENCH_APP_ID")]
    app_id: String,
    #[arg(long, global = true, default_value = "app-key", env = "BENCH_APP_KEY")]
    key: String,
    #[arg(long, global = true, default_value = "app-secret", env = "BENCH_APP_SECRET")]
    secret: String,
    /// Connect over TLS (`wss://`, `https://`), trusting the CA certificates in this PEM file;
    /// the server's certificate must name the --host address (an IP SAN).
    #[arg(long, global = true, value_name = "PEM", env = "BENCH_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Pid of the server process, for RSS and CPU from /proc.
    #[arg(long, global = true, env = "BENCH_SERVER_PID")]
    server_pid: Option<u32>,
    /// Label of the server in reports.
    #[arg(long, global = true, default_value = "server", env = "BENCH_SERVER_NAME")]
    server_name: String,
    /// Write the report as JSON to this file.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Hard bound on the scenario's run time.
    #[arg(long, global = true, default_value_t = 900)]
    max_seconds: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The fan-out pattern, shared by `fanout` and `send-floor` so that the floor is measured at the
/// same pattern by default.
#[derive(Args, Clone, Copy)]
struct FanoutShape {
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Publishes per second (each delivered to subscribers/channels connections).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Extra padding bytes in each event's data.
    #[arg(long, default_value_t = 0)]
    payload: usize,
}

#[derive(Args, Clone)]
struct RampArgs {
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 1000.0)]
    connect_rate: f64,
    /// Channel name prefix (channel i is `{prefix}{i}`).
    #[arg(long, default_value = "bench-")]
    channel_prefix: String,
    /// Connections from index N on are bound to 127.0.0.2, 127.0.0.3, ...
    #[arg(long, default_value_t = 28_000)]
    spread_after: usize,
    /// Connections per source address once spreading.
    #[arg(long, default_value_t = 25_000)]
    per_source: usize,
    /// Seconds allowed for one connect + handshake + subscribe.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Stop ramping after this many consecutive failures.
    #[arg(long, default_value_t = 50)]
    max_consecutive_failures: u64,
}

impl RampArgs {
    fn opts(&self, count: usize, channels: usize, private: bool) -> RampOpts {
        RampOpts {
            count,
            rate: self.connect_rate,
            channels: channels.max(1),
            channel_prefix: self.channel_prefix.clone(),
            private,
            spread_after: self.spread_after,
            per_source: self.per_source,
            timeout: Duration::from_secs(self.connect_timeout),
            max_in_flight: self.max_in_flight,
            max_consecutive_failures: self.max_consecutive_failures,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Open N connections (each subscribed to one of C channels), measure RSS per connection, hold them.
    Connections {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 100)]
        channels: usize,
        /// Seconds to hold the connections open (answering pings).
        #[arg(long, default_value_t = 10)]
        hold: u64,
        /// Seconds to wait before sampling RSS.
        #[arg(long, default_value_t = 2)]
        settle: u64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// S subscribers over C channels, HTTP publisher at a fixed rate: latency, loss, order, CPU/msg.
    Fanout {
        #[command(flatten)]
        shape: FanoutShape,
        /// Keep-alive HTTP connections used by the publisher.
        #[arg(long, default_value_t = 2)]
        publishers: usize,
        /// Seconds to wait for the last deliveries.
        #[arg(long, default_value_t = 5)]
        drain: u64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// Fan-out at rising rates until p99 passes a bound or loss appears: highest sustained msgs/s.
    Saturate {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 10)]
        channels: usize,
        #[arg(long, default_value_t = 50.0)]
        start_rate: f64,
        #[arg(long, default_value_t = 1.5)]
        factor: f64,
        /// Seconds per step.
        #[arg(long, default_value_t = 5)]
        step: u64,
        #[arg(long, default_value_t = 12)]
        max_steps: usize,
        #[arg(long, default_value_t = 50.0)]
        p99_bound_ms: f64,
        #[arg(long, default_value_t = 2)]
        publishers: usize,
        #[arg(long, default_value_t = 0)]
        payload: usize,
        /// Re-measure latency at half the highest sustained rate.
        #[arg(long)]
        half_check: bool,
        /// Bisection steps between the last sustained and the first failed rate.
        #[arg(long, default_value_t = 3)]
        refine: usize,
        #[arg(long, default_value_t = 3)]
        drain: u64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// Connections on private channels sending client events to each other.
    ClientEvents {
        #[arg(long, default_value_t = 200)]
        connections: usize,
        #[arg(long, default_value_t = 20)]
        channels: usize,
        /// Client events per second per connection (stay under the server's limit, 10 by default).
        #[arg(long, default_value_t = 2.0)]
        rate_per_conn: f64,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 5)]
        drain: u64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// Connect/subscribe/unsubscribe/disconnect churn during a fan-out; RSS before and after.
    Churn {
        #[arg(long, default_value_t = 500)]
        subscribers: usize,
        #[arg(long, default_value_t = 10)]
        channels: usize,
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        duration: u64,
        #[arg(long, default_value_t = 2)]
        publishers: usize,
        /// Concurrent churn workers.
        #[arg(long, default_value_t = 20)]
        churners: usize,
        /// Mean time a churn connection stays subscribed, ms.
        #[arg(long, default_value_t = 200)]
        hold_ms: u64,
        /// Seconds to wait before the start/end RSS samples.
        #[arg(long, default_value_t = 5)]
        settle: u64,
        #[arg(long, default_value_t = 5)]
        drain: u64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// An hour of mixed load (churn, presence, publishes, client events, webhooks to a receiver
    /// that refuses every third request) against one or more nodes: RSS, open files, channels,
    /// outbox depth and tasks sampled, judged flat or not. Start the nodes with scripts/soak.sh.
    Soak {
        /// Node ports, comma-separated (default: --port).
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
        /// Node pids in --ports order, comma-separated (default: --server-pid).
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        /// Port of the webhook receiver (on --host); the nodes' webhook URL points here.
        #[arg(long, default_value_t = 9100)]
        webhook_port: u16,
        #[arg(long, default_value_t = 3600)]
        duration: u64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 30)]
        sample_every: u64,
        /// Connections that stay for the whole run, each on one public channel.
        #[arg(long, default_value_t = 150)]
        subscribers: usize,
        #[arg(long, default_value_t = 15)]
        public_channels: usize,
        /// Churn workers (each one connection at a time).
        #[arg(long, default_value_t = 150)]
        churners: usize,
        #[arg(long, default_value_t = 30)]
        private_channels: usize,
        #[arg(long, default_value_t = 15)]
        presence_channels: usize,
        /// Mean seconds a churn connection stays (uniform in 0..2x).
        #[arg(long, default_value_t = 30)]
        hold: u64,
        /// Client events per second per churn connection.
        #[arg(long, default_value_t = 0.2)]
        client_rate: f64,
        /// HTTP publishes per second in total.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Allowed growth (%) from the window after warm-up to the last window.
        #[arg(long, default_value_t = 10.0)]
        tolerance_pct: f64,
        /// Seconds after the load stops before the last sample.
        #[arg(long, default_value_t = 30)]
        settle: u64,
        /// Write every sample here (CSV).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the Markdown summary here.
        #[arg(long)]
        md: Option<PathBuf>,
    },
    /// No server: the kernel's CPU per delivered message for one `send` per message per socket
    /// (the floor every server pays in `fanout`), measured on loopback pairs at the fanout pattern.
    SendFloor {
        #[command(flatten)]
        shape: FanoutShape,
    },
    /// Markdown table of two result folders (JSON reports), with A/B ratios.
    Compare {
        #[arg(long)]
        a: PathBuf,
        #[arg(long)]
        b: PathBuf,
        #[arg(long, default_value = "herald")]
        a_name: String,
        #[arg(long, default_value = "sockudo")]
        b_name: String,
        /// Only the headline metrics.
        #[arg(long)]
        summary: bool,
        /// A `send-floor` report: also show CPU per message above the kernel floor.
        #[arg(long)]
        floor: Option<PathBuf>,
    },
}

const MAX_COUNT: usize = 1_000_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Compare { a, b, a_name, b_name, summary, floor } = &cli.cmd {
        return match report::compare(a, b, a_name, b_name, *summary, floor.as_deref()) {
            Ok(md) => {
                print!("{md}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("compare: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !cli.host.is_loopback() {
        eprintln!("herald-bench only drives servers on loopback (127.0.0.0/8); {} is not", cli.host);
        return ExitCode::FAILURE;
    }
    let (soft, hard) = procstat::raise_nofile();
    eprintln!("herald-bench: open-file limit {soft} (hard {hard})");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    let tls = match cli.tls_ca.as_deref().map(tls::client_config).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("herald-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = Ctx {
        target: Target { host: cli.host, port: cli.port, app_id: cli.app_id, key: cli.key, secret: cli.secret, tls },
        pid: cli.server_pid,
        server: cli.server_name,
        out: cli.out,
    };
    let secs = Duration::from_secs;
    // A soak runs for its --duration: the bound only guards against a hang past it.
    let max_seconds = match &cli.cmd {
        Cmd::Soak { duration, settle, .. } => cli.max_seconds.max(duration + settle + 300),
        _ => cli.max_seconds,
    };
    let fut = async {
        match cli.cmd {
            Cmd::Connections { count, channels, hold, settle, ramp } => {
                let o = scenario::connections::Opts {
                    ramp: ramp.opts(count.min(MAX_COUNT), channels, false),
                    hold: secs(hold),
                    settle: secs(settle),
                };
                scenario::connections::run(&ctx, &o).await
            }
            Cmd::Fanout {
                shape: FanoutShape { subscribers, channels, rate, duration, payload },
                publishers,
                drain,
                ramp,
            } => {
                let o = scenario::fanout::Opts {
                    ramp: ramp.opts(subscribers.min(MAX_COUNT), channels, false),
                    rate,
                    duration: secs(duration),
                    publishers,
                    payload,
                    drain: secs(drain),
                };
                scenario::fanout::run(&ctx, &o).await
            }
            Cmd::Saturate {
                subscribers,
                channels,
                start_rate,
                factor,
                step,
                max_steps,
                p99_bound_ms,
                publishers,
                payload,
                half_check,
                drain,
                refine,
                ramp,
            } => {
                let o = scenario::saturate::Opts {
                    ramp: ramp.opts(subscribers.min(MAX_COUNT), channels, false),
                    start_rate,
                    factor: factor.max(1.05),
                    step: secs(step),
                    max_steps: max_steps.min(40),
                    p99_bound_ms,
                    publishers,
                    payload,
                    half_check,
                    drain: secs(drain),
                    refine: refine.min(10),
                };
                scenario::saturate::run(&ctx, &o).await
            }
            Cmd::ClientEvents { connections, channels, rate_per_conn, duration, drain, ramp } => {
                let o = scenario::client_events::Opts {
                    ramp: ramp.opts(connections.min(MAX_COUNT), channels, true),
                    rate_per_conn,
                    duration: secs(duration),
                    drain: secs(drain),
                };
                scenario::client_events::run(&ctx, &o).await
            }
            Cmd::Churn {
                subscribers,
                channels,
                rate,
                duration,
                publishers,
                churners,
                hold_ms,
                settle,
                drain,
                ramp,
            } => {
                let o = scenario::churn::Opts {
                    ramp: ramp.opts(subscribers.min(MAX_COUNT), channels, false),
                    rate,
                    duration: secs(duration),
                    publishers,
                    churners: churners.min(10_000),
                    hold: Duration::from_millis(hold_ms),
                    settle: secs(settle),
                    drain: secs(drain),
                };
                scenario::churn::run(&ctx, &o).await
            }
            Cmd::SendFloor { shape: FanoutShape { subscribers, channels, rate, duration, payload } } => {
                let o = scenario::floor::Opts {
                    subscribers: subscribers.min(MAX_COUNT),
                    channels,
                    rate,
                    duration: secs(duration),
                    payload,
                };
                scenario::floor::run(&o).await
            }
            Cmd::Soak {
                ports,
                pids,
                webhook_port,
                duration,
                sample_every,
                subscribers,
                public_channels,
                churners,
                private_channels,
                presence_channels,
                hold,
                client_rate,
                rate,
                tolerance_pct,
                settle,
                csv,
                md,
            } => {
                let o = scenario::soak::Opts {
                    ports: if ports.is_empty() { vec![ctx.target.port] } else { ports },
                    pids: if pids.is_empty() { ctx.pid.into_iter().collect() } else { pids },
                    webhook: std::net::SocketAddr::from((ctx.target.host, webhook_port)),
                    duration: secs(duration),
                    sample_every: secs(sample_every.max(1)),
                    subscribers: subscribers.min(MAX_COUNT),
                    churners: churners.min(10_000),
                    shape: scenario::soak::ChurnShape {
                        public_channels: public_channels.max(1),
                        private_channels: private_channels.max(1),
                        presence_channels: presence_channels.max(1),
                        hold: secs(hold.max(1)),
                        client_rate,
                    },
                    rate,
                    tolerance: tolerance_pct / 100.0,
                    settle: secs(settle),
                    csv,
                    md,
                };
                scenario::soak::run(&ctx, &o).await
            }
            Cmd::Compare { .. } => unreachable!("handled before the runtime starts"),
        }
    };
    match tokio::time::timeout(secs(max_seconds), fut).await {
        Ok(report) => match report.emit(ctx.out.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing the report: {e}");
                ExitCode::FAILURE
            }
        },
        Err(_) => {
            eprintln!("scenario exceeded --max-seconds {max_seconds}; aborted");
            ExitCode::from(2)
        }
    }
}
