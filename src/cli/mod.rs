//! The `dcsync` command line: arguments, dispatch, output and exit codes.
//!
//! Owns what the user types and sees: clap definitions, turning the config
//! into a client, human and `--json` output on stdout, logs and progress on
//! stderr, and the mapping of failures to exit codes (0 ok, 1 operation
//! failed, 2 usage or config error). It holds no sync logic of its own.

/// `println!` that ends the process quietly when stdout is a closed pipe
/// (`dcsync remote tree | head`) instead of panicking, and shows control
/// characters (from remote or local names) escaped.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($t)*);
        if let Err(e) = writeln!(
            std::io::stdout().lock(),
            "{}",
            $crate::model::printable_text(&text)
        ) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod conflict_cmd;
pub use conflict_cmd::{Keep, resolve_pair};
mod demo;
#[path = "gen.rs"]
pub mod generate;
pub mod logfile;
mod progress;
mod remote_cmd;
mod sync_cmd;
mod trash_cmd;

use crate::api::{ApiError, Client, ClientOptions, TokenStore};
use crate::config::{Config, ConfigError, EnvOverrides};
use crate::daemon::control::Request;
use crate::remote::RemoteError;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use remote_cmd::RemoteCmd;

/// Keeps a local folder and a folder on a File Upload API v2 host in sync.
#[derive(Debug, Parser)]
#[command(name = "dcsync", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: the platform config dir, e.g. ~/.config/dcsync/config.toml).
    #[arg(long, global = true, env = "DCSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr (and in --log-file).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also write logs to FILE (owner-only; each new day, UTC, moves it to
    /// FILE.YYYY-MM-DD; the last 7 days are kept).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (journald-friendly).
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try dcsync with no account: sync a demo folder against the bundled emulator.
    Demo {
        /// Where to put the demo folder, host data and state (default: a new temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run the scripted demo and exit instead of waiting for Ctrl-C.
        #[arg(long)]
        no_wait: bool,
    },
    /// Write a config file (mode 0600) and prepare the local folder.
    Init(Box<InitArgs>),
    /// Bring the local folder and the remote folder to the same state, once.
    Sync {
        /// Only this pair (its `name`; default: every pair of the config).
        pair: Option<String>,
        /// Show what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Go ahead even if the pass deletes more than max_delete_percent /
        /// max_delete_count of the tracked files.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Build the three trees even when nothing changed (a full pass
        /// normally starts with a quick check, in bounded memory, and ends
        /// there when both sides are as last synced).
        #[arg(long)]
        full: bool,
    },
    /// What dcsync knows about the sync pair: last sync, counts, conflicts, skipped paths.
    Status {
        /// Only this pair (its `name`; default: every pair of the config).
        pair: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Run continuously: watch the local folders, poll the host, sync what changes.
    Daemon,
    /// Pause the running daemon (all pairs, or the named one).
    Pause { pair: Option<String> },
    /// Resume a paused daemon (all pairs, or the named one).
    Resume { pair: Option<String> },
    /// Ask the running daemon to sync now instead of waiting for the next poll.
    SyncNow { pair: Option<String> },
    /// Show or change the running daemon's bandwidth limit (all its transfers).
    #[command(
        after_help = "Examples:\n  dcsync bwlimit              show the limit in force\n  dcsync bwlimit 2M           2 MiB/s each way until reset\n  dcsync bwlimit 4M:off       4 MiB/s up, downloads unlimited\n  dcsync bwlimit \"08:00,512k 19:00,off\"   a timetable (local time)\n  dcsync bwlimit reset        back to the config's `bwlimit`"
    )]
    Bwlimit {
        /// A limit in rclone's syntax, `off`, or `reset`; none: show it.
        limit: Option<String>,
    },
    /// Print the URL that logs a browser into the daemon's web console
    /// (needs `web_listen` in the config).
    #[command(
        after_help = "The URL carries a secret token: anyone with it can pause, resume and settle conflicts.\nOn a NAS, reach it through an SSH tunnel:\n  ssh -L 8385:127.0.0.1:8385 nas   then open the printed URL on your desktop."
    )]
    Web {
        /// Also open it in the desktop's browser (xdg-open / open).
        #[arg(long)]
        open: bool,
    },
    /// The conflicts kept as two versions: which is which, and where.
    Conflicts {
        /// Only this pair (its `name`).
        pair: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Settle a kept conflict: keep the local version, the host's, or both.
    Resolve {
        /// The conflicted path (or its copy), as `dcsync conflicts` shows it.
        path: String,
        /// Which version to keep under the path.
        #[arg(long, value_enum)]
        keep: conflict_cmd::Keep,
        /// The pair (needed when the config has several).
        #[arg(long)]
        pair: Option<String>,
    },
    /// The local trash: list what it holds, put a file back.
    Trash {
        #[command(subcommand)]
        cmd: trash_cmd::TrashCmd,
    },
    /// Work with files on the host directly (ls, put, get, mv, ...).
    Remote {
        #[command(subcommand)]
        cmd: RemoteCmd,
    },
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `dcsync man > dcsync.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The host's API base URL.
    #[arg(long, default_value = "https://disccloud.com/api/v2/")]
    pub api_url: String,
    /// First API key (64 characters). Visible to other local users in the
    /// process list: prefer --key1-file, or DCSYNC_KEY1 in the environment.
    #[arg(long)]
    pub key1: Option<String>,
    /// Second API key (64 characters); see --key1.
    #[arg(long)]
    pub key2: Option<String>,
    /// Read the first API key from this file (its first line).
    #[arg(long, conflicts_with = "key1")]
    pub key1_file: Option<PathBuf>,
    /// Read the second API key from this file (its first line).
    #[arg(long, conflicts_with = "key2")]
    pub key2_file: Option<PathBuf>,
    /// Username, for hosts that authorize by username and password.
    #[arg(long)]
    pub username: Option<String>,
    /// Password (visible in the process list: prefer --password-file or
    /// DCSYNC_PASSWORD).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from this file (its first line).
    #[arg(long, conflicts_with = "password")]
    pub password_file: Option<PathBuf>,
    /// Local folder to sync (created if missing).
    #[arg(long)]
    pub local_path: Option<PathBuf>,
    /// Remote folder to sync, a /-separated path from the account root.
    #[arg(long)]
    pub remote_path: Option<String>,
    /// Directory for state (database, shared token).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Some items failed; each was already reported on stderr.
    #[error("{0}")]
    Partial(String),
    /// A dry run found that the real pass would stop for safety.
    #[error("{0}")]
    WouldStop(String),
}

impl CliError {
    /// 2 for usage and config errors, 3 for safety stops, 1 for failed operations.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Engine(e) if e.is_safety_stop() => 3,
            CliError::WouldStop(_) => 3,
            CliError::Engine(e)
                if matches!(
                    e.api_error(),
                    Some(ApiError::BadCredentials { .. } | ApiError::Config(_))
                ) =>
            {
                2
            }
            CliError::Usage(_) | CliError::Config(_) => 2,
            CliError::Api(ApiError::BadCredentials { .. } | ApiError::Config(_)) => 2,
            CliError::Remote(RemoteError::Api(
                ApiError::BadCredentials { .. } | ApiError::Config(_),
            )) => 2,
            CliError::Remote(RemoteError::Invalid { .. }) => 2,
            _ => 1,
        }
    }
}

/// What every command needs to know about how to print.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Progress bars are drawn (stderr is a terminal and not --quiet).
    pub progress: bool,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ui = Ui {
        progress: !cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    if let Command::Demo { dir, no_wait } = cli.command {
        return demo::run(dir, !no_wait).await;
    }
    // Generated from the CLI definition alone: no config needed.
    match &cli.command {
        Command::Completions { shell } => {
            generate::completions(*shell, &mut std::io::stdout().lock());
            return Ok(());
        }
        Command::Man => {
            return match generate::man_page(&mut std::io::stdout().lock()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
                    path: PathBuf::from("<stdout>"),
                    source: e,
                }),
                _ => Ok(()),
            };
        }
        _ => {}
    }
    let config_path = match &cli.config {
        Some(p) => p.clone(),
        None => crate::config::default_path()?,
    };
    match cli.command {
        Command::Demo { .. } | Command::Completions { .. } | Command::Man => Ok(()),
        Command::Init(args) => init(&config_path, *args),
        Command::Sync {
            pair,
            dry_run,
            allow_mass_delete,
            full,
        } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            let flags = sync_cmd::SyncFlags {
                dry_run,
                allow_mass_delete,
                full,
            };
            sync_cmd::sync(&config, &config_path, pair.as_deref(), flags, ui, cli.quiet).await
        }
        Command::Status { pair, json } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            sync_cmd::status(&config, &config_path, pair.as_deref(), json).await
        }
        Command::Daemon => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            let pairs = sync_cmd::pairs(&config, &config_path)?;
            let client = client_for(&config)?;
            let full_rescan = match &config.full_rescan_interval {
                Some(v) => {
                    crate::config::parse_duration("full_rescan_interval", v).map_err(|m| {
                        CliError::Config(ConfigError::Invalid {
                            path: config_path.clone(),
                            message: m,
                        })
                    })?
                }
                None => crate::config::DEFAULT_FULL_RESCAN,
            };
            let socket = crate::daemon::socket_path(
                &sync_cmd::state_dir(&config, &config_path)?,
                &config_path,
            );
            let web = config.web_settings(&socket).map_err(|m| {
                CliError::Config(ConfigError::Invalid {
                    path: config_path.clone(),
                    message: m,
                })
            })?;
            let settings = crate::daemon::Settings {
                socket,
                full_rescan,
                debounce: std::time::Duration::from_millis(500),
                notify_command: config.notify_command.clone(),
                web,
            };
            crate::daemon::run(client, pairs, settings, shutdown_signal()).await?;
            Ok(())
        }
        Command::Pause { pair } => control(&config_path, Request::Pause { pair }).await,
        Command::Resume { pair } => control(&config_path, Request::Resume { pair }).await,
        Command::SyncNow { pair } => control(&config_path, Request::SyncNow { pair }).await,
        Command::Bwlimit { limit } => control(&config_path, Request::Bwlimit { limit }).await,
        Command::Web { open } => web_url(&config_path, open),
        Command::Conflicts { pair, json } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            sync_cmd::conflicts(&config, &config_path, pair.as_deref(), json)
        }
        Command::Resolve { path, keep, pair } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            conflict_cmd::resolve(&config, &config_path, pair.as_deref(), &path, keep)
        }
        Command::Trash { cmd } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            trash_cmd::run(&config, &config_path, cmd)
        }
        Command::Remote { cmd } => {
            let config = Config::load(&config_path, &EnvOverrides::from_env())?;
            let client = client_with(&config, true)?;
            remote_cmd::run(&client, cmd, ui).await
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (service managers).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut t) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = t.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Sends a control request to the running daemon and prints the pairs.
/// `dcsync web`: the console's login URL (the address a running daemon
/// noted, else the configured one).
fn web_url(config_path: &std::path::Path, open: bool) -> Result<(), CliError> {
    let config = Config::load(config_path, &EnvOverrides::from_env())?;
    let socket =
        crate::daemon::socket_path(&sync_cmd::state_dir(&config, config_path)?, config_path);
    let invalid = |message: String| {
        CliError::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            message,
        })
    };
    let Some(web) = config.web_settings(&socket).map_err(invalid)? else {
        return Err(CliError::Usage(format!(
            "the web console is off: add `web_listen = \"127.0.0.1:8385\"` to {}, then restart the daemon",
            config_path.display()
        )));
    };
    web.check().map_err(|e| invalid(e.to_string()))?;
    let addr = std::fs::read_to_string(crate::web::address_path(&socket))
        .ok()
        .and_then(|a| a.trim().parse().ok());
    if addr.is_none() {
        eprintln!("note: no running daemon noted its console; start one with `dcsync daemon`");
    }
    let token = crate::web::token(&web.token_file).map_err(|e| CliError::Partial(e.to_string()))?;
    let url = crate::web::login_url(addr.unwrap_or(web.listen), &token);
    out!("{url}");
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(e) = std::process::Command::new(opener).arg(&url).status() {
            eprintln!("could not run {opener} ({e}); open the URL above yourself");
        }
    }
    Ok(())
}

