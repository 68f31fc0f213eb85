//! The daemon: runs the engine continuously for every configured pair.
//!
//! Owns the main loops: per pair, a notify watcher (debounced; behind the
//! [`LocalEvents`] seam, so the simulation can feed the loop itself, see
//! [`pair_loop`]) and a remote poller feed the pair's state machine
//! (`machine`), which decides when a
//! pass runs (full or focused), when to poll, how long to back off when the
//! host is down and when to look for a vanished root; the loop carries that
//! out. Owns echo suppression (the pass's own local writes do not trigger
//! another pass) and the control socket (`control`). Shutdown: a watch channel tells every
//! task to stop; an interrupted pass leaves open journal intents that the
//! next start resolves. It never deletes anything itself and never disables
//! the shared access token (other processes use it).

pub mod control;
mod machine;
pub mod stats;
pub mod sweep;
mod watch;

pub use watch::Batch;

use crate::api::host::Host;
use crate::api::{ApiError, Client};
use crate::clock::{self, Clock, SystemClock};
use crate::engine::{self, EngineError, PairSpec, Reporter, SyncRequest};
use crate::model::RelPath;
use crate::plan::Op;
use machine::{Action, HostSeen, PairMachine, PassResult};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio::time::Instant;

/// Daemon-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The control socket.
    pub socket: PathBuf,
    /// A full pass runs at least this often.
    pub full_rescan: Duration,
    /// Quiet time after a local change before a pass starts.
    pub debounce: Duration,
    /// Run (through `sh -c`, a short JSON on stdin) when a pair enters an
    /// error or paused state, stops for a mass delete, or keeps a conflict.
    pub notify_command: Option<String>,
    /// The web console and `/metrics` (`web_listen`), if configured.
    pub web: Option<crate::web::WebSettings>,
}

/// How long a notify command may run before it is stopped.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the notify command for `event` (in the background; its failure is
/// logged, never the pair's problem).
fn notify(settings: &Settings, pair: &str, event: &str, message: &str, now: &str) {
    let Some(cmd) = settings.notify_command.clone() else {
        return;
    };
    let body = serde_json::json!({
        "event": event,
        "pair": pair,
        "message": message,
        "time": now,
    })
    .to_string();
    let pair = pair.to_owned();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%pair, error = %e, "could not run notify_command");
                return;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            if let Err(e) = stdin.write_all(body.as_bytes()).await {
                tracing::debug!(%pair, error = %e, "notify_command did not read its input");
            }
            drop(stdin);
        }
        match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
            Ok(Ok(st)) if st.success() => {}
            Ok(Ok(st)) => tracing::warn!(%pair, status = %st, "notify_command failed"),
            Ok(Err(e)) => tracing::warn!(%pair, error = %e, "notify_command failed"),
            Err(_) => tracing::warn!(%pair, "notify_command ran longer than 30 s; stopped"),
        }
    });
}

/// What a pair is doing, as `dcsync status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairStatus {
    pub name: String,
    pub local_path: String,
    pub remote_path: String,
    /// `starting`, `idle`, `syncing`, `paused`, `waiting` or `error`.
    pub state: String,
    /// Why it is paused, waiting or in error.
    pub detail: Option<String>,
    pub ops_planned: u64,
    pub ops_done: u64,
    pub last_sync: Option<String>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    /// Seconds until the next look at the remote.
    pub next_poll_secs: Option<u64>,
    pub watching: bool,
    /// Transfers in flight.
    #[serde(default)]
    pub transfers: Vec<TransferStatus>,
    /// Since when the host has not been reachable (cleared by a pass
    /// that reaches it).
    #[serde(default)]
    pub host_down_since: Option<String>,
    /// What the last pass left out, and why (the first
    /// [`SKIPPED_SHOWN`]; entries the ignore rules leave out on the host
    /// are not listed).
    #[serde(default)]
    pub skipped: Vec<SkippedPath>,
    /// A mass-delete stop waiting for the user's word (`confirm-delete`).
    #[serde(default)]
    pub mass_delete: Option<MassDeleteStop>,
    /// Where the poller's sweep over the remote folders stands.
    #[serde(default)]
    pub sweep: Option<sweep::SweepStatus>,
}

/// How many skipped paths a pair's status lists.
pub const SKIPPED_SHOWN: usize = 200;

/// A path a pass left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SkippedPath {
    pub path: String,
    pub reason: String,
}

