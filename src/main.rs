//! The `dcsync` binary: parses the command line, sets up logging, runs the
//! command and turns its outcome into an exit code. `anyhow`-free: errors are
//! the CLI layer's `CliError`, printed once on stderr.

use clap::Parser;
use dcsync::cli::{self, Cli, Command, LogFormat};
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Logs to stderr (text or JSON) and optionally to a daily-rotated file.
/// The returned guard flushes the file writer when dropped.
fn init_logs(
    level: &str,
    format: LogFormat,
    file: Option<&Path>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = EnvFilter::try_from_env("DCSYNC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("dcsync={level},warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (file_layer, guard) = match file {
        Some(path) => {
            // Owner-only files, a new one each day (FILE.YYYY-MM-DD).
            let appender = dcsync::cli::logfile::DailyLog::new(path);
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = match format {
                LogFormat::Text => tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .boxed(),
                LogFormat::Json => tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(writer)
                    .boxed(),
            };
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .init();
    guard
}

fn main() {
    let cli = Cli::parse();
    // The daemon reports each action at info level by default (the demo
    // tells its own story on stdout: warnings only, unless -v).
    let daemon = matches!(cli.command, Command::Daemon);
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) if daemon => "info",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let _log_guard = init_logs(level, cli.log_format, cli.log_file.as_deref());

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", dcsync::model::printable_text(&e.to_string()));
            e.exit_code()
        }
    };
    std::process::exit(code);
}
