//! Whole-engine simulation: the production engine, executor and recovery
//! (`dcsync::engine::sync`) run against the emulator's host rules through the
//! `dcsync::api::Host` seam, while a seeded world acts around every host
//! call: a local user and a remote user change files and folders, calls
//! fail before or after the host did the work, answers get lost, the
//! process crashes at any call (the pass is dropped and the next one starts
//! from the state database and journal), the local folder vanishes or the
//! host folder goes to the trash. After
//! the users stop, passes run until one reports "in sync", and the oracle
//! (`world::World::check`) looks for lost versions, differing sides,
//! duplicates, leftover temp files and ignored files that crossed over.
//!
//! `cargo test --test sim` runs `DCSYNC_SIM_SEEDS` seeds
//! (default 2,000) on `DCSYNC_SIM_THREADS` threads (default 4: a seed waits
//! on its scanner and blocking tasks part of the time, so two cores need
//! more than two); `DCSYNC_SIM_SEED=N` runs one seed and prints its trace;
//! `DCSYNC_SIM_TRACES=DIR` writes the trace of every failing seed there;
//! `DCSYNC_SIM_CALLS=1` puts every host call of the engine into the trace;
//! `DCSYNC_SIM_FROM`, `DCSYNC_SIM_STEPS` and `DCSYNC_SIM_LOG` (a tracing
//! filter for the engine's log in the trace) tune a run. A seed's run is
//! reproducible (the same trace apart from durations).
//!
//! A failing seed is shrunk (unless `DCSYNC_SIM_SHRINK=0`): reruns with
//! fewer steps, steps left out (`DCSYNC_SIM_SKIP`) and kinds of trouble
//! turned off (`DCSYNC_SIM_QUIET`) keep what still fails the same way, and
//! the smallest run's trace is printed with its one-line rerun command.
//!
//! The host is the emulator's rules in-process (`memhost.rs`, checked
//! against the HTTP emulator by `differential`); `DCSYNC_SIM_HOST=http`
//! runs the seeds through the real client and an emulator on loopback
//! instead (about 3x slower).
//!
//! In CI: `cargo test` runs seeds 0-1999 and the regression seeds (about
//! 85 s on 2 cores; the dev profile builds dcsync and the emulator with
//! opt-level 1 for this). Long runs:
//! `DCSYNC_SIM_SEEDS=100000 DCSYNC_SIM_FROM=N cargo test --release --test sim
//! -- --nocapture`. `DCSYNC_SIM_STOP_FIRST=1` stops at the first failing
//! seed. See docs/SIMULATION.md.

mod daemon;
mod differential;
mod host;
mod memhost;
mod world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use dcsync::api::host::Host;
use dcsync::api::{
    Client, ClientOptions, Credentials, FolderId, FolderOptions, RetryPolicy, Secret, TokenStore,
};
use dcsync::clock::FixedClock;
use dcsync::engine::{EngineConfig, EngineError, SyncReport, SyncRequest};
use dcsync_emulator::{Config as EmuConfig, InProcess, RunningEmulator};
use rand::{Rng, SeedableRng};

use host::SimHost;
use world::{Rates, Shared, World};

const KEY1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// Seeds per emulator before it is started afresh (keeps the account root small).
const SEEDS_PER_EMULATOR: u64 = 100;
/// Passes allowed after the users stop.
const SETTLE_PASSES: usize = 8;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(api_url: &str, tokens: &Path) -> Client {
    let creds = Credentials::Keys {
        key1: Secret::new(KEY1),
        key2: Secret::new(KEY2),
    };
    let mut o = ClientOptions::new(api_url.to_string(), creds);
    o.token_store = TokenStore::in_dir(tokens, &o.credentials.account_key(&o.api_url));
    o.retry = RetryPolicy::fast();
    o.max_requests_per_second = None;
    Client::new(o).expect("client")
}

/// The host the seeds of a thread run against: the emulator's rules
/// in-process (the default), or the emulator over HTTP with the real client
/// (`DCSYNC_SIM_HOST=http`: slower, and also exercises the wire format).
enum Backend {
    Mem(InProcess),
    /// The emulator, and its state opened in-process too (for what only the
    /// website does: restoring a folder from the trash).
    Http(RunningEmulator, InProcess),
}