/// A pass the mass-delete guard stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MassDeleteStop {
    pub message: String,
    /// How many files it would delete.
    pub count: u64,
    /// What it would delete (the first paths).
    pub paths: Vec<String>,
}

impl PairStatus {
    /// A pair whose loop has not run a pass yet.
    fn starting(pair: &PairSpec) -> PairStatus {
        PairStatus {
            name: pair.name.clone(),
            local_path: pair.engine.local_root.display().to_string(),
            remote_path: pair.engine.remote_path.clone(),
            state: "starting".into(),
            ..Default::default()
        }
    }
}

/// One file on its way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferStatus {
    pub path: String,
    pub done: u64,
    pub total: u64,
}

/// A control command for one pair (or all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    Pause,
    Resume,
    SyncNow,
    /// Resume after a mass-delete stop, letting the next pass delete
    /// what the guard held back (once).
    ConfirmDelete,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("control socket {}: {source}", .path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a dcsync daemon is already running for this config (socket {})", .0.display())]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
}

/// Shared between the pair loops and the control server.
pub(crate) struct Shared {
    pub status: Mutex<Vec<PairStatus>>,
    pub commands: Vec<mpsc::UnboundedSender<Command>>,
    /// The bandwidth limit of the daemon's transfers (`dcsync bwlimit`).
    pub bandwidth: Option<Arc<crate::api::bwlimit::Bandwidth>>,
    /// The pairs, in the order of `status`.
    pub specs: Vec<PairSpec>,
    /// Activity and counters (the console, `/metrics`).
    pub stats: stats::Stats,
    /// The daemon's API client (its request counters), when it has one.
    pub client: Option<Client>,
}

impl Shared {
    pub(crate) fn new(
        specs: Vec<PairSpec>,
        commands: Vec<mpsc::UnboundedSender<Command>>,
        client: Option<Client>,
    ) -> Shared {
        Shared {
            status: Mutex::new(specs.iter().map(PairStatus::starting).collect()),
            commands,
            bandwidth: client.as_ref().map(Client::bandwidth),
            stats: stats::Stats::new(specs.len()),
            specs,
            client,
        }
    }

    /// A copy of every pair's status.
    pub(crate) fn statuses(&self) -> Vec<PairStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut PairStatus)) {
        if let Ok(mut s) = self.status.lock()
            && let Some(p) = s.get_mut(idx)
        {
            f(p);
        }
    }
}

/// Where a pair's local change events come from: the OS watcher
/// ([`OsWatcher`]) in the daemon, the simulated world in the simulation.
pub trait LocalEvents: Send + Sync {
    /// Starts watching `root`: batches of changed paths go to `tx`, with
    /// `debounce` of quiet before each, until the returned guard is dropped.
    /// `None`: it cannot watch (the pair then finds local changes by its
    /// full passes).
    fn start(
        &self,
        root: &Path,
        debounce: Duration,
        tx: mpsc::UnboundedSender<Batch>,
    ) -> Option<Box<dyn Send>>;
}

/// notify's debounced watcher (see `watch`).
pub struct OsWatcher;

impl LocalEvents for OsWatcher {
    fn start(
        &self,
        root: &Path,
        debounce: Duration,
        tx: mpsc::UnboundedSender<Batch>,
    ) -> Option<Box<dyn Send>> {
        watch::start(root, debounce, tx).map(|w| Box::new(w) as Box<dyn Send>)
    }
}

/// A pair's loop run on its own (see [`pair_loop`]): its status, and a way
/// to send it commands.
pub struct PairHandle {
    shared: Arc<Shared>,
}

impl PairHandle {
    /// What the pair is doing now.
    pub fn status(&self) -> PairStatus {
        self.shared
            .status
            .lock()
            .ok()
            .and_then(|s| s.first().cloned())
            .unwrap_or_default()
    }

    /// The pair's counters (passes by kind, ops, bytes).
    pub fn counters(&self) -> stats::PairCounters {
        self.shared.stats.counters(0)
    }

    /// Sends `cmd` to the pair; false when its loop has ended.
    pub fn command(&self, cmd: Command) -> bool {
        self.shared
            .commands
            .first()
            .is_some_and(|tx| tx.send(cmd).is_ok())
    }
}

