//! `dcsync sync` and `dcsync status`: one pass of the engine for the
//! configured pair, and what the state database knows about it.
//!
//! Owns turning the config into an engine configuration (which database,
//! which limits), the per-op lines and the one-line summary, and the exit
//! codes of a pass (0 converged, 1 some ops failed, 3 safety stop).

use super::{CliError, Ui};
use crate::clock::SystemClock;
use crate::config::{self, Config, ConfigError};
use crate::engine::{self, EngineConfig, Reporter, SyncRequest};
use crate::plan::{Op, PlanOptions};
use crate::state::{self, StateDb};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the state DB for the config's pair lives, and the engine settings.
pub fn engine_config(config: &Config, config_path: &Path) -> Result<EngineConfig, CliError> {
    let invalid = |message: &str| {
        CliError::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            message: message.to_owned(),
        })
    };
    let local = config
        .local_path
        .clone()
        .ok_or_else(|| invalid("local_path is not set; which local folder should be synced?"))?;
    let remote = config.remote_path.clone().ok_or_else(|| {
        invalid("remote_path is not set; which remote folder should be synced (\"/\" for all)?")
    })?;
    let local = absolute(&local);
    let state_dir = match &config.state_dir {
        Some(d) => d.clone(),
        None => config::default_state_dir()
            .ok_or_else(|| invalid("no default state directory on this platform; set state_dir"))?,
    };
    let key = state::pair_key(
        &local,
        config.api_url.trim_end_matches('/'),
        remote.trim_end_matches('/'),
    );
    Ok(EngineConfig {
        local_root: local,
        remote_path: remote,
        db_path: state::db_path_for(&state_dir, &key),
        plan: PlanOptions {
            mode: config.mode.unwrap_or_default(),
            propagate_deletes: config.propagate_deletes.unwrap_or(false),
        },
        transfers: config.transfers.unwrap_or(config::DEFAULT_TRANSFERS),
        listing_concurrency: 4,
        max_delete_percent: config
            .max_delete_percent
            .unwrap_or(config::DEFAULT_MAX_DELETE_PERCENT),
        max_delete_count: config
            .max_delete_count
            .unwrap_or(config::DEFAULT_MAX_DELETE_COUNT),
    })
}

/// The path made absolute (and canonical when it exists), so one folder
/// always maps to one state database.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// One line per op, as a person reads it.
pub fn describe(op: &Op) -> String {
    match op {
        Op::CreateRemoteDir { path, .. } => format!("mkdir remote  {path}/"),
        Op::CreateLocalDir { path, .. } => format!("mkdir local   {path}/"),
        Op::RecordDir { path, .. } => format!("same folder   {path}/"),
        Op::MoveRemote { from, to, .. } => format!("move remote   {from} -> {to}"),
        Op::MoveLocal { from, to, .. } => format!("move local    {from} -> {to}"),
        Op::RecordMove { from, to, .. } => format!("moved both    {from} -> {to}"),
        Op::Upload { path, .. } => format!("upload        {path}"),
        Op::RemoteCopy { path, .. } => format!("copy remote   {path}"),
        Op::Download { path, .. } => format!("download      {path}"),
        Op::Reconcile { path, .. } => format!("compare       {path}"),
        Op::SetAside { path, .. } => format!("set aside     {path}"),
        Op::DeleteRemote { path, .. } => format!("trash remote  {path}"),
        Op::DeleteLocal { path, .. } => format!("trash local   {path}"),
        Op::Forget { path } => format!("forget        {path}"),
    }
}

/// Prints progress: a bar on a terminal, plain lines otherwise.
struct CliReporter {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    bytes: AtomicU64,
}