impl Backend {
    async fn start(dir: &Path) -> Backend {
        let config = EmuConfig::new(dir.join("emu"), KEY1, KEY2);
        if std::env::var("DCSYNC_SIM_HOST").is_ok_and(|h| h == "http") {
            let site = InProcess::open(config.clone()).expect("emulator state");
            Backend::Http(
                RunningEmulator::start(config).await.expect("emulator"),
                site,
            )
        } else {
            Backend::Mem(InProcess::volatile(config).expect("in-process host"))
        }
    }

    /// A new connection to the host (for the other users, or the engine).
    fn host(&self, tokens: &Path) -> Arc<dyn Host> {
        match self {
            Backend::Mem(h) => Arc::new(memhost::MemHost(h.clone())),
            Backend::Http(e, _) => Arc::new(client(&e.api_url(), tokens)),
        }
    }

    /// The website's "restore from the trash" of a folder, back into the
    /// account root.
    fn restore(&self, folder: FolderId) {
        let site = match self {
            Backend::Mem(h) | Backend::Http(_, h) => h,
        };
        site.folder_restore(folder.0, None).expect("restore");
    }

    async fn stop(self) {
        if let Backend::Http(e, _) = self {
            let _ = e.stop().await;
        }
    }
}

/// A seed that failed: what went wrong and what happened before.
#[derive(Clone)]
struct Failure {
    seed: u64,
    message: String,
    trace: Vec<String>,
}

enum Outcome {
    Crashed,
    Done(Box<Result<SyncReport, EngineError>>),
}

struct Seed {
    seed: u64,
    /// The seed's folder (local folder, scratch, state).
    dir: PathBuf,
    shared: Arc<Shared>,
    host: Arc<SimHost>,
    cfg: EngineConfig,
    /// The engine's wall clock, which the world moves (see `world::epoch`).
    clock: Arc<FixedClock>,
    ops: OpLog,
    trace: Arc<std::sync::Mutex<Vec<String>>>,
    /// Passes run so far: two in three start with the quick check (which
    /// ends, narrows or gives way), the others build the three trees.
    passes: std::sync::atomic::AtomicU64,
}

/// Puts every op the engine finishes into the trace.
struct OpLog(Arc<std::sync::Mutex<Vec<String>>>);

impl dcsync::engine::Reporter for OpLog {
    fn op_done(&self, op: &dcsync::plan::Op, result: &Result<(), String>) {
        if let Ok(mut t) = self.0.lock() {
            t.push(match result {
                Ok(()) => format!("    op {op}"),
                Err(e) => format!("    op {op} FAILED: {e}"),
            });
        }
    }
}

impl Seed {
    async fn pass(&self, allow_mass_delete: bool) -> Outcome {
        let signal = self.shared.crash_signal();
        let n = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let quick_check = !(self.seed + n).is_multiple_of(3);
        if !quick_check {
            self.log("  (a pass without the quick check)".to_owned())
                .await;
        }
        let req = SyncRequest {
            allow_mass_delete,
            quick_check,
            // Half the seeds run a first sync in small windows (#13).
            window_entries: if self.seed.is_multiple_of(2) {
                1 + (self.seed / 2 % 3) as usize
            } else {
                0
            },
            ..Default::default()
        };
        tokio::select! {
            biased;
            _ = signal.notified() => Outcome::Crashed,
            r = dcsync::engine::sync(self.host.as_ref(), &self.cfg, req, self.clock.clone(), &self.ops) => {
                Outcome::Done(Box::new(r))
            }
        }
    }

    async fn log(&self, s: String) {
        self.shared.world.lock().await.log(s);
    }

    /// The synced host folder, as (path, id) of every file and folder
    /// (folders' paths end in `/`), also where two share a name.
    async fn remote_ids(&self) -> Option<Vec<(String, u64)>> {
        let w = self.shared.world.lock().await;
        let t = world::rtree(w.plain.as_ref(), w.remote_root).await.ok()?;
        Some(t.all)
    }