/// One pair's loop without the control socket, for embedding: the
/// simulation runs it with its own host, local events and wall clock
/// (`clock`: what passes and the activity list read as "now") under
/// tokio's paused clock (`jitter_seed` makes its backoff reproducible).
/// The returned future is the loop; it ends when `stop` turns true.
pub fn pair_loop(
    host: Arc<dyn Host>,
    pair: PairSpec,
    settings: Settings,
    events: Arc<dyn LocalEvents>,
    clock: Arc<dyn Clock>,
    jitter_seed: u64,
    stop: tokio_watch::Receiver<bool>,
) -> (impl std::future::Future<Output = ()> + Send, PairHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new(vec![pair.clone()], vec![tx], None));
    let ctx = PairLoop {
        idx: 0,
        jitter_seed,
        client: host,
        events,
        pair,
        settings,
        shared: shared.clone(),
        clock,
    };
    (ctx.run(rx, stop), PairHandle { shared })
}

/// Runs until `shutdown` completes. Each pair runs on its own task.
pub async fn run(
    client: Client,
    pairs: Vec<PairSpec>,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let listener = control::bind(&settings.socket).await?;
    // The console: refused (before anything runs) when its address would
    // expose it by mistake or is taken.
    let web = match &settings.web {
        Some(w) => Some((
            crate::web::bind(w).await?,
            crate::web::token(&w.token_file)?,
            w.metrics_without_token,
        )),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for _ in &pairs {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        receivers.push(rx);
    }
    let shared = Arc::new(Shared::new(pairs.clone(), senders, Some(client.clone())));
    let mut tasks = tokio::task::JoinSet::new();
    let host: Arc<dyn Host> = Arc::new(client);
    let events: Arc<dyn LocalEvents> = Arc::new(OsWatcher);
    for (idx, (pair, rx)) in pairs.into_iter().zip(receivers).enumerate() {
        // Every line a pair's loop (and its passes) logs names the pair.
        let span = tracing::info_span!("pair", pair = %pair.name);
        let ctx = PairLoop {
            idx,
            jitter_seed: rand::random(),
            client: host.clone(),
            events: events.clone(),
            pair,
            settings: settings.clone(),
            shared: shared.clone(),
            clock: Arc::new(SystemClock),
        };
        tasks.spawn(tracing::Instrument::instrument(
            ctx.run(rx, stop_rx.clone()),
            span,
        ));
    }
    tasks.spawn(control::serve(listener, shared.clone(), stop_rx.clone()));
    let web_addr_file = crate::web::address_path(&settings.socket);
    if let Some((web_listener, token, open_metrics)) = web {
        if let Ok(addr) = web_listener.local_addr() {
            // Where `dcsync web` finds the console (the port may be chosen
            // by the system when `web_listen` says port 0).
            if let Err(e) = std::fs::write(&web_addr_file, addr.to_string()) {
                tracing::warn!(path = %web_addr_file.display(), error = %e, "could not note the console's address");
            }
            tracing::info!(%addr, "web console listening; `dcsync web` prints the login URL");
        }
        tasks.spawn(crate::web::serve(
            web_listener,
            shared.clone(),
            token,
            open_metrics,
            stop_rx.clone(),
        ));
    }
    tracing::info!(socket = %settings.socket.display(), "daemon started");

    shutdown.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    // Each loop stops at its next await point; a pass in flight is
    // abandoned there and its open journal intents are resolved next start.
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some tasks did not stop within 20 s; leaving them");
        tasks.abort_all();
    }
    let _ = std::fs::remove_file(&settings.socket);
    let _ = std::fs::remove_file(&web_addr_file);
    Ok(())
}

/// One pair's loop and what it needs.
struct PairLoop {
    idx: usize,
    /// Seeds the jitter of the backoff (random in the daemon, fixed in the
    /// simulation).
    jitter_seed: u64,
    client: Arc<dyn Host>,
    events: Arc<dyn LocalEvents>,
    pair: PairSpec,
    settings: Settings,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
}

/// Collects what a pass touches locally (for echo suppression) and counts ops.
struct DaemonReporter {
    idx: usize,
    shared: Arc<Shared>,
    touched: Mutex<HashSet<RelPath>>,
    /// The pair's name and the clock (for the activity list).
    name: String,
    clock: Arc<dyn Clock>,
}