async fn control(config_path: &std::path::Path, req: Request) -> Result<(), CliError> {
    let config = Config::load(config_path, &EnvOverrides::from_env())?;
    let socket =
        crate::daemon::socket_path(&sync_cmd::state_dir(&config, config_path)?, config_path);
    let resp = crate::daemon::control::request(&socket, &req)
        .await
        .map_err(|e| {
            CliError::Partial(format!(
                "no dcsync daemon answers on {} ({e}); start one with `dcsync daemon`",
                socket.display()
            ))
        })?;
    if !resp.ok {
        return Err(CliError::Usage(resp.error.unwrap_or_default()));
    }
    if let Request::Bwlimit { limit } = &req {
        let now = resp.bwlimit.as_deref().unwrap_or("off");
        match limit {
            None => out!("bandwidth limit: {now}"),
            Some(_) => out!("bandwidth limit is now: {now}"),
        }
        return Ok(());
    }
    let (verb, pair) = match &req {
        Request::Pause { pair } => ("pause", pair),
        Request::Resume { pair } => ("resume", pair),
        Request::SyncNow { pair } => ("sync now", pair),
        Request::Status | Request::Bwlimit { .. } => ("status", &None),
    };
    let names: Vec<&str> = resp
        .pairs
        .iter()
        .filter(|p| pair.as_ref().is_none_or(|n| *n == p.name))
        .map(|p| p.name.as_str())
        .collect();
    out!("{verb}: sent to {}", names.join(", "));
    Ok(())
}