    /// The local folder vanishes (an unmounted disk; with `mount_point`, an
    /// empty folder is left where it was): the pass must stop without
    /// touching the host or the empty folder.
    async fn local_root_gone(
        &self,
        step: u64,
        dir: &Path,
        mount_point: bool,
    ) -> Result<(), String> {
        let root = &self.cfg.local_root;
        let away = dir.join("unmounted");
        std::fs::rename(root, &away).expect("unmount");
        if mount_point {
            std::fs::create_dir(root).expect("mount point");
        }
        let before = self.remote_ids().await;
        let o = self.pass(false).await;
        let after = self.remote_ids().await;
        let left = if mount_point {
            let left: Vec<_> = std::fs::read_dir(root)
                .expect("mount point")
                .flatten()
                .map(|e| e.file_name())
                .collect();
            std::fs::remove_dir_all(root).expect("unmount again");
            left
        } else {
            Vec::new()
        };
        std::fs::rename(&away, root).expect("mount again");
        let Outcome::Done(r) = o else {
            unreachable!("not armed")
        };
        let what = if mount_point {
            "local folder empty, its marker gone"
        } else {
            "local folder gone"
        };
        self.log(format!("step {step}: {what}; pass {}", summary(&r)))
            .await;
        if r.is_ok() {
            return Err(format!("a pass with the {what} did not stop"));
        }
        if before != after {
            return Err(format!("a pass with the {what} changed the host"));
        }
        if !left.is_empty() {
            return Err(format!("a pass with the {what} wrote into it: {left:?}"));
        }
        Ok(())
    }

    /// Whether a file dcsync recorded is listed on the host now. Only then
    /// can a trashed synced folder be told from an empty one (the API has
    /// no folder status; a trashed folder is listed as before, without its
    /// files): with nothing recorded, dcsync syncs into it like into any
    /// empty folder (docs/SIMULATION.md).
    async fn tells_a_trashed_root(&self) -> bool {
        let Ok(db) = dcsync::state::StateDb::open(&self.cfg.db_path) else {
            return false;
        };
        let Ok(synced) = db.load_synced() else {
            return false;
        };
        let Some(listed) = self.remote_ids().await else {
            return false;
        };
        synced.iter().any(|(p, e)| {
            e.kind == dcsync::model::Kind::File
                && listed
                    .iter()
                    .any(|(q, id)| q == p.as_str() && *id == e.remote_id)
        })
    }

    /// Another device trashes the synced host folder (it stays listed in the
    /// account root, empty): the pass must delete nothing on either side.
    /// Then the user restores it from the trash on the website.
    async fn remote_root_trashed(&self, step: u64, backend: &Backend) -> Result<(), String> {
        let root = self.cfg.local_root.clone();
        let remote = self.shared.world.lock().await.remote_root;
        let before = self.remote_ids().await;
        let local = world::ltree(&root);
        let trashed = {
            let w = self.shared.world.lock().await;
            w.plain.folder_delete(remote).await
        };
        trashed.expect("trash the synced folder");
        let o = self.pass(false).await;
        let after_local = world::ltree(&root);
        backend.restore(remote);
        let after = self.remote_ids().await;
        if let Some(all) = &after {
            self.shared.world.lock().await.note_restore(all);
        }
        let Outcome::Done(r) = o else {
            unreachable!("not armed")
        };
        self.log(format!(
            "step {step}: R trash the synced folder, restored after one pass; pass {}",
            summary(&r)
        ))
        .await;
        if local != after_local {
            let gone: Vec<_> = local
                .iter()
                .filter(|(p, c)| after_local.get(*p) != Some(*c))
                .map(|(p, _)| p)
                .collect();
            return Err(format!(
                "a pass with the host folder in the trash changed local files: {gone:?}"
            ));
        }
        if let (Some(listed), Some(listed_after)) = (before, after) {
            let missing: Vec<_> = listed
                .iter()
                .filter(|e| !listed_after.contains(e))
                .map(|(p, _)| p.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "a pass with the host folder in the trash deleted on the host: {missing:?}"
                ));
            }
        }
        Ok(())
    }
}