impl Reporter for DaemonReporter {
    fn planned(&self, _round: usize, ops: &[Op]) {
        self.shared.update(self.idx, |s| {
            s.state = "syncing".into();
            s.ops_planned += ops.len() as u64;
        });
        if let Ok(mut t) = self.touched.lock() {
            for op in ops {
                t.insert(op.path().clone());
                if let Op::MoveLocal { from, .. } = op {
                    t.insert(from.clone());
                }
            }
        }
    }
    fn transfer_sink(&self) -> Option<engine::TransferSink> {
        let (shared, idx) = (self.shared.clone(), self.idx);
        Some(Arc::new(move |path: &RelPath, done, total| {
            shared.update(idx, |s| {
                let p = path.as_str().to_owned();
                match total {
                    Some(total) => match s.transfers.iter_mut().find(|t| t.path == p) {
                        Some(t) => t.done = done,
                        None => s.transfers.push(TransferStatus {
                            path: p,
                            done,
                            total,
                        }),
                    },
                    None => s.transfers.retain(|t| t.path != p),
                }
            })
        }))
    }

    fn op_done(&self, op: &Op, result: &Result<(), String>) {
        // The engine logs each op itself; only count and remember here.
        let now = clock::datetime(self.clock.now());
        self.shared.stats.op(self.idx, &self.name, now, op, result);
        self.shared.update(self.idx, |s| s.ops_done += 1);
    }
}

