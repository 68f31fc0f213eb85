//! Command line of `dcsync-emulator`: parse flags, bind exactly the given
//! address, print `listening on http://HOST:PORT/api/v2/` as the first stdout
//! line, serve until Ctrl-C. Logs go to stderr. Must never bind any other
//! address and never print anything else before the listening line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use dcsync_emulator::{AuthMode, Config, FaultKind};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Auth {
    Keys,
    Password,
}

/// Local stand-in for a File Upload API v2 host.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// State directory (database and blobs); survives restarts.
    #[arg(long)]
    data: PathBuf,
    /// API key 1 (the real product requires 64 characters).
    #[arg(long, default_value = "")]
    key1: String,
    /// API key 2 (the real product requires 64 characters).
    #[arg(long, default_value = "")]
    key2: String,
    /// How /authorize authenticates.
    #[arg(long, value_enum, default_value = "keys")]
    auth: Auth,
    #[arg(long, default_value = "admin")]
    username: String,
    #[arg(long, default_value = "")]
    password: String,
    /// A token expires after this many seconds without use.
    #[arg(long, default_value_t = 3600)]
    token_idle_secs: u64,
    /// Limit API requests per second (token bucket, burst = N); beyond: 429.
    #[arg(long)]
    rate_limit_rps: Option<u32>,
    /// Delay every request by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability (0..1) that a request gets an injected fault.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault decisions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated fault kinds to draw from: 502,500,drop,truncate,lost (default all).
    #[arg(long, value_delimiter = ',')]
    fault_kinds: Vec<String>,
    /// Largest accepted upload in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024 * 1024)]
    max_upload_size: u64,
    /// Storage quota in bytes (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    max_storage_bytes: u64,
    /// 1 = uploads allowed, 0 = refused.
    #[arg(long, default_value_t = 1)]
    can_upload: u8,
    /// Reported in /account/package.
    #[arg(long, default_value_t = 100)]
    concurrent_uploads: u32,
    /// Base URL used in file and download URLs (default http://HOST:PORT).
    #[arg(long)]
    public_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a redirected log stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let mut config = Config::new(&args.data, &args.key1, &args.key2);
    config.auth = match args.auth {
        Auth::Keys => AuthMode::Keys,
        Auth::Password => AuthMode::Password,
    };
    config.username = args.username;
    config.password = args.password;
    config.token_idle_secs = args.token_idle_secs;
    config.rate_limit_rps = args.rate_limit_rps;
    config.latency_ms = args.latency_ms;
    config.fault_rate = args.fault_rate;
    config.seed = args.seed;
    config.fault_kinds = args
        .fault_kinds
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<FaultKind>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    config.max_upload_size = args.max_upload_size;
    config.max_storage_bytes = args.max_storage_bytes;
    config.can_upload = args.can_upload != 0;
    config.concurrent_uploads = args.concurrent_uploads;
    config.public_url = args.public_url;
    if config.auth == AuthMode::Keys && (config.key1.len() != 64 || config.key2.len() != 64) {
        tracing::warn!("--key1/--key2 are not 64 characters long; /authorize will refuse them");
    }

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}/api/v2/")?;
        out.flush()?;
    }
    tracing::info!(%addr, data = %args.data.display(), "emulator started");
    dcsync_emulator::serve(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await
    .context("server failed")?;
    Ok(())
}