/// Builds the API client for a config, sharing the token with other
/// dcsync processes of the same account.
pub fn client_for(config: &Config) -> Result<Client, CliError> {
    client_with(config, false)
}

/// `interactive`: a command someone waits for (`dcsync remote ...`) tries
/// an unanswered request twice, not six times, so it gives up within about
/// two request timeouts with a clear error.
fn client_with(config: &Config, interactive: bool) -> Result<Client, CliError> {
    if config.insecure_http() {
        tracing::warn!(
            api_url = %config.api_url,
            "allow_insecure_http is set: keys and files travel unencrypted to a host that is not on this machine"
        );
    }
    let creds = config.credentials()?;
    let mut opts = ClientOptions::new(config.api_url.clone(), creds);
    opts.read_timeout = match &config.request_timeout {
        Some(t) => crate::config::parse_duration("request_timeout", t).map_err(|message| {
            CliError::Config(crate::config::ConfigError::Invalid {
                path: config.origin.file.clone().unwrap_or_default(),
                message,
            })
        })?,
        None => crate::config::DEFAULT_REQUEST_TIMEOUT,
    };
    if interactive {
        opts.retry.max_timeouts = 2;
    }
    opts.max_requests_per_second = Some(
        config
            .max_requests_per_second
            .unwrap_or(crate::config::DEFAULT_MAX_RPS),
    );
    if let Some(b) = &config.bwlimit {
        let schedule = crate::api::bwlimit::Schedule::parse(b).map_err(|message| {
            CliError::Config(crate::config::ConfigError::Invalid {
                path: config.origin.file.clone().unwrap_or_default(),
                message,
            })
        })?;
        opts.bandwidth = Some(std::sync::Arc::new(crate::api::bwlimit::Bandwidth::new(
            schedule,
        )));
    }
    if let Some(dir) = &config.state_dir {
        let key = opts.credentials.account_key(&opts.api_url);
        opts.token_store = TokenStore::in_dir(&dir.join("tokens"), &key);
    }
    Ok(Client::new(opts)?)
}

