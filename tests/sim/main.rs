//! Whole-engine simulation: the production engine, executor and recovery
//! (`dcsync::engine::sync`) run against the emulator's host rules through the
//! `dcsync::api::Host` seam, while a seeded world acts around every host
//! call: a local user and a remote user change files and folders, calls
//! fail before or after the host did the work, answers get lost, the
//! process crashes at any call (the pass is dropped and the next one starts
//! from the state database and journal), the local folder vanishes. After
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

mod differential;
mod host;
mod memhost;
mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use dcsync::api::host::Host;
use dcsync::api::{
    Client, ClientOptions, Credentials, FolderOptions, RetryPolicy, Secret, TokenStore,
};
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
    Http(RunningEmulator),
}

impl Backend {
    async fn start(dir: &Path) -> Backend {
        let config = EmuConfig::new(dir.join("emu"), KEY1, KEY2);
        if std::env::var("DCSYNC_SIM_HOST").is_ok_and(|h| h == "http") {
            Backend::Http(RunningEmulator::start(config).await.expect("emulator"))
        } else {
            Backend::Mem(InProcess::volatile(config).expect("in-process host"))
        }
    }

    /// A new connection to the host (for the other users, or the engine).
    fn host(&self, tokens: &Path) -> Arc<dyn Host> {
        match self {
            Backend::Mem(h) => Arc::new(memhost::MemHost(h.clone())),
            Backend::Http(e) => Arc::new(client(&e.api_url(), tokens)),
        }
    }

    async fn stop(self) {
        if let Backend::Http(e) = self {
            let _ = e.stop().await;
        }
    }
}

/// A seed that failed: what went wrong and what happened before.
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
    shared: Arc<Shared>,
    host: SimHost,
    cfg: EngineConfig,
    clock: Arc<dcsync::clock::SystemClock>,
    ops: OpLog,
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
        let req = SyncRequest {
            allow_mass_delete,
            ..Default::default()
        };
        tokio::select! {
            biased;
            _ = signal.notified() => Outcome::Crashed,
            r = dcsync::engine::sync(&self.host, &self.cfg, req, self.clock.clone(), &self.ops) => {
                Outcome::Done(Box::new(r))
            }
        }
    }

    async fn log(&self, s: String) {
        self.shared.world.lock().await.log(s);
    }
}

fn summary(r: &Result<SyncReport, EngineError>) -> String {
    match r {
        Ok(r) => format!(
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
        ),
        Err(e) => format!("error: {e}"),
    }
}

