//! The daemon under simulation: the production pair loop
//! (`dcsync::daemon::pair_loop`: its state machine, echo filter, polls,
//! backoff and passes) against the simulated host, with the world's users
//! and faults acting around its host calls, local events from the world
//! instead of the OS watcher, and tokio's paused clock, so that debounce,
//! polls, backoff and full passes take no real time. A crash drops the
//! whole loop at a host call; a new loop starts from the state database and
//! journal, as a restarted service would.
//!
//! The oracle at the end: after the users stop, the daemon alone (no
//! sync-now) brings both sides together within its poll and full-pass
//! periods (`World::check`), and says "converged" only then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcsync::api::host::Host;
use dcsync::daemon::{Batch, Command, LocalEvents, PairHandle, Settings};
use dcsync::engine::PairSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::{Backend, Failure, Knobs, Seed};

/// How often the simulated daemon polls the host.
const POLL: Duration = Duration::from_secs(60);
/// How often it runs a full pass.
const FULL: Duration = Duration::from_secs(600);
/// The longest backoff after failed passes (`daemon::machine`'s).
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What a file or folder looked like when the world last looked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dir: bool,
    len: u64,
    mtime: Option<std::time::SystemTime>,
    ino: u64,
}

/// Every entry below `root`, the state folder left out.
fn stamps(root: &Path) -> BTreeMap<PathBuf, Stamp> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if dir == root && e.file_name() == ".dcsync" {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(
                p,
                Stamp {
                    dir: m.is_dir(),
                    len: m.len(),
                    mtime: m.modified().ok(),
                    ino: m.ino(),
                },
            );
        }
    }
    out
}

/// Local events from the world, as the OS watcher would give them: at every
/// host call of the daemon (and at every step of the driver) the local
/// folder is compared with the last look, and what changed (the daemon's
/// own writes included) goes to the pair loop as one batch. Now and then a
/// batch is lost (the loop must find the change by a full pass) or comes as
/// "events were lost, rescan" (an overflowed queue).
pub struct WorldEvents {
    root: PathBuf,
    inner: Mutex<EventsInner>,
}

struct EventsInner {
    tx: Option<UnboundedSender<Batch>>,
    last: BTreeMap<PathBuf, Stamp>,
    rng: StdRng,
}

impl WorldEvents {
    pub fn new(root: &Path, seed: u64) -> WorldEvents {
        WorldEvents {
            root: root.to_path_buf(),
            inner: Mutex::new(EventsInner {
                tx: None,
                last: stamps(root),
                rng: StdRng::seed_from_u64(seed ^ 0xe7e7_0000),
            }),
        }
    }

    /// Compares the folder with the last look and sends what changed.
    /// Returns a line for the trace when a batch was lost or turned into a
    /// rescan.
    pub fn feed(&self) -> Option<String> {
        let now = stamps(&self.root);
        let mut g = self.inner.lock().ok()?;
        let mut paths: Vec<PathBuf> = now
            .iter()
            .filter(|(p, s)| g.last.get(*p) != Some(*s))
            .map(|(p, _)| p.clone())
            .collect();
        paths.extend(g.last.keys().filter(|p| !now.contains_key(*p)).cloned());
        g.last = now;
        if paths.is_empty() {
            return None;
        }
        let roll = g.rng.random_range(0..100);
        let (batch, note) = match roll {
            0 => (None, "  ! the watcher lost a batch of events"),
            1 => (
                Some(Batch {
                    rescan: true,
                    ..Batch::default()
                }),
                "  ! the watcher overflowed (rescan)",
            ),
            _ => (
                Some(Batch {
                    paths,
                    ..Batch::default()
                }),
                "",
            ),
        };
        if let (Some(b), Some(tx)) = (batch, g.tx.as_ref()) {
            let _ = tx.send(b);
        }
        if note.is_empty() {
            None
        } else {
            Some(note.to_string())
        }
    }
}

impl LocalEvents for WorldEvents {
    fn start(
        &self,
        _root: &Path,
        _debounce: Duration,
        tx: UnboundedSender<Batch>,
    ) -> Option<Box<dyn Send>> {
        if let Ok(mut g) = self.inner.lock() {
            g.tx = Some(tx);
        }
        Some(Box::new(()))
    }
}

/// One incarnation of the daemon's pair loop.
struct Daemon {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    handle: PairHandle,
    crash: Arc<tokio::sync::Notify>,
}

impl Daemon {
    fn start(s: &Seed, events: &Arc<WorldEvents>, incarnation: u64) -> Daemon {
        let crash = s.shared.crash_signal();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let pair = PairSpec {
            name: format!("sim{}", s.seed),
            engine: s.cfg.clone(),
            poll_interval: POLL,
            poll_budget: dcsync::daemon::sweep::DEFAULT_BUDGET,
        };
        let settings = Settings {
            socket: s.dir.join("unused.sock"),
            full_rescan: FULL,
            debounce: Duration::from_secs(2),
            notify_command: None,
            web: None,
        };
        let host: Arc<dyn Host> = s.host.clone();
        let (fut, handle) = dcsync::daemon::pair_loop(
            host,
            pair,
            settings,
            events.clone(),
            s.clock.clone(),
            s.seed ^ incarnation,
            stop_rx,
        );
        Daemon {
            stop,
            task: tokio::spawn(fut),
            handle,
            crash,
        }
    }
}