fn summary(r: &Result<SyncReport, EngineError>) -> String {
    match r {
        Ok(r) => {
            format!(
                "{} (up {}, down {}, moved {}, copied {}, del local {}, del remote {}, conflicts {}{}{})",
                if r.in_sync() {
                    "in sync"
                } else {
                    "not in sync"
                },
                r.uploaded,
                r.downloaded,
                r.moved,
                r.copied,
                r.deleted_local,
                r.deleted_remote,
                r.conflicts,
                if r.in_sync() {
                    String::new()
                } else {
                    format!(
                        ", converged {}, unseen {:?}, waiting {:?}, stopped {:?}, deferred {}",
                        r.converged, r.unseen, r.waiting, r.stopped, r.deferred
                    )
                },
                if r.errors.is_empty() {
                    String::new()
                } else {
                    format!(", errors: {}", r.errors.join("; "))
                }
            ) + &if r.windows > 0 {
                format!(" in {} windows", r.windows)
            } else {
                String::new()
            }
        }
        Err(e) => format!("error: {e}"),
    }
}

/// What a run of one seed leaves out (to make a failing run short): the
/// default runs everything.
#[derive(Debug, Clone)]
struct Knobs {
    /// The daemon simulation (`daemon.rs`) instead of passes run one by one.
    daemon: bool,
    steps: u64,
    /// Steps that do nothing (their draws still happen, so the others stay
    /// as they were).
    skip: BTreeSet<u64>,
    /// Kinds of trouble turned off (see [`QUIET`]).
    quiet: BTreeSet<&'static str>,
}

/// What `DCSYNC_SIM_QUIET` can turn off: crashes, lost answers, failed
/// calls, and the two users' actions while a pass runs.
const QUIET: &[&str] = &["crash", "lose", "fail", "local", "remote"];

impl Knobs {
    fn all(daemon: bool, steps: u64) -> Knobs {
        Knobs {
            daemon,
            steps,
            skip: BTreeSet::new(),
            quiet: BTreeSet::new(),
        }
    }

    /// `DCSYNC_SIM_STEPS`, `DCSYNC_SIM_SKIP` (step numbers, comma-separated)
    /// and `DCSYNC_SIM_QUIET` (names of [`QUIET`]).
    fn from_env(daemon: bool) -> Knobs {
        let list = |name: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_default()
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        Knobs {
            daemon,
            steps: env_u64("DCSYNC_SIM_STEPS", 40),
            skip: list("DCSYNC_SIM_SKIP")
                .iter()
                .filter_map(|x| x.parse().ok())
                .collect(),
            quiet: list("DCSYNC_SIM_QUIET")
                .iter()
                .filter_map(|x| QUIET.iter().find(|q| **q == x.as_str()).copied())
                .collect(),
        }
    }

    fn is_default(&self) -> bool {
        self.skip.is_empty() && self.quiet.is_empty()
    }

    /// The one-line command that runs this seed so again.
    fn rerun(&self, seed: u64) -> String {
        let mut env = format!("DCSYNC_SIM_SEED={seed} DCSYNC_SIM_STEPS={}", self.steps);
        if !self.skip.is_empty() {
            let skip: Vec<String> = self.skip.iter().map(u64::to_string).collect();
            env += &format!(" DCSYNC_SIM_SKIP={}", skip.join(","));
        }
        if !self.quiet.is_empty() {
            let quiet: Vec<&str> = self.quiet.iter().copied().collect();
            env += &format!(" DCSYNC_SIM_QUIET={}", quiet.join(","));
        }
        let test = if self.daemon { "daemon" } else { "simulation" };
        format!("{env} cargo test --test sim {test} -- --nocapture")
    }
}