impl Reporter for CliReporter {
    fn planned(&self, _round: usize, ops: &[Op]) {
        if let Some(b) = &self.bar {
            b.inc_length(ops.len() as u64);
        }
    }
    fn op_done(&self, op: &Op, result: &Result<(), String>) {
        match (&self.bar, result) {
            (Some(b), Ok(())) => {
                b.inc(1);
                b.set_message(describe(op));
            }
            (Some(b), Err(_)) => b.inc(1),
            (None, Ok(())) if !self.quiet => println!("{}", describe(op)),
            _ => {}
        }
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

pub async fn sync(
    config: &Config,
    config_path: &Path,
    dry_run: bool,
    allow_mass_delete: bool,
    ui: Ui,
    quiet: bool,
) -> Result<(), CliError> {
    let ecfg = engine_config(config, config_path)?;
    let client = super::client_for(config)?;
    let bar = ui.progress.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} ops {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let reporter = CliReporter {
        bar,
        quiet,
        bytes: AtomicU64::new(0),
    };
    let req = SyncRequest {
        dry_run,
        allow_mass_delete,
    };
    let result = engine::sync(&client, &ecfg, req, Arc::new(SystemClock), &reporter).await;
    if let Some(b) = &reporter.bar {
        b.finish_and_clear();
    }
    let report = result.map_err(CliError::Engine)?;
    if dry_run {
        for op in &report.planned {
            println!("{}", describe(op));
        }
        println!(
            "dry run: {} operations planned, nothing changed",
            report.planned.len()
        );
        return Ok(());
    }
    let r = &report;
    let line = format!(
        "{}: {} uploaded, {} downloaded, {} copied, {} moved, {} deleted, {} conflicts, {} skipped, {} errors, {} sent, {} received, {} API calls, {:.1} s",
        if r.converged && r.errors.is_empty() {
            "in sync"
        } else {
            "not in sync yet"
        },
        r.uploaded,
        r.downloaded,
        r.copied,
        r.moved,
        r.deleted_local + r.deleted_remote,
        r.conflicts,
        r.skipped,
        r.errors.len(),
        human_bytes(r.bytes_up),
        human_bytes(r.bytes_down),
        client.requests_sent(),
        r.elapsed.as_secs_f64()
    );
    if !quiet {
        println!("{line}");
    }
    if r.errors.is_empty() && r.converged {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} operations failed or are still pending; running sync again is safe",
            r.errors.len().max(1)
        )))
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn status(config: &Config, config_path: &Path, json: bool) -> Result<(), CliError> {
    let ecfg = engine_config(config, config_path)?;
    if !ecfg.db_path.exists() {
        if json {
            println!(
                "{}",
                serde_json::json!({"synced_before": false, "local_path": ecfg.local_root, "remote_path": ecfg.remote_path})
            );
        } else {
            println!(
                "{} <-> {}: never synced (run `dcsync sync`)",
                ecfg.local_root.display(),
                ecfg.remote_path
            );
        }
        return Ok(());
    }
    let db = StateDb::open(&ecfg.db_path).map_err(|e| CliError::Engine(e.into()))?;
    let st = |e: state::StateError| CliError::Engine(e.into());
    let counts = db.status_counts().map_err(st)?;
    let last = db.get_meta("last_sync").map_err(st)?;
    let result = db.get_meta("last_result").map_err(st)?;
    let skipped = db.skipped().map_err(st)?;
    let conflicts = db.conflicts().map_err(st)?;
    if json {
        let v = serde_json::json!({
            "synced_before": true,
            "local_path": ecfg.local_root,
            "remote_path": ecfg.remote_path,
            "mode": ecfg.plan.mode,
            "last_sync": last,
            "last_result": result,
            "files": counts.files,
            "folders": counts.folders,
            "bytes": counts.bytes,
            "pending_ops": counts.pending_ops,
            "skipped": skipped.iter().map(|s| serde_json::json!({
                "path": s.path, "side": s.side.to_string(), "reason": s.reason, "since": s.since
            })).collect::<Vec<_>>(),
            "conflicts": conflicts.iter().map(|c| serde_json::json!({
                "path": c.path, "copy": c.copy_path, "at": c.created_at
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!("{} <-> {}", ecfg.local_root.display(), ecfg.remote_path);
    println!(
        "last sync: {} ({})",
        last.as_deref().unwrap_or("never"),
        result.as_deref().unwrap_or("unknown")
    );
    println!(
        "tracked: {} files, {} folders, {}",
        counts.files,
        counts.folders,
        human_bytes(counts.bytes)
    );
    println!("pending operations: {}", counts.pending_ops);
    println!("conflicts: {}", conflicts.len());
    for c in &conflicts {
        println!("  {} -> kept as {} ({})", c.path, c.copy_path, c.created_at);
    }
    println!("skipped: {}", skipped.len());
    for s in &skipped {
        println!("  [{}] {}: {}", s.side, s.path, s.reason);
    }
    Ok(())
}