/// The driver: the daemon, restarted after each crash, and the clock.
///
/// Time moves only when the driver moves it: the driver never sleeps but
/// yields (so the runtime is never idle and tokio's paused clock never
/// jumps ahead on its own, e.g. while a pass waits for a blocking scan),
/// and advances the clock only when the daemon is quiet: no pass running
/// and no host call for a few turns. That keeps a seed's run the same run
/// after run.
struct Driver<'a> {
    s: &'a Seed,
    events: Arc<WorldEvents>,
    daemon: Daemon,
    incarnations: u64,
}

/// The clock moves by at most this much at a time (the daemon's timers fire
/// within a tick of their time).
const TICK: Duration = Duration::from_secs(1);
/// Turns without a host call, outside a pass, that count as quiet.
const QUIET_TURNS: u32 = 4;
/// A pass that makes no host call for this long (real time) is stuck.
const STUCK: std::time::Duration = std::time::Duration::from_secs(60);

impl Driver<'_> {
    /// Lets the daemon run until it is quiet (see [`Driver`]); a crash
    /// drops its loop and starts a new one.
    async fn settle(&mut self) -> Result<(), String> {
        let mut quiet = 0;
        let mut calls = self.s.shared.calls.load(Ordering::SeqCst);
        let mut progress = std::time::Instant::now();
        loop {
            if futures_util::FutureExt::now_or_never(self.daemon.crash.notified()).is_some() {
                self.daemon.task.abort();
                let _ = (&mut self.daemon.task).await;
                self.incarnations += 1;
                self.s
                    .log("  daemon crashed; a new one starts".into())
                    .await;
                self.daemon = Daemon::start(self.s, &self.events, self.incarnations);
                quiet = 0;
            }
            tokio::task::yield_now().await;
            let now = self.s.shared.calls.load(Ordering::SeqCst);
            if now != calls {
                calls = now;
                quiet = 0;
                progress = std::time::Instant::now();
            } else if self.daemon.handle.status().state == "syncing" {
                quiet = 0;
                if progress.elapsed() > STUCK {
                    return Err(format!(
                        "the daemon's pass made no host call for {} s",
                        STUCK.as_secs()
                    ));
                }
            } else {
                quiet += 1;
                if quiet >= QUIET_TURNS {
                    return Ok(());
                }
            }
        }
    }

    /// Lets `d` of (virtual) time pass while the daemon works.
    async fn run_for(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        loop {
            self.settle().await?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let step = (until - now).min(TICK);
            tokio::time::advance(step).await;
            self.s.clock.advance(step);
        }
    }

    async fn feed(&self) {
        if let Some(note) = self.events.feed() {
            self.s.log(note).await;
        }
    }

    async fn command(&self, cmd: Command) {
        self.s.log(format!("U {cmd:?}")).await;
        self.daemon.handle.command(cmd);
    }
}

/// One seed of the daemon simulation: `knobs.steps` steps, each some
/// virtual seconds of the daemon working, then one thing a user does (a
/// change on either side, or a command); then the users stop and the
/// daemon has its poll and full-pass periods to converge.
pub async fn run_daemon_seed(
    seed: u64,
    knobs: &Knobs,
    backend: &Backend,
    base: &Path,
) -> Result<(), Failure> {
    let (s, mut rng) = Seed::new(seed, knobs, backend, base).await;
    let events = Arc::new(WorldEvents::new(&s.cfg.local_root, seed));
    *s.shared.events.lock().expect("events") = Some(events.clone());
    s.shared.armed.store(true, Ordering::SeqCst);
    let mut d = Driver {
        s: &s,
        daemon: Daemon::start(&s, &events, 0),
        events,
        incarnations: 0,
    };
    let mut paused_until: Option<u64> = None;
    for step in 0..knobs.steps {
        let roll = rng.random_range(0..100);
        let wait = Duration::from_millis(rng.random_range(0..90_000));
        if knobs.skip.contains(&step) {
            continue;
        }
        if let Err(m) = d.run_for(wait).await {
            return Err(s.fail(m));
        }
        if roll < 80 {
            s.shared.world.lock().await.act().await;
        } else if roll < 90 {
            d.command(Command::SyncNow).await;
        } else if roll < 95 && paused_until.is_none() {
            d.command(Command::Pause).await;
            paused_until = Some(step + rng.random_range(1..5));
        }
        if paused_until.is_some_and(|u| step >= u) {
            d.command(Command::Resume).await;
            paused_until = None;
        }
        d.feed().await;
    }
    if paused_until.is_some() {
        d.command(Command::Resume).await;
    }
    // The users stop; the daemon alone must bring both sides together.
    s.shared.armed.store(false, Ordering::SeqCst);
    d.feed().await;
    let window = FULL + 2 * POLL + BACKOFF_MAX;
    if let Err(m) = d.run_for(window).await {
        return Err(s.fail(m));
    }
    let status = d.daemon.handle.status();
    s.log(format!(
        "daemon after {} s alone: {} ({}), {} crashes",
        window.as_secs(),
        status.state,
        status.last_result.as_deref().unwrap_or("-"),
        d.incarnations
    ))
    .await;
    let _ = d.daemon.stop.send(true);
    let _ = (&mut d.daemon.task).await;
    *s.shared.events.lock().expect("events") = None;
    if let Err(m) = s.shared.world.lock().await.check().await {
        return Err(s.fail(format!(
            "after the daemon ran {} s without users or a nudge: {m}",
            window.as_secs()
        )));
    }
    if status.last_result.as_deref() != Some("converged") {
        return Err(s.fail(format!(
            "the sides are equal but the daemon's last pass said {:?} ({}: {:?})",
            status.last_result, status.state, status.detail
        )));
    }
    s.passed();
    Ok(())
}