impl Seed {
    /// Sets up one seed's world: the local folder (with the ignore file), the
    /// host folder, the rates of trouble (less what `knobs` turns off) and
    /// the engine's settings, all drawn from `seed`; `rng` goes on to draw
    /// the steps.
    async fn new(
        seed: u64,
        knobs: &Knobs,
        backend: &Backend,
        base: &Path,
    ) -> (Seed, rand::rngs::StdRng) {
        let dir = base.join(format!("s{seed}"));
        let root = dir.join("local");
        let scratch = dir.join("scratch");
        let tokens = base.join("tokens");
        std::fs::create_dir_all(root.join(".dcsync")).expect("root");
        std::fs::create_dir_all(&scratch).expect("scratch");
        std::fs::write(root.join(".dcsyncignore"), world::IGNORE_BASE).expect("ignore file");
        let plain = backend.host(&tokens);
        let remote_root = plain
            .folder_create(&format!("sim{seed}"), None, &FolderOptions::default())
            .await
            .expect("remote root")
            .id;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rates = Rates {
            local: rng.random_range(0.02..0.2),
            remote: rng.random_range(0.02..0.2),
            fail: rng.random_range(0.0..0.05),
            lose: rng.random_range(0.0..0.05),
            crash: rng.random_range(0.0..0.03),
        };
        for q in &knobs.quiet {
            match *q {
                "crash" => rates.crash = 0.0,
                "lose" => rates.lose = 0.0,
                "fail" => rates.fail = 0.0,
                "local" => rates.local = 0.0,
                _ => rates.remote = 0.0,
            }
        }
        let cfg = EngineConfig {
            local_root: root.clone(),
            remote_path: format!("/sim{seed}"),
            db_path: dir.join("state/pair.db"),
            plan: Default::default(),
            transfers: rng.random_range(1..=3),
            listing_concurrency: rng.random_range(1..=2),
            max_delete_percent: 100,
            max_delete_count: 1_000_000,
            trash: Default::default(),
        };
        let clock = Arc::new(FixedClock::at(world::epoch()));
        let world = World::new(
            seed,
            rates,
            root.clone(),
            scratch,
            plain,
            remote_root,
            clock.clone(),
        );
        let trace = world.trace.clone();
        CURRENT.with(|c| *c.borrow_mut() = Some(trace.clone()));
        let shared = Shared::new(world);
        let s = Seed {
            seed,
            dir,
            shared: shared.clone(),
            host: Arc::new(SimHost {
                inner: backend.host(&tokens),
                shared: shared.clone(),
                one_at_a_time: Default::default(),
            }),
            cfg,
            clock,
            ops: OpLog(trace.clone()),
            trace,
            passes: Default::default(),
        };
        s.log(format!(
            "seed {seed}: {rates:?}, transfers {}",
            s.cfg.transfers
        ))
        .await;
        (s, rng)
    }