async fn run_seed(seed: u64, steps: u64, backend: &Backend, base: &Path) -> Result<(), Failure> {
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
    let rates = Rates {
        local: rng.random_range(0.02..0.2),
        remote: rng.random_range(0.02..0.2),
        fail: rng.random_range(0.0..0.05),
        lose: rng.random_range(0.0..0.05),
        crash: rng.random_range(0.0..0.03),
    };
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
    let world = World::new(seed, rates, root.clone(), scratch, plain, remote_root);
    let trace = world.trace.clone();
    CURRENT.with(|c| *c.borrow_mut() = Some(trace.clone()));
    let shared = Shared::new(world);
    let s = Seed {
        shared: shared.clone(),
        host: SimHost {
            inner: backend.host(&tokens),
            shared: shared.clone(),
            one_at_a_time: Default::default(),
        },
        cfg,
        clock: Arc::new(dcsync::clock::SystemClock),
        ops: OpLog(trace.clone()),
    };
    s.log(format!(
        "seed {seed}: {rates:?}, transfers {}",
        s.cfg.transfers
    ))
    .await;
    let fail = |message: String, _: &Arc<Shared>| {
        let trace = trace.lock().map(|t| t.clone()).unwrap_or_default();
        Failure {
            seed,
            message,
            trace,
        }
    };

    for step in 0..steps {
        let roll = rng.random_range(0..100);
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
            // The local folder vanishes (an unmounted disk): the pass must
            // stop without touching the host.
            let away = dir.join("unmounted");
            std::fs::rename(&root, &away).expect("unmount");
            let before = {
                let w = shared.world.lock().await;
                world::rtree(w.plain.as_ref(), remote_root).await
            };
            let o = s.pass(false).await;
            let after = {
                let w = shared.world.lock().await;
                world::rtree(w.plain.as_ref(), remote_root).await
            };
            std::fs::rename(&away, &root).expect("mount again");
            let r = match o {
                Outcome::Done(r) => r,
                Outcome::Crashed => unreachable!("not armed"),
            };
            s.log(format!(
                "step {step}: local folder gone; pass {}",
                summary(&r)
            ))
            .await;
            if r.is_ok() {
                return Err(fail(
                    "a pass without its local folder did not stop".into(),
                    &shared,
                ));
            }
            let ids = |t: Result<world::RTree, _>| {
                t.map(|t| {
                    (
                        t.files
                            .iter()
                            .map(|(p, f)| (p.clone(), f.id))
                            .collect::<Vec<_>>(),
                        t.dirs,
                    )
                })
                .ok()
            };
            if ids(before) != ids(after) {
                return Err(fail(
                    "a pass without its local folder changed the host".into(),
                    &shared,
                ));
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
        return Err(fail(
            format!("not in sync after {SETTLE_PASSES} passes without users: {last}"),
            &shared,
        ));
    }
    let checked = shared.world.lock().await.check().await;
    if let Err(m) = checked {
        return Err(fail(m, &shared));
    }
    // One seed asked for by name: its trace, also when it passes.
    if std::env::var("DCSYNC_SIM_SEED").is_ok()
        && let Ok(t) = trace.lock()
    {
        for l in t.iter() {
            eprintln!("{l}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
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
static FAILED: AtomicU64 = AtomicU64::new(0);

fn run_thread(t: u64, threads: u64, seeds: &[u64], steps: u64) -> (u64, Vec<Failure>) {
    let stop_first = std::env::var("DCSYNC_SIM_STOP_FIRST").is_ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
            if let Err(f) = run_seed(seed, steps, e, dir.path()).await {
                FAILED.fetch_add(1, Ordering::SeqCst);
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
    18, 60, 115, 209, 293, 786, 20455, 20846, 40055, 40229, 40438, 41044, 41709, 41941, 43616,
    44134, 47677, 47701, 47805, 49720, 102023, 103801, 105415, 113786,
];

#[test]
fn simulation() {
    init_logging();
    let steps = env_u64("DCSYNC_SIM_STEPS", 40);
    let (from, count, threads) = match std::env::var("DCSYNC_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(one) => (one, 1, 1),
        None => (
            env_u64("DCSYNC_SIM_FROM", 0),
            env_u64("DCSYNC_SIM_SEEDS", 2000),
            env_u64("DCSYNC_SIM_THREADS", 4),
        ),
    };
    let started = Instant::now();
    // The range, and (unless one seed was asked for) the regression seeds.
    let mut seeds: Vec<u64> = (from..from + count).collect();
    if count > 1 {
        seeds.extend(
            REGRESSION_SEEDS
                .iter()
                .filter(|s| !(from..from + count).contains(*s)),
        );
    }
    let seeds = Arc::new(seeds);
    let handles: Vec<_> = (0..threads.min(count.max(1)))
        .map(|t| {
            let seeds = seeds.clone();
            std::thread::spawn(move || run_thread(t, threads, &seeds, steps))
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
        eprintln!("---- first failing seed {} trace:", f.seed);
        for l in &f.trace {
            eprintln!("{l}");
        }
        eprintln!("---- seed {}: {}", f.seed, f.message);
        eprintln!(
            "rerun: DCSYNC_SIM_SEED={} DCSYNC_SIM_STEPS={steps} cargo test --test sim -- --nocapture",
            f.seed
        );
        let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
        panic!("{} of {done} seeds failed: {seeds:?}", failures.len());
    }
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