impl PairLoop {
    async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut stop: tokio_watch::Receiver<bool>,
    ) {
        let root = self.pair.engine.local_root.clone();
        let (ev_tx, mut events) = mpsc::unbounded_channel::<watch::Batch>();
        let mut watcher = self
            .events
            .start(&root, self.settings.debounce, ev_tx.clone());
        self.shared
            .update(self.idx, |s| s.watching = watcher.is_some());
        // Every decision (when to sync, full or focused, backoff, polls,
        // waiting for the root, commands) is the machine's; this loop only
        // feeds it events and carries out its actions.
        let timing = machine::Timing {
            poll_interval: self.pair.poll_interval,
            full_rescan: self.settings.full_rescan,
        };
        let mut m = PairMachine::new(Instant::now(), timing, watcher.is_some(), self.jitter_seed);
        // The sweep's share of the budget per poll follows the mean gap.
        let mut sweep = sweep::Sweep::new(
            Instant::now(),
            machine::mean_poll_gap(self.pair.poll_interval),
            self.pair.poll_budget,
        );
        let mut warned_slow_sweep = false;
        let mut cached: Option<Arc<crate::model::RemoteView>> = None;
        let mut allow_mass_delete = false;

        loop {
            if let Some(Action::Pass {
                focus,
                quick_check,
                host_from_polls,
            }) = m.pass(Instant::now())
            {
                let reporter = DaemonReporter {
                    idx: self.idx,
                    shared: self.shared.clone(),
                    touched: Mutex::new(HashSet::new()),
                    name: self.pair.name.clone(),
                    clock: self.clock.clone(),
                };
                let started = Instant::now();
                self.shared.update(self.idx, |s| {
                    s.state = "syncing".into();
                    s.ops_planned = 0;
                    s.ops_done = 0;
                });
                if let Some(f) = &focus {
                    tracing::debug!(
                        paths = f.paths.len(),
                        first = ?f.paths.first(),
                        host_folders = ?f.folders,
                        "focused pass"
                    );
                }
                let focus = focus.and_then(|f| {
                    cached.clone().map(|remote| engine::Focus {
                        remote,
                        paths: f.paths,
                        folders: f.folders,
                    })
                });
                let focused = focus.is_some();
                // A full pass lists everything again: the old tree stays only
                // for the quick check to hand back when nothing changed (the
                // engine drops it before it builds new trees).
                let keep = if focused || !quick_check {
                    None
                } else {
                    cached.take()
                };
                if !focused {
                    cached = None;
                }
                let request = SyncRequest {
                    focus,
                    // Once, after the user confirmed a mass-delete stop.
                    allow_mass_delete: std::mem::take(&mut allow_mass_delete),
                    quick_check,
                    // Only while the polls' sweep has its baseline and
                    // looks at every folder within `full_rescan_interval`
                    // (and has done so up to now).
                    host_from_polls: host_from_polls
                        && sweep_covers(&sweep, self.settings.full_rescan),
                    keep,
                    ..SyncRequest::default()
                };
                let pass = engine::sync(
                    self.client.as_ref(),
                    &self.pair.engine,
                    request,
                    self.clock.clone(),
                    &reporter,
                );
                let result = tokio::select! {
                    r = pass => r,
                    _ = stop.changed() => break,
                };
                // Our own writes come back as events: drop those, keep others.
                let touched = reporter.touched.into_inner().unwrap_or_default();
                // Events for paths the pass touched are echoes only if the
                // disk still matches what the pass recorded; a user edit in
                // the same moment must not be lost.
                let db = crate::state::StateDb::open(&self.pair.engine.db_path).ok();
                while let Ok(batch) = events.try_recv() {
                    let paths: Vec<RelPath> = watch::changed_paths(&root, &batch, &HashSet::new())
                        .into_iter()
                        .filter(|p| {
                            let ours = touched
                                .iter()
                                .any(|t| p.starts_with(t) || t.parent().is_some_and(|tp| tp == *p));
                            !(ours && is_echo(db.as_ref(), &root, p))
                        })
                        .collect();
                    sweep.touched(Instant::now(), &paths);
                    m.changes(paths, batch.rescan);
                }
                let now = clock::datetime(self.clock.now());
                let took = started.elapsed();
                let now_unix = clock::unix_secs(self.clock.now());
                match result {
                    Ok(report) => {
                        self.shared.stats.pass(
                            self.idx,
                            took,
                            Ok((
                                report.bytes_up,
                                report.bytes_down,
                                report.converged && report.errors.is_empty(),
                            )),
                            now_unix,
                        );
                        let skipped: Vec<SkippedPath> = report
                            .plan
                            .iter()
                            .flat_map(|p| p.skipped.iter())
                            .filter(|(_, why)| why != engine::IGNORED_REMOTE)
                            .take(SKIPPED_SHOWN)
                            .map(|(path, reason)| SkippedPath {
                                path: path.clone(),
                                reason: reason.clone(),
                            })
                            .collect();
                        self.shared.update(self.idx, |s| {
                            s.skipped = skipped;
                            s.mass_delete = None;
                        });
                        let clean = report.converged && report.errors.is_empty();
                        let kind = if report.windows > 0 {
                            "windowed"
                        } else if report.unchanged {
                            "unchanged"
                        } else if focused {
                            "focused"
                        } else if report.narrowed {
                            "narrowed"
                        } else {
                            "full"
                        };
                        self.shared.stats.pass_kind(self.idx, kind);
                        if report.conflicts > 0 {
                            notify(
                                &self.settings,
                                &self.pair.name,
                                "conflict",
                                &format!(
                                    "{} conflict(s) kept both versions; see `dcsync status`",
                                    report.conflicts
                                ),
                                &now,
                            );
                        }
                        match &report.remote_listed {
                            Some(listed) if focused => sweep.focused_pass(Instant::now(), listed),
                            Some(listed) => sweep.full_pass(Instant::now(), listed),
                            // The local side alone was looked at: the sweep
                            // goes on from where it is.
                            None if report.unchanged => {}
                            None => sweep.forget(),
                        }
                        cached = report.remote_view.clone();
                        m.pass_done(
                            Instant::now(),
                            PassResult::Ran {
                                clean,
                                needs_full: report.needs_full_pass,
                                cached: cached.is_some(),
                            },
                        );
                        self.shared.update(self.idx, |s| {
                            s.host_down_since = None;
                            s.last_sync = Some(now.clone());
                            s.last_result =
                                Some(if clean { "converged" } else { "incomplete" }.into());
                            s.state = "idle".into();
                            s.detail = None;
                            // Kept with its time until a clean pass.
                            if let Some(e) = report.errors.last() {
                                s.last_error = Some(format!("{now}: {e}"));
                            } else if clean {
                                s.last_error = None;
                            }
                        });
                    }
                    Err(e) => {
                        self.shared.stats.pass(self.idx, took, Err(()), now_unix);
                        sweep.forget();
                        let stop = match &e {
                            EngineError::MassDelete { count, paths, .. } => Some(MassDeleteStop {
                                message: e.to_string(),
                                count: *count,
                                paths: paths.clone(),
                            }),
                            _ => None,
                        };
                        self.shared.update(self.idx, |s| s.mass_delete = stop);
                        let result = pass_result(&e);
                        let wait = m.pass_done(Instant::now(), result);
                        self.on_error(&e, &now, result, wait, m.failures());
                    }
                }
            }
            // The pass may have left more to do (a full pass a focused one
            // asked for, changes that came in while it ran): run it now,
            // not at the next event or timer (#11: a new folder whose file
            // events the watcher missed waited for the next poll).
            if m.pass_due(Instant::now()) {
                continue;
            }
            let poll_at = m.next_poll_at();
            let secs = poll_at.saturating_duration_since(Instant::now()).as_secs();
            let swept = sweep.has_baseline().then(|| sweep.status(Instant::now()));
            if let Some(st) = &swept
                && !warned_slow_sweep
                && st.round_secs > self.settings.full_rescan.as_secs()
            {
                warned_slow_sweep = true;
                tracing::warn!(
                    pair = %self.pair.name,
                    folders = st.folders,
                    round_secs = st.round_secs,
                    "at poll_budget = {} listings a minute, polls take {} s to look at every one of {} remote folders, longer than full_rescan_interval; raise poll_budget to see changes sooner",
                    self.pair.poll_budget, st.round_secs, st.folders
                );
            }
            self.shared.update(self.idx, |s| {
                s.next_poll_secs = Some(secs);
                s.sweep = swept;
            });

            tokio::select! {
                _ = stop.changed() => break,
                Some(batch) = events.recv() => {
                    let paths = if batch.rescan {
                        tracing::warn!(root = %root.display(), "the watcher lost events; running a full pass");
                        Vec::new()
                    } else {
                        watch::changed_paths(&root, &batch, &HashSet::new())
                    };
                    sweep.touched(Instant::now(), &paths);
                    m.changes(paths, batch.rescan);
                    if batch.watch_lost {
                        watcher = None;
                        m.watching(false);
                        self.shared.update(self.idx, |s| s.watching = false);
                    }
                }
                Some(cmd) = commands.recv() => {
                    m.command(Instant::now(), &cmd);
                    match cmd {
                        Command::Pause => {
                            tracing::info!(pair = %self.pair.name, "paused");
                            self.shared.update(self.idx, |s| { s.state = "paused".into(); s.detail = Some("paused by the user".into()); });
                        }
                        Command::Resume => {
                            tracing::info!(pair = %self.pair.name, "resumed");
                            if !m.is_waiting_for_root() {
                                self.shared.update(self.idx, |s| { s.state = "idle".into(); s.detail = None; });
                            }
                        }
                        Command::ConfirmDelete => {
                            tracing::info!(pair = %self.pair.name, "mass delete confirmed; resuming");
                            allow_mass_delete = true;
                            if !m.is_waiting_for_root() {
                                self.shared.update(self.idx, |s| { s.state = "idle".into(); s.detail = None; });
                            }
                        }
                        Command::SyncNow => {}
                    }
                }
                _ = tokio::time::sleep_until(m.wake_at()) => {
                    for action in m.tick(Instant::now()) {
                        match action {
                            Action::CheckRoot => {
                                let present = root.join(engine::MARKER).is_dir();
                                if m.root_checked(Instant::now(), present) {
                                    // A remounted volume is a new folder: watch it anew.
                                    watcher = self.events.start(&root, self.settings.debounce, ev_tx.clone());
                                    m.watching(watcher.is_some());
                                    self.shared.update(self.idx, |s| s.watching = watcher.is_some());
                                    tracing::info!(root = %root.display(), "the sync folder is back; resuming");
                                    self.shared.update(self.idx, |s| { s.state = "idle".into(); s.detail = None; });
                                }
                            }
                            Action::Poll { remote } => {
                                let marker = root.join(engine::MARKER).is_dir();
                                let seen = if marker && remote {
                                    self.poll_remote(&mut sweep).await
                                } else {
                                    HostSeen::Same
                                };
                                m.polled(marker, seen);
                            }
                            Action::Pass { .. } => {}
                        }
                    }
                }
            }
        }
        drop(watcher);
        self.shared.update(self.idx, |s| s.state = "stopped".into());
    }

    /// Lists the folders the sweep says are due and compares each with
    /// what the last pass or poll saw: the folders that changed, or a
    /// change somewhere when no converged pass left anything to compare
    /// with (a full pass looks).
    async fn poll_remote(&self, sweep: &mut sweep::Sweep) -> HostSeen {
        use futures_util::StreamExt;
        if !sweep.has_baseline() {
            return HostSeen::Somewhere;
        }
        let mut changed = Vec::new();
        let client = self.client.as_ref();
        let mut listings = futures_util::stream::iter(sweep.due(Instant::now()))
            .map(|(id, path)| async move {
                let r = client.folder_listing(id.map(crate::api::FolderId)).await;
                (id, path, r)
            })
            .buffer_unordered(self.pair.engine.listing_concurrency.max(1));
        while let Some((id, path, r)) = listings.next().await {
            match r {
                Ok(l) => {
                    let children: Vec<(u64, u64)> = l
                        .folders
                        .iter()
                        .map(|f| (f.id.0, crate::snapshot::folder_hint(f)))
                        .collect();
                    let print = crate::snapshot::listing_print(&l);
                    if sweep.listed(Instant::now(), id, print, &children) == sweep::Seen::Changed {
                        tracing::debug!(pair = %self.pair.name, path = %path, "the host changed here");
                        changed.push(path);
                    }
                }
                // Looked at again at the next poll (it stays the stalest).
                Err(e) => tracing::debug!(path = %path, error = %e, "poll: listing failed"),
            }
        }
        if changed.is_empty() {
            HostSeen::Same
        } else {
            HostSeen::In(changed)
        }
    }

    /// Logs, notifies and shows a failed pass; the machine has already
    /// decided what follows (`result`, and `wait` before the next try).
    fn on_error(
        &self,
        e: &EngineError,
        now: &str,
        result: PassResult,
        wait: Option<Duration>,
        failures: u32,
    ) {
        let msg = e.to_string();
        match result {
            PassResult::RootMissing => {
                tracing::warn!(pair = %self.pair.name, "{msg}; waiting until the folder is back");
                let detail = if matches!(e, EngineError::NotARoot(_)) {
                    "the sync folder is not initialised: run `dcsync init`"
                } else {
                    "the sync folder is missing (unmounted?)"
                };
                self.shared.update(self.idx, |s| {
                    s.state = "waiting".into();
                    s.detail = Some(detail.into());
                    s.last_error = Some(msg.clone());
                });
            }
            PassResult::Stopped if e.is_permanent() => {
                // Trying again cannot help: wait for the user.
                tracing::error!(pair = %self.pair.name, "{msg}; stopped until `dcsync resume`");
                notify(&self.settings, &self.pair.name, "error", &msg, now);
                self.shared.update(self.idx, |s| {
                    s.state = "error".into();
                    s.detail = Some(format!("stopped: {msg}; fix it, then run `dcsync resume`"));
                    s.last_error = Some(format!("{now}: {msg}"));
                });
            }
            PassResult::Stopped => {
                tracing::warn!(pair = %self.pair.name, "{msg}; paused until `dcsync resume`");
                let event = if matches!(e, EngineError::MassDelete { .. }) {
                    "mass_delete"
                } else {
                    "paused"
                };
                notify(&self.settings, &self.pair.name, event, &msg, now);
                self.shared.update(self.idx, |s| {
                    s.state = "paused".into();
                    s.detail = Some(msg.clone());
                    s.last_error = Some(msg.clone());
                });
            }
            PassResult::Failed | PassResult::Ran { .. } => {
                if failures == 1 {
                    // Entering the error state (not every retry).
                    notify(&self.settings, &self.pair.name, "error", &msg, now);
                }
                let wait = wait.unwrap_or_default();
                tracing::warn!(pair = %self.pair.name, retry_in_s = wait.as_secs(), "{msg}");
                let unreachable = matches!(
                    e.api_error(),
                    Some(ApiError::Transport { .. } | ApiError::Server { .. })
                );
                self.shared.update(self.idx, |s| {
                    s.state = "error".into();
                    s.detail = Some(format!("retrying in {} s", wait.as_secs()));
                    if unreachable {
                        let since = s.host_down_since.get_or_insert_with(|| now.to_owned());
                        s.detail = Some(format!(
                            "host not answering since {since}; retrying in {} s",
                            wait.as_secs()
                        ));
                    }
                    s.last_error = Some(format!("{now}: {msg}"));
                });
            }
        }
    }
}

