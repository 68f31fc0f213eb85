//! `dcsync sync` and `dcsync status`: one pass of the engine for the
//! configured pair, and what the state database knows about it.
//!
//! Owns turning the config into an engine configuration (which database,
//! which limits), the per-op lines and the one-line summary, and the exit
//! codes of a pass (0 converged, 1 some ops failed, 3 safety stop).

use super::{CliError, Ui};
use crate::clock::SystemClock;
use crate::config::{self, Config, ConfigError};
use crate::engine::{self, EngineConfig, PairSpec, Reporter, SyncRequest};
use crate::plan::{Op, PlanOptions};
use crate::state::{self, StateDb};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every sync pair of the config: the top-level `local_path`/`remote_path`
/// (if set) and each `[[pair]]` table, with top-level defaults filled in.
pub fn pairs(config: &Config, config_path: &Path) -> Result<Vec<PairSpec>, CliError> {
    let invalid = |message: String| {
        CliError::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            message,
        })
    };
    let state_dir = match &config.state_dir {
        Some(d) => d.clone(),
        None => config::default_state_dir().ok_or_else(|| {
            invalid("no default state directory on this platform; set state_dir".into())
        })?,
    };
    let top_poll = match &config.poll_interval {
        Some(v) => config::parse_duration("poll_interval", v).map_err(invalid)?,
        None => config::DEFAULT_POLL_INTERVAL,
    };
    let trash = crate::engine::trash::TrashPolicy {
        retention: match &config.trash_retention {
            Some(v) => config::parse_duration("trash_retention", v).map_err(invalid)?,
            None => crate::engine::trash::DEFAULT_RETENTION,
        },
        max_bytes: match &config.trash_max_size {
            Some(v) => Some(config::parse_size("trash_max_size", v).map_err(invalid)?),
            None => None,
        },
    };
    let mut list: Vec<config::PairConfig> = Vec::new();
    match (&config.local_path, &config.remote_path) {
        (Some(l), Some(r)) => list.push(config::PairConfig {
            local_path: l.clone(),
            remote_path: r.clone(),
            ..Default::default()
        }),
        (Some(_), None) => {
            return Err(invalid(
                "local_path is set but remote_path is not; which remote folder should it sync with (\"/\" for all)?".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "remote_path is set but local_path is not; which local folder should be synced?"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    list.extend(config.pairs.iter().cloned());
    if list.is_empty() {
        return Err(invalid(
            "no sync pair: set local_path and remote_path (or add [[pair]] tables)".into(),
        ));
    }
    let mut out: Vec<PairSpec> = Vec::new();
    for p in list {
        let local = absolute(&p.local_path);
        let remote = p.remote_path.clone();
        let key = state::pair_key(
            &local,
            config.api_url.trim_end_matches('/'),
            remote.trim_end_matches('/'),
        );
        let name = p.name.clone().unwrap_or_else(|| {
            local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| key.clone())
        });
        if out.iter().any(|o| o.name == name) {
            return Err(invalid(format!(
                "two sync pairs are called {name:?}; give them distinct `name`s"
            )));
        }
        if out.iter().any(|o| {
            o.engine.local_root.starts_with(&local) || local.starts_with(&o.engine.local_root)
        }) {
            return Err(invalid(format!(
                "{} overlaps another sync pair's local folder; pairs must not nest",
                local.display()
            )));
        }
        let poll_interval = match &p.poll_interval {
            Some(v) => config::parse_duration("poll_interval", v).map_err(invalid)?,
            None => top_poll,
        };
        out.push(PairSpec {
            name,
            poll_interval,
            poll_budget: p
                .poll_budget
                .or(config.poll_budget)
                .unwrap_or(crate::daemon::sweep::DEFAULT_BUDGET),
            engine: EngineConfig {
                local_root: local,
                remote_path: remote,
                db_path: state::db_path_for(&state_dir, &key),
                plan: PlanOptions {
                    mode: p.mode.or(config.mode).unwrap_or_default(),
                    propagate_deletes: p
                        .propagate_deletes
                        .or(config.propagate_deletes)
                        .unwrap_or(false),
                },
                transfers: p
                    .transfers
                    .or(config.transfers)
                    .unwrap_or(config::DEFAULT_TRANSFERS),
                listing_concurrency: 4,
                max_delete_percent: p
                    .max_delete_percent
                    .or(config.max_delete_percent)
                    .unwrap_or(config::DEFAULT_MAX_DELETE_PERCENT),
                max_delete_count: p
                    .max_delete_count
                    .or(config.max_delete_count)
                    .unwrap_or(config::DEFAULT_MAX_DELETE_COUNT),
                trash,
            },
        });
    }
    Ok(out)
}

/// The single pair of a config (the first one when there are several).
pub fn engine_config(config: &Config, config_path: &Path) -> Result<EngineConfig, CliError> {
    Ok(pairs(config, config_path)?.remove(0).engine)
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
    op.to_string()
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
            (None, Ok(())) if !self.quiet => out!("{}", describe(op)),
            _ => {}
        }
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// The pairs a command names: all of them, or the one called `only`.
pub fn chosen_pairs(
    config: &Config,
    config_path: &Path,
    only: Option<&str>,
) -> Result<Vec<PairSpec>, CliError> {
    let all = pairs(config, config_path)?;
    let Some(name) = only else {
        return Ok(all);
    };
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    let chosen: Vec<PairSpec> = all.into_iter().filter(|p| p.name == name).collect();
    if chosen.is_empty() {
        return Err(CliError::Usage(format!(
            "no sync pair named {name:?} in {}; pairs: {}",
            config_path.display(),
            names.join(", ")
        )));
    }
    Ok(chosen)
}

/// What `dcsync sync` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct SyncFlags {
    pub dry_run: bool,
    pub allow_mass_delete: bool,
    /// No quick check: build the three trees.
    pub full: bool,
}

pub async fn sync(
    config: &Config,
    config_path: &Path,
    only: Option<&str>,
    flags: SyncFlags,
    ui: Ui,
    quiet: bool,
) -> Result<(), CliError> {
    let all = chosen_pairs(config, config_path, only)?;
    let client = super::client_for(config)?;
    let many = all.len() > 1;
    let mut worst: Option<CliError> = None;
    for pair in all {
        if many && !quiet {
            out!(
                "[{}] {} <-> {}",
                pair.name,
                pair.engine.local_root.display(),
                pair.engine.remote_path
            );
        }
        match sync_pair(&client, &pair.engine, flags, ui, quiet).await {
            Ok(()) => {}
            Err(e) if !many => return Err(e),
            Err(e) => {
                eprintln!(
                    "error: [{}] {}",
                    pair.name,
                    crate::model::printable_text(&e.to_string())
                );
                if worst.as_ref().is_none_or(|w| e.exit_code() > w.exit_code()) {
                    worst = Some(e);
                }
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

async fn sync_pair(
    client: &crate::api::Client,
    ecfg: &EngineConfig,
    flags: SyncFlags,
    ui: Ui,
    quiet: bool,
) -> Result<(), CliError> {
    let SyncFlags {
        dry_run,
        allow_mass_delete,
        full,
    } = flags;
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
        focus: None,
        quick_check: !full,
        host_from_polls: false,
        keep: None,
        ..SyncRequest::default()
    };
    let result = engine::sync(client, ecfg, req, Arc::new(SystemClock), &reporter).await;
    if let Some(b) = &reporter.bar {
        b.finish_and_clear();
    }
    let report = result.map_err(CliError::Engine)?;
    if dry_run {
        // The pass plan: ops, what waits, what was not seen or held back,
        // deletes and the guard's verdict.
        let plan = report.plan.unwrap_or_default();
        let text = plan.to_string();
        if !text.is_empty() {
            out!("{}", text.trim_end());
        }
        out!(
            "dry run: {} operations planned, nothing changed",
            plan.ops.len()
        );
        if let Some(why) = report.stopped {
            return Err(CliError::WouldStop(format!(
                "the real pass would stop here: {why}"
            )));
        }
        return Ok(());
    }
    let r = &report;
    let line = format!(
        "{}: {} uploaded, {} downloaded, {} copied, {} moved, {} deleted, {} conflicts, {} skipped, {} errors, {} sent, {} received, {} API calls, {:.1} s",
        match (r.in_sync(), ecfg.plan.mode) {
            (true, crate::plan::Mode::TwoWay) => "in sync",
            // One-way: the sides may differ by design; say what is true.
            (true, crate::plan::Mode::UploadOnly) => {
                "up to date (upload-only: what is only on the host is left there)"
            }
            (true, crate::plan::Mode::DownloadOnly) => {
                "up to date (download-only: what is only local is left there)"
            }
            (false, _) => "not in sync yet",
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
        out!("{line}");
    }
    if r.in_sync() {
        return Ok(());
    }
    let mut why = Vec::new();
    if !r.errors.is_empty() || !r.converged {
        why.push(format!(
            "{} operations failed or are still pending; running sync again is safe",
            r.errors.len().max(1)
        ));
    }
    if !r.unseen.is_empty() {
        why.push(format!(
            "could not look at {} path(s), so nothing there was synced: {}{}",
            r.unseen.len(),
            r.unseen
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if r.unseen.len() > 5 { ", ..." } else { "" }
        ));
    }
    if !r.waiting.is_empty() {
        why.push(format!(
            "{} path(s) left as they are: {}{}",
            r.waiting.len(),
            r.waiting
                .iter()
                .take(5)
                .map(|(p, w)| format!("{p} ({w})"))
                .collect::<Vec<_>>()
                .join(", "),
            if r.waiting.len() > 5 { ", ..." } else { "" }
        ));
    }
    Err(CliError::Partial(why.join("; ")))
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

/// The state directory of a config (explicit or the platform default).
pub fn state_dir(config: &Config, config_path: &Path) -> Result<PathBuf, CliError> {
    match &config.state_dir {
        Some(d) => Ok(d.clone()),
        None => config::default_state_dir().ok_or_else(|| {
            CliError::Config(ConfigError::Invalid {
                path: config_path.to_path_buf(),
                message: "no default state directory on this platform; set state_dir".into(),
            })
        }),
    }
}

pub async fn status(
    config: &Config,
    config_path: &Path,
    only: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let all = chosen_pairs(config, config_path, only)?;
    let socket = crate::daemon::socket_path(&state_dir(config, config_path)?, config_path);
    let answer = crate::daemon::control::request(&socket, &crate::daemon::control::Request::Status)
        .await
        .ok();
    let bwlimit = answer.as_ref().and_then(|r| r.bwlimit.clone());
    let live = answer.map(|r| r.pairs);
    let mut out = Vec::new();
    for pair in &all {
        let l = live
            .as_ref()
            .and_then(|v| v.iter().find(|s| s.name == pair.name));
        out.push(status_pair(pair, l, json)?);
    }
    if json {
        print_json_per_pair(out);
    } else if live.is_none() {
        out!("(no daemon running)");
    } else if let Some(b) = bwlimit {
        out!("bandwidth limit: {b}");
    }
    Ok(())
}

fn status_pair(
    pair: &PairSpec,
    live: Option<&crate::daemon::PairStatus>,
    json: bool,
) -> Result<serde_json::Value, CliError> {
    let ecfg = &pair.engine;
    let live_json = serde_json::to_value(live).unwrap_or_default();
    if !ecfg.db_path.exists() {
        if !json {
            out!(
                "[{}] {} <-> {}: never synced (run `dcsync sync`)",
                pair.name,
                ecfg.local_root.display(),
                ecfg.remote_path
            );
            print_live(live);
        }
        return Ok(serde_json::json!({
            "name": pair.name,
            "synced_before": false,
            "local_path": ecfg.local_root,
            "remote_path": ecfg.remote_path,
            "daemon": live_json,
        }));
    }
    let db = StateDb::open(&ecfg.db_path).map_err(|e| CliError::Engine(e.into()))?;
    let st = |e: state::StateError| CliError::Engine(e.into());
    let counts = db.status_counts().map_err(st)?;
    let last = db.get_meta("last_sync").map_err(st)?;
    let result = db.get_meta("last_result").map_err(st)?;
    let left = db
        .get_meta(engine::LAST_PLAN)
        .map_err(st)?
        .unwrap_or_default();
    let skipped = db.skipped().map_err(st)?;
    let conflicts = db.conflicts().map_err(st)?;
    if !json {
        out!(
            "[{}] {} <-> {}",
            pair.name,
            ecfg.local_root.display(),
            ecfg.remote_path
        );
        print_live(live);
        out!(
            "last sync: {} ({})",
            last.as_deref().unwrap_or("never"),
            result.as_deref().unwrap_or("unknown")
        );
        if !left.is_empty() {
            // The last pass's plan: why it was not in sync.
            const SHOWN: usize = 20;
            out!("left by the last pass:");
            for l in left.lines().take(SHOWN) {
                out!("  {l}");
            }
            let more = left.lines().count().saturating_sub(SHOWN);
            if more > 0 {
                out!("  ... and {more} more");
            }
        }
        out!(
            "tracked: {} files, {} folders, {}",
            counts.files,
            counts.folders,
            human_bytes(counts.bytes)
        );
        out!("pending operations: {}", counts.pending_ops);
        out!("conflicts: {}", conflicts.len());
        for c in &conflicts {
            out!("  {} -> kept as {} ({})", c.path, c.copy_path, c.created_at);
        }
        out!("skipped or synced under another name: {}", skipped.len());
        for s in &skipped {
            out!("  [{}] {}: {}", s.side, s.path, s.reason);
        }
    }
    Ok(serde_json::json!({
        "name": pair.name,
        "synced_before": true,
        "local_path": ecfg.local_root,
        "remote_path": ecfg.remote_path,
        "mode": ecfg.plan.mode,
        "last_sync": last,
        "last_result": result,
        "left_by_last_pass": left.lines().collect::<Vec<_>>(),
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
        "daemon": live_json,
    }))
}

fn print_live(live: Option<&crate::daemon::PairStatus>) {
    let Some(l) = live else { return };
    let mut line = format!("daemon: {}", l.state);
    if l.state == "syncing" {
        line.push_str(&format!(" ({}/{} ops)", l.ops_done, l.ops_planned));
    }
    if let Some(d) = &l.detail {
        line.push_str(&format!(" - {d}"));
    }
    if let Some(n) = l.next_poll_secs {
        line.push_str(&format!("; next look at the host in {n} s"));
    }
    if !l.watching {
        line.push_str("; not watching (polling instead)");
    }
    out!("{line}");
    if let Some(sw) = &l.sweep {
        out!(
            "remote polling: {} folders, {} looked at every poll, up to {} listings a poll; \
             this round {} of {}; every folder within {}, the stalest seen {} ago",
            sw.folders,
            sw.hot,
            sw.per_poll,
            sw.round_done,
            sw.folders,
            human_secs(sw.round_secs),
            human_secs(sw.stalest_secs)
        );
    }
    for t in &l.transfers {
        let pct = (t.done * 100).checked_div(t.total).unwrap_or(100);
        out!(
            "  transferring {} {pct}% ({} of {})",
            t.path,
            human_bytes(t.done),
            human_bytes(t.total)
        );
    }
    if let Some(e) = &l.last_error {
        out!("last error: {e}");
    }
}

/// `90 s` as `1m 30s`.
fn human_secs(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// `dcsync conflicts [PAIR] [--json]`: the kept pairs of versions, with
/// which side each came from and its size on disk (absent: only on the
/// host). Reads only the state DB and the disk.
pub fn conflicts(
    config: &Config,
    config_path: &Path,
    only: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let all = chosen_pairs(config, config_path, only)?;
    let mut out = Vec::new();
    for pair in &all {
        let ecfg = &pair.engine;
        let list = if ecfg.db_path.exists() {
            StateDb::open(&ecfg.db_path)
                .and_then(|db| db.conflicts())
                .map_err(|e| CliError::Engine(e.into()))?
        } else {
            Vec::new()
        };
        let size = |p: &crate::model::RelPath| {
            std::fs::symlink_metadata(ecfg.local_root.join(p.as_str()))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        };
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|c| {
                let (path_side, copy_side) = match c.copy_from {
                    state::Side::Local => ("remote", "local"),
                    state::Side::Remote => ("local", "remote"),
                };
                serde_json::json!({
                    "path": c.path.as_str(),
                    "path_version": path_side,
                    "path_size": size(&c.path),
                    "copy": c.copy_path.as_str(),
                    "copy_version": copy_side,
                    "copy_size": size(&c.copy_path),
                    "created_at": c.created_at,
                })
            })
            .collect();
        if json {
            out.push(serde_json::json!({ "pair": pair.name, "conflicts": rows }));
            continue;
        }
        out!(
            "[{}] {} conflicts (both versions kept)",
            pair.name,
            rows.len()
        );
        let shown = |s: &serde_json::Value| {
            s.as_u64()
                .map_or("only on the host".to_owned(), human_bytes)
        };
        for (c, r) in list.iter().zip(&rows) {
            out!(
                "  {}  {} ({} version, {})  <->  {} ({} version, {})",
                c.created_at,
                c.path,
                r["path_version"].as_str().unwrap_or_default(),
                shown(&r["path_size"]),
                c.copy_path,
                r["copy_version"].as_str().unwrap_or_default(),
                shown(&r["copy_size"]),
            );
        }
    }
    if json {
        print_json_per_pair(out);
    }
    Ok(())
}

/// Prints one JSON value per pair: the value itself for one pair, an array
/// for several.
pub fn print_json_per_pair(mut values: Vec<serde_json::Value>) {
    let v = if values.len() == 1 {
        values.remove(0)
    } else {
        serde_json::Value::Array(values)
    };
    out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}