/// The first line of a secret file (without its line end).
fn secret_from_file(p: &std::path::Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(p).map_err(|source| CliError::Io {
        path: p.to_path_buf(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

fn init(path: &std::path::Path, mut a: InitArgs) -> Result<(), CliError> {
    // Secrets from files keep them out of the process list.
    if let Some(f) = a.key1_file.take() {
        a.key1 = Some(secret_from_file(&f)?);
    }
    if let Some(f) = a.key2_file.take() {
        a.key2 = Some(secret_from_file(&f)?);
    }
    if let Some(f) = a.password_file.take() {
        a.password = Some(secret_from_file(&f)?);
    }
    // Folders given on the command line: `~` is the home folder (also in
    // `--local-path=~/x`, which no shell expands) and a relative path is
    // relative to where the command runs; the config gets them absolute.
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    let absolute = |p: PathBuf| crate::config::resolve_path(&p, &cwd, home.as_deref());
    a.local_path = a.local_path.take().map(absolute);
    a.state_dir = a.state_dir.take().map(absolute);
    let new_settings = a.key1.is_some()
        || a.key2.is_some()
        || a.username.is_some()
        || a.password.is_some()
        || a.local_path.is_some()
        || a.remote_path.is_some()
        || a.state_dir.is_some();
    if path.exists() && !a.force && !new_settings {
        return mark_roots(path);
    }
    let config = Config {
        api_url: a.api_url,
        key1: a.key1,
        key2: a.key2,
        username: a.username,
        password: a.password,
        local_path: a.local_path.clone(),
        remote_path: a.remote_path,
        state_dir: a.state_dir,
        ..Config::default()
    };
    let env = EnvOverrides::from_env();
    let mut check = config.clone();
    check.key1 = check.key1.or(env.key1);
    check.key2 = check.key2.or(env.key2);
    check.password = check.password.or(env.password);
    if let Err(e) = check.credentials() {
        return Err(CliError::Usage(format!(
            "{e}: pass --key1-file and --key2-file (or --username and --password-file), or export DCSYNC_KEY1/DCSYNC_KEY2"
        )));
    }
    // The same checks as every later command makes, before anything is
    // written (an api_url without a scheme, a key of the wrong length).
    check.check(path)?;
    config.write_new(path, a.force)?;
    out!("wrote {}", path.display());
    if let Some(local) = &a.local_path {
        mark_root(local)?;
    }
    Ok(())
}

/// `dcsync init` on an existing config: makes every configured local
/// folder a sync root (creates it and its `.dcsync/` marker). This is the
/// only place a sync root is created.
fn mark_roots(path: &std::path::Path) -> Result<(), CliError> {
    let config = Config::load(path, &EnvOverrides::from_env())?;
    let pairs = sync_cmd::pairs(&config, path)?;
    if pairs.is_empty() {
        return Err(CliError::Usage(format!(
            "{} names no local folder: set local_path (or add [[pair]] tables), then run `dcsync init` again",
            path.display()
        )));
    }
    for p in &pairs {
        mark_root(&p.engine.local_root)?;
    }
    Ok(())
}

/// Creates `local/.dcsync/` (and `local` if needed).
fn mark_root(local: &std::path::Path) -> Result<(), CliError> {
    let marker = local.join(crate::engine::MARKER);
    if std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_dir()) {
        out!("{} is already a sync root", local.display());
        return Ok(());
    }
    std::fs::create_dir_all(local).map_err(|source| CliError::Io {
        path: local.to_path_buf(),
        source,
    })?;
    {
        // Ours alone: the trash and temp files live below it.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&marker)
            .map_err(|source| CliError::Io {
                path: marker.clone(),
                source,
            })?;
    }
    out!("{} is now a sync root", local.display());
    Ok(())
}