/// Whether the disk at `p` is exactly what the state DB recorded (so an
/// event there came from dcsync's own write). Unknown → not an echo.
fn is_echo(db: Option<&crate::state::StateDb>, root: &Path, p: &RelPath) -> bool {
    let Some(db) = db else { return false };
    let Ok(synced) = db.get_synced(p) else {
        return false;
    };
    match (std::fs::symlink_metadata(root.join(p.as_str())), synced) {
        (Err(e), None) => e.kind() == std::io::ErrorKind::NotFound,
        (Ok(m), Some(s)) => {
            let now = crate::engine::local_meta(&m);
            if m.is_dir() {
                s.kind == crate::model::Kind::Dir && now.ino == s.local.ino
            } else {
                s.kind == crate::model::Kind::File
                    && now.ino == s.local.ino
                    && now.size == s.local.size
                    && now.mtime_ns == s.local.mtime_ns
            }
        }
        _ => false,
    }
}

/// What an engine error means for the pair's machine.
fn pass_result(e: &EngineError) -> PassResult {
    match e {
        EngineError::NoMarker(_) | EngineError::NoRoot(_) | EngineError::NotARoot(_) => {
            PassResult::RootMissing
        }
        _ if e.is_permanent() || e.is_safety_stop() => PassResult::Stopped,
        _ => PassResult::Failed,
    }
}