    /// The seed passed: its folder goes, and when it was asked for by name
    /// (`DCSYNC_SIM_SEED`), its trace is shown all the same.
    fn passed(&self) {
        if std::env::var("DCSYNC_SIM_SEED").is_ok()
            && !SHRINKING.load(Ordering::SeqCst)
            && let Ok(t) = self.trace.lock()
        {
            for l in t.iter() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The seed failed: `message`, with the trace so far.
    fn fail(&self, message: String) -> Failure {
        Failure {
            seed: self.seed,
            message,
            trace: self.trace.lock().map(|t| t.clone()).unwrap_or_default(),
        }
    }
}

/// One seed of the simulation `knobs` asks for.
async fn run_any(seed: u64, knobs: &Knobs, backend: &Backend, base: &Path) -> Result<(), Failure> {
    if knobs.daemon {
        daemon::run_daemon_seed(seed, knobs, backend, base).await
    } else {
        run_seed(seed, knobs, backend, base).await
    }
}

/// A runtime for one thread of seeds: the daemon simulation's on tokio's
/// paused clock (timers jump ahead whenever every task waits).
fn runtime(knobs: &Knobs) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(knobs.daemon)
        .build()
        .expect("runtime")
}

async fn run_seed(seed: u64, knobs: &Knobs, backend: &Backend, base: &Path) -> Result<(), Failure> {
    let steps = knobs.steps;
    let (s, mut rng) = Seed::new(seed, knobs, backend, base).await;
    let shared = s.shared.clone();
    let dir = s.dir.clone();

    for step in 0..steps {
        let roll = rng.random_range(0..100);
        if knobs.skip.contains(&step) {
            continue;
        }
        if roll < 55 {
            shared.world.lock().await.act().await;
        } else if roll < 99 {
            shared.armed.store(true, Ordering::SeqCst);
            let t0 = Instant::now();
            let o = s.pass(false).await;
            if std::env::var("DCSYNC_SIM_TIMES").is_ok() {
                eprintln!("pass {:?}", t0.elapsed());
            }
            shared.armed.store(false, Ordering::SeqCst);
            match o {
                Outcome::Crashed => s.log(format!("step {step}: pass crashed")).await,
                Outcome::Done(r) => s.log(format!("step {step}: pass {}", summary(&r))).await,
            }
        } else {
            // A disaster, drawn apart so that it does not shift the rest of
            // the seed's choices.
            let mut d = rand::rngs::StdRng::seed_from_u64(seed ^ (step << 40) ^ 0xd15a_57e5);
            let r = match d.random_range(0..3) {
                0 => s.local_root_gone(step, &dir, false).await,
                2 if s.tells_a_trashed_root().await => s.remote_root_trashed(step, backend).await,
                _ => s.local_root_gone(step, &dir, true).await,
            };
            if let Err(m) = r {
                return Err(s.fail(m));
            }
        }
    }

    // The users stop; the engine must settle.
    shared.armed.store(false, Ordering::SeqCst);
    let mut last = String::new();
    let mut settled = false;
    for i in 0..SETTLE_PASSES {
        match s.pass(true).await {
            Outcome::Crashed => unreachable!("not armed"),
            Outcome::Done(r) => {
                last = summary(&r);
                s.log(format!("settle {i}: pass {last}")).await;
                if r.as_ref().as_ref().is_ok_and(|r| r.in_sync()) {
                    settled = true;
                    break;
                }
            }
        }
    }
    if !settled {
        return Err(s.fail(format!(
            "not in sync after {SETTLE_PASSES} passes without users: {last}"
        )));
    }
    let checked = shared.world.lock().await.check().await;
    if let Err(m) = checked {
        return Err(s.fail(m));
    }
    s.passed();
    Ok(())
}

fn scratch_base() -> PathBuf {
    // tmpfs when there is one: the simulation is mostly small writes and fsyncs.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Runs the seeds `from + k * threads + t` of one thread.
/// Set when a seed failed and `DCSYNC_SIM_STOP_FIRST` is set: the threads
/// stop (for counting seeds to the first failure, `bench/sim-teeth.sh`).
static STOP: AtomicBool = AtomicBool::new(false);
/// Seeds done and failed by all threads (for the progress lines).
static DONE: AtomicU64 = AtomicU64::new(0);
/// Set while a failing seed is shrunk (its runs print no trace).
static SHRINKING: AtomicBool = AtomicBool::new(false);
static FAILED: AtomicU64 = AtomicU64::new(0);

fn run_thread(t: u64, threads: u64, seeds: &[u64], knobs: &Knobs) -> (u64, Vec<Failure>) {
    let stop_first = std::env::var("DCSYNC_SIM_STOP_FIRST").is_ok();
    let rt = runtime(knobs);
    rt.block_on(async move {
        let mut failures = Vec::new();
        let mut done = 0;
        let mut emu: Option<(Backend, tempfile::TempDir)> = None;
        let mut k = 0;
        while let Some(&seed) = seeds.get((k * threads + t) as usize) {
            if STOP.load(Ordering::SeqCst) {
                break;
            }
            // The in-memory host starts afresh for every seed (its account
            // root then lists one seed's folders, not a hundred's).
            let fresh = if std::env::var("DCSYNC_SIM_HOST").is_ok_and(|h| h == "http") {
                k % SEEDS_PER_EMULATOR == 0
            } else {
                true
            };
            if fresh {
                if let Some((e, _)) = emu.take() {
                    e.stop().await;
                }
                let dir = tempfile::Builder::new()
                    .prefix("dcsync-sim-")
                    .tempdir_in(scratch_base())
                    .expect("tempdir");
                let e = Backend::start(dir.path()).await;
                emu = Some((e, dir));
            }
            let (e, dir) = emu.as_ref().expect("emulator");
            if let Err(f) = run_any(seed, knobs, e, dir.path()).await {
                FAILED.fetch_add(1, Ordering::SeqCst);
                // Long runs name a failing seed at once (its trace comes
                // at the end).
                eprintln!(
                    "simulation: seed {seed} failed: {}",
                    f.message.lines().next().unwrap_or_default()
                );
                failures.push(f);
                if stop_first {
                    STOP.store(true, Ordering::SeqCst);
                }
            }
            done += 1;
            k += 1;
            // Long runs say how far they are (one line per 5,000 seeds).
            let all = DONE.fetch_add(1, Ordering::SeqCst) + 1;
            if all.is_multiple_of(5000) {
                eprintln!(
                    "simulation: {all} seeds done, {} failed so far",
                    FAILED.load(Ordering::SeqCst)
                );
            }
        }
        (done, failures)
    })
}

thread_local! {
    /// The trace of the seed this thread runs: the engine's log goes there
    /// too, in order with the users' actions and the ops.
    static CURRENT: std::cell::RefCell<Option<Arc<std::sync::Mutex<Vec<String>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A `tracing` writer into the current seed's trace (lines from other
/// threads, e.g. the scanner's, are dropped).
struct SeedWriter;

impl std::io::Write for SeedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf).trim_end().to_string();
        CURRENT.with(|c| {
            if let Some(t) = c.borrow().as_ref()
                && let Ok(mut t) = t.lock()
            {
                t.push(format!("      log {line}"));
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    let filter = std::env::var("DCSYNC_SIM_LOG").unwrap_or_else(|_| "dcsync=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(|| SeedWriter)
        .try_init();
}

/// Seeds that found bugs (docs/SIMULATION.md), run on every run besides the
/// range. A seed's trace changes whenever the engine makes other calls, so
/// each bug also has a deterministic test in tests/integration/safety.rs;
/// these keep the seeds' worlds in the rotation all the same.
const REGRESSION_SEEDS: &[u64] = &[
    13, 18, 60, 115, 209, 293, 719, 786, 1638, 20455, 20846, 40055, 40229, 40438, 41044, 41709,
    41941, 43616, 44134, 47677, 47701, 47805, 49720, 102023, 102059, 103801, 104654, 105058,
    105415, 112255, 113786, 114884, 121249, 125868, 143212,
    // Since the simulated wall clock (bugs 37-41).
    100214, 101099, 103457, 104000, 110117, 119199, 127405, 129418, 148965,
    // The oracle: names doubled by the website's restore (152315, 193303).
    152315, 193303,
    // Stops 26-27: forgotten unlisted uploads (45), trashes whose answers
    // were lost after retries (46).
    104674, 115703,
];

/// Seeds of the daemon simulation that found bugs (as [`REGRESSION_SEEDS`]).
const DAEMON_REGRESSION_SEEDS: &[u64] = &[];

/// The engine's passes, one at a time, among the users and faults
/// (`run_seed`).
#[test]
fn simulation() {
    run_simulation(false, "DCSYNC_SIM_SEEDS", 2000, REGRESSION_SEEDS);
}

/// The daemon's pair loop among the users and faults, on tokio's paused
/// clock (`daemon.rs`).
#[test]
fn daemon() {
    run_simulation(
        true,
        "DCSYNC_SIM_DAEMON_SEEDS",
        200,
        DAEMON_REGRESSION_SEEDS,
    );
}

/// Runs the seeds the environment asks for (`seeds_var` seeds from
/// `DCSYNC_SIM_FROM`, default `default_seeds`, plus `regression`; or the one
/// `DCSYNC_SIM_SEED`) on a few threads; shrinks and shows the first failure.
fn run_simulation(daemon: bool, seeds_var: &str, default_seeds: u64, regression: &[u64]) {
    init_logging();
    let knobs = Knobs::from_env(daemon);
    let steps = knobs.steps;
    let (from, count, threads) = match std::env::var("DCSYNC_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(one) => (one, 1, 1),
        None => (
            env_u64("DCSYNC_SIM_FROM", 0),
            env_u64(seeds_var, default_seeds),
            env_u64("DCSYNC_SIM_THREADS", 4),
        ),
    };
    let started = Instant::now();
    // The range, and (unless one seed was asked for) the regression seeds.
    let mut seeds: Vec<u64> = (from..from + count).collect();
    if count > 1 {
        seeds.extend(
            regression
                .iter()
                .filter(|s| !(from..from + count).contains(*s)),
        );
    }
    let seeds = Arc::new(seeds);
    let handles: Vec<_> = (0..threads.min(count.max(1)))
        .map(|t| {
            let seeds = seeds.clone();
            let knobs = knobs.clone();
            std::thread::spawn(move || run_thread(t, threads, &seeds, &knobs))
        })
        .collect();
    let mut done = 0;
    let mut failures = Vec::new();
    for h in handles {
        let (d, f) = h.join().expect("simulation thread");
        done += d;
        failures.extend(f);
    }
    failures.sort_by_key(|f| f.seed);
    if let Ok(dir) = std::env::var("DCSYNC_SIM_TRACES") {
        let _ = std::fs::create_dir_all(&dir);
        for f in &failures {
            let text = format!("{}\n---- {}\n", f.trace.join("\n"), f.message);
            let _ = std::fs::write(Path::new(&dir).join(format!("seed-{}.txt", f.seed)), text);
        }
    }
    eprintln!(
        "simulation: {done} seeds of {steps} steps (from {from}) in {:.1} s, {} failed",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    if let Some(f) = failures.first() {
        let shrink = std::env::var("DCSYNC_SIM_SHRINK").map_or(true, |v| v != "0");
        let (small, shown) = if shrink && knobs.is_default() {
            shrink_seed(f, &knobs)
        } else {
            (knobs.clone(), f.clone())
        };
        eprintln!("---- seed {} (rerun: {})", f.seed, knobs.rerun(f.seed));
        eprintln!("---- {}", f.message);
        if shown.trace.len() < f.trace.len() {
            eprintln!(
                "---- shrunk: {} steps, left out {:?}, quiet {:?}; its trace ({} lines, the whole run's: {}):",
                small.steps,
                small.skip,
                small.quiet,
                shown.trace.len(),
                f.trace.len()
            );
        } else {
            eprintln!("---- its trace:");
        }
        for l in &shown.trace {
            eprintln!("{l}");
        }
        eprintln!("---- seed {}: {}", f.seed, shown.message);
        eprintln!("rerun: {}", small.rerun(f.seed));
        let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
        panic!("{} of {done} seeds failed: {seeds:?}", failures.len());
    }
}

/// The kind of a failure (its message up to the first colon): shrinking
/// keeps a smaller run only when it fails the same way.
fn kind(message: &str) -> &str {
    message.split(':').next().unwrap_or(message)
}

/// Makes a failing seed's run as small as it still fails the same way in:
/// the fewest steps, then each step left out (last first), then each kind of
/// trouble turned off. A few dozen runs of one seed (seconds). Returns the
/// knobs and the failure of the smallest run.
fn shrink_seed(first: &Failure, knobs: &Knobs) -> (Knobs, Failure) {
    let rt = runtime(knobs);
    let seed = first.seed;
    let mut runs = 0;
    SHRINKING.store(true, Ordering::SeqCst);
    let mut attempt = |k: &Knobs| -> Option<Failure> {
        runs += 1;
        let dir = tempfile::Builder::new()
            .prefix("dcsync-shrink-")
            .tempdir_in(scratch_base())
            .expect("tempdir");
        rt.block_on(async {
            let backend = Backend::start(dir.path()).await;
            let r = run_any(seed, k, &backend, dir.path()).await;
            backend.stop().await;
            r.err().filter(|f| kind(&f.message) == kind(&first.message))
        })
    };
    let mut best = (knobs.clone(), first.clone());
    for steps in 1..knobs.steps {
        let k = Knobs::all(knobs.daemon, steps);
        if let Some(f) = attempt(&k) {
            best = (k, f);
            break;
        }
    }
    for step in (0..best.0.steps).rev() {
        let mut k = best.0.clone();
        k.skip.insert(step);
        if let Some(f) = attempt(&k) {
            best = (k, f);
        }
    }
    for q in QUIET {
        let mut k = best.0.clone();
        k.quiet.insert(q);
        if let Some(f) = attempt(&k) {
            best = (k, f);
        }
    }
    SHRINKING.store(false, Ordering::SeqCst);
    eprintln!("simulation: shrunk seed {seed} in {runs} runs");
    best
}

/// The in-memory host answers as the emulator over HTTP does
/// (`differential.rs`): `DCSYNC_SIM_DIFF_SEEDS` sequences (default 40) of
/// 150 calls each.
#[test]
fn differential() {
    let seeds = env_u64("DCSYNC_SIM_DIFF_SEEDS", 40);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    for seed in 0..seeds {
        let dir = tempfile::Builder::new()
            .prefix("dcsync-diff-")
            .tempdir_in(scratch_base())
            .expect("tempdir");
        if let Err(e) = rt.block_on(differential::run(seed, 150, dir.path())) {
            failures.push(e);
        }
    }
    if let Some(first) = failures.first() {
        panic!(
            "{} of {seeds} call sequences differ; the first:\n{first}",
            failures.len()
        );
    }
}