/// The control socket of the daemon of one config: in `state_dir`, named
/// after the config file (`daemon-<hash of its absolute path>.sock`), so
/// two configs sharing a state directory get a daemon each and commands
/// reach only their own config's daemon.
pub fn socket_path(state_dir: &Path, config_path: &Path) -> PathBuf {
    use sha2::Digest as _;
    let abs = std::fs::canonicalize(config_path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(config_path))
            .unwrap_or_else(|_| config_path.to_path_buf())
    });
    let digest = sha2::Sha256::digest(abs.as_os_str().as_encoded_bytes());
    state_dir.join(format!("daemon-{}.sock", hex::encode(&digest[..6])))
}

/// Whether the polls alone look at every remote folder within `every`:
/// a round of the sweep takes no longer, and no folder went unlisted for
/// longer so far.
fn sweep_covers(sweep: &sweep::Sweep, every: Duration) -> bool {
    if !sweep.has_baseline() {
        return false;
    }
    let st = sweep.status(Instant::now());
    st.round_secs <= every.as_secs() && st.stalest_secs <= every.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_show_up_in_the_status_while_they_run() {
        let shared = Arc::new(Shared::new(vec![], vec![], None));
        shared.status.lock().unwrap().push(PairStatus::default());
        let r = DaemonReporter {
            idx: 0,
            shared: shared.clone(),
            touched: Mutex::new(HashSet::new()),
            name: "p".into(),
            clock: Arc::new(SystemClock),
        };
        let sink = r.transfer_sink().unwrap();
        let p = RelPath::new("a/b.bin").unwrap();
        sink(&p, 10, Some(100));
        sink(&p, 60, Some(100));
        let t = shared.status.lock().unwrap()[0].transfers.clone();
        assert_eq!(
            t,
            [TransferStatus {
                path: "a/b.bin".into(),
                done: 60,
                total: 100
            }]
        );
        sink(&p, 0, None);
        assert!(shared.status.lock().unwrap()[0].transfers.is_empty());
    }

    #[test]
    fn echoes_are_only_what_the_state_db_recorded() {
        use crate::model::{Hashes, Kind, SyncedEntry};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let mut db = crate::state::StateDb::open(&dir.path().join("s.db")).unwrap();
        let f = root.join("a.txt");
        std::fs::write(&f, b"ours").unwrap();
        let meta = crate::engine::local_meta(&std::fs::metadata(&f).unwrap());
        let p = RelPath::new("a.txt").unwrap();
        db.apply(&[crate::state::Change::Put(
            p.clone(),
            SyncedEntry {
                kind: Kind::File,
                local: meta,
                hashes: Hashes::default(),
                remote_id: 1,
                remote_parent: None,
                remote_name: "a.txt".into(),
                size: 4,
            },
        )])
        .unwrap();
        assert!(is_echo(Some(&db), &root, &p), "what we wrote");
        std::fs::write(&f, b"user edit!").unwrap();
        assert!(!is_echo(Some(&db), &root, &p), "a user edit right after");
        let gone = RelPath::new("gone.txt").unwrap();
        assert!(
            is_echo(Some(&db), &root, &gone),
            "deleted by us, not recorded"
        );
        std::fs::remove_file(&f).unwrap();
        assert!(
            !is_echo(Some(&db), &root, &p),
            "recorded but gone: a change"
        );
        assert!(!is_echo(None, &root, &gone), "no DB: not an echo");
    }
}
