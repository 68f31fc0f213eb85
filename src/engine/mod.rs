//! The sync engine: one `sync` call brings the local folder and the remote
//! folder to the same state, in planning rounds, and records the result.
//!
//! Owns the order of a pass (safety checks, journal recovery, scan and
//! snapshot, plan, mass-delete guard, execute, record) and the safety stops
//! (missing root marker, vanished remote root, mass delete). The decisions
//! live in [`crate::plan`]; the side effects in [`exec`]; crash recovery in
//! [`recover`]. It never deletes anything itself: only ops do, and only to
//! a trash.

mod across;
mod exec;
mod fsat;
mod pass;
mod recover;
pub mod trash;
mod unchanged;
pub mod windows;

use crate::api::host::Host;
use crate::api::{ApiError, FolderId};
use crate::clock::{self, Clock};
use crate::model::{RelPath, Scope};
use crate::plan::{self, Op, PlanOptions};
use crate::scan::{self, IgnoreRules, ScanError};
use crate::snapshot::{self, SnapshotError};
use crate::state::{Side, StateDb, StateError};
pub use pass::IGNORED_REMOTE;
pub use pass::PassPlan;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name of the marker folder in the sync root (also holds trash and temp files).
pub const MARKER: &str = ".dcsync";
/// Planning rounds in one pass before giving up on convergence.
const MAX_ROUNDS: usize = 10;

/// Everything one sync pair needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub local_root: PathBuf,
    /// `/`-separated folder path from the account root.
    pub remote_path: String,
    pub db_path: PathBuf,
    pub plan: PlanOptions,
    /// Concurrent transfers.
    pub transfers: usize,
    /// Concurrent folder listings.
    pub listing_concurrency: usize,
    pub max_delete_percent: u32,
    pub max_delete_count: u64,
    /// How long (and how much) the local trash keeps.
    pub trash: trash::TrashPolicy,
}

/// The permissions a new local file gets (0666 less the umask).
pub fn new_file_mode() -> u32 {
    fsat::new_file_mode()
}

/// The fast-check identity of a local file or folder from its metadata.
pub fn local_meta(m: &std::fs::Metadata) -> crate::model::LocalMeta {
    exec::meta_of(m)
}

/// One configured sync pair: its name and engine settings.
#[derive(Debug, Clone)]
pub struct PairSpec {
    /// Short name for logs and control commands.
    pub name: String,
    pub engine: EngineConfig,
    /// How often the daemon looks for remote changes.
    pub poll_interval: Duration,
    /// Listings per minute the daemon's polls may make (`daemon::sweep`).
    pub poll_budget: u32,
}

/// What the caller asks of one pass.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Plan only: show what would be done, change nothing.
    pub dry_run: bool,
    /// Go ahead even when the pass deletes more than the limits.
    pub allow_mass_delete: bool,
    /// A focused pass (the daemon after local events): read the state DB,
    /// the disk and the host only in the scopes around these paths
    /// (`plan::focus::scopes_for`), take the rest of the remote tree from
    /// `remote`, and run the plan only if it stays inside them.
    pub focus: Option<Focus>,
    /// A full pass first checks, in bounded memory, whether both sides are
    /// still exactly what Synced recorded (`unchanged`), and ends there when
    /// they are. Off when the caller knows something changed (the check
    /// would only cost a second look at everything).
    pub quick_check: bool,
    /// The quick check looks at the local side only and takes the host as
    /// the caller's own listings saw it (the daemon's polls, whose sweep
    /// lists every folder within a round): for the `full_rescan_interval`
    /// pass, which is there for what the folder watcher missed.
    pub host_from_polls: bool,
    /// The Remote tree the caller keeps from an earlier pass (the daemon's
    /// cache for focused passes): handed back as
    /// [`SyncReport::remote_view`] when the quick check finds nothing
    /// changed, dropped before a full pass builds new trees.
    pub keep: Option<Arc<crate::model::RemoteView>>,
    /// A first sync (Synced empty) of more entries than this runs in
    /// windows of about this many entries each ([`windows`]); 0: never.
    pub window_entries: usize,
}

impl Default for SyncRequest {
    fn default() -> SyncRequest {
        SyncRequest {
            dry_run: false,
            allow_mass_delete: false,
            focus: None,
            quick_check: true,
            host_from_polls: false,
            keep: None,
            window_entries: windows::WINDOW_ENTRIES,
        }
    }
}

/// What a focused pass starts from.
#[derive(Debug, Clone)]
pub struct Focus {
    /// The Remote tree of the last converged pass.
    pub remote: Arc<crate::model::RemoteView>,
    /// Local paths that changed.
    pub paths: Vec<RelPath>,
    /// Remote folders whose listing changed (the daemon's polls): each is
    /// looked at one level deep.
    pub folders: Vec<RelPath>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    pub rounds: usize,
    pub uploaded: u64,
    pub downloaded: u64,
    pub copied: u64,
    pub moved: u64,
    pub created_dirs: u64,
    pub deleted_local: u64,
    pub deleted_remote: u64,
    pub conflicts: u64,
    pub skipped: u64,
    /// Ops whose precondition no longer held; planned again next round.
    pub deferred: u64,
    pub errors: Vec<String>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    #[serde(skip)]
    pub elapsed: Duration,
    /// True when the last round planned nothing.
    pub converged: bool,
    /// The last round's plan (a dry run's only round): ops, what waits,
    /// what was not seen or held back, deletes and the guard's verdict.
    #[serde(skip)]
    pub plan: Option<PassPlan>,
    /// The remote folder synced (`None` = account root).
    #[serde(skip)]
    pub remote_root: Option<FolderId>,
    /// Where the time went (summed over rounds; scan and listing overlap).
    pub timings: Timings,
    /// The Remote tree as last listed in a converged round, for a daemon's
    /// focused passes: its folders and the synced folder's own files (the
    /// focused passes list their scopes' files again).
    #[serde(skip)]
    pub remote_view: Option<Arc<crate::model::RemoteView>>,
    /// A focused pass saw work outside its folders: run a full pass.
    pub needs_full_pass: bool,
    /// The folders the converged round listed, with their listings'
    /// prints (all of them after a full pass, the scopes' after a focused
    /// one): the daemon's poller compares its listings with these.
    #[serde(skip)]
    pub remote_listed: Option<Arc<Vec<snapshot::ListedFolder>>>,
    /// What the last round could not look at (`local: path` or
    /// `remote: path`): failed listings, unreadable folders and files.
    /// Held-back entries (empty files, names the host would change) are
    /// reported as skipped instead.
    pub unseen: Vec<String>,
    /// Paths the last round left for later, with why.
    pub waiting: Vec<(String, String)>,
    /// A dry run: the safety stop the real pass would make after this plan.
    pub stopped: Option<String>,
    /// The quick check found only some paths changed: this pass was
    /// focused around them (`needs_full_pass` then makes `sync` run a full
    /// one right after).
    pub narrowed: bool,
    /// The quick check found both sides as Synced recorded them: no tree
    /// was built (`remote_view` is the folders the check listed, or the
    /// request's `keep` when it looked at the local side only; then
    /// `remote_listed` is `None`).
    pub unchanged: bool,
    /// How many windows of a first sync ran before the last pass
    /// ([`windows`]); 0 when it was not windowed.
    pub windows: usize,
    /// The survey of a first sync that is to run in windows (`sync` runs
    /// them; never part of a report it returns).
    #[serde(skip)]
    planned_windows: Option<Box<windows::Planned>>,
}

impl SyncReport {
    /// This report with what `earlier` (a pass of the same `sync` call)
    /// did added in.
    fn after(mut self, earlier: SyncReport) -> SyncReport {
        self.rounds += earlier.rounds;
        self.uploaded += earlier.uploaded;
        self.downloaded += earlier.downloaded;
        self.copied += earlier.copied;
        self.moved += earlier.moved;
        self.created_dirs += earlier.created_dirs;
        self.windows += earlier.windows;
        self.deleted_local += earlier.deleted_local;
        self.deleted_remote += earlier.deleted_remote;
        self.conflicts += earlier.conflicts;
        self.deferred += earlier.deferred;
        self.bytes_up += earlier.bytes_up;
        self.bytes_down += earlier.bytes_down;
        let mut errors = earlier.errors;
        errors.append(&mut self.errors);
        self.errors = errors;
        self.elapsed += earlier.elapsed;
        let (t, e) = (&mut self.timings, earlier.timings);
        t.load_ms += e.load_ms;
        t.scan_ms += e.scan_ms;
        t.listing_ms += e.listing_ms;
        t.plan_ms += e.plan_ms;
        t.execute_ms += e.execute_ms;
        self
    }

    /// Both sides are equal: the last round planned nothing, nothing
    /// failed, nothing was out of sight and nothing is waiting.
    pub fn in_sync(&self) -> bool {
        self.converged
            && self.errors.is_empty()
            && self.unseen.is_empty()
            && self.waiting.is_empty()
    }
}

/// Time spent per phase of a pass, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    /// Reading the Synced tree from the state DB.
    pub load_ms: u64,
    /// The local scan (runs at the same time as the listing).
    pub scan_ms: u64,
    /// The remote listing.
    pub listing_ms: u64,
    pub plan_ms: u64,
    pub execute_ms: u64,
}

/// The cached Remote tree with the scopes' folders listed again: a deep
/// scope's whole subtree, a one-level scope's direct content. When a
/// one-level listing shows other subfolders than the cache has, their
/// content is not known: those subtrees count as unknown and the second
/// value says a full pass is needed. Not those `made` records at their
/// path with their id (a window of a first sync made them, empty, in an
/// earlier round; the windows after it look inside).
async fn refresh_parts(
    client: &dyn Host,
    f: &Focus,
    scopes: &[(Scope, Option<u64>)],
    trashed: &std::collections::BTreeSet<u64>,
    made: Option<&crate::model::Tree<crate::model::SyncedEntry>>,
    concurrency: usize,
) -> (snapshot::SnapshotOutcome, bool) {
    use crate::model::Kind;
    let mut out = snapshot::SnapshotOutcome {
        view: (*f.remote).clone(),
        ..Default::default()
    };
    let mut stale = false;
    for (scope, id) in scopes {
        let base = &scope.base;
        match still_in_place(client, &f.remote, base).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(path = %base, "this folder was moved or trashed on the host since the last full pass; a full pass looks at it");
                out.view.unknown.push(base.clone());
                stale = true;
                continue;
            }
            Err(e) => {
                tracing::warn!(path = %base, error = %e, "cannot tell whether this folder is still in place on the host; it waits");
                out.view.unknown.push(base.clone());
                out.skipped
                    .push((base.as_str().to_owned(), format!("not looked at: {e}")));
                continue;
            }
        }
        let part = if scope.deep {
            out.view.entries.retain(|k, _| !k.is_below(base));
            snapshot::snapshot_from(client, id.map(FolderId), base.clone(), concurrency).await
        } else {
            // The account root's listing shows folders in the host's trash
            // too; those a full pass found are left out (a new one makes
            // the folders differ: a full pass sorts it out).
            let part =
                snapshot::snapshot_level(client, id.map(FolderId), base.clone(), trashed).await;
            let dirs = |t: &crate::model::Tree<crate::model::RemoteEntry>| -> Vec<(RelPath, u64)> {
                t.iter()
                    .filter(|(k, e)| e.kind == Kind::Dir && scope.contains(k))
                    .map(|(k, e)| (k.clone(), e.id))
                    .collect()
            };
            let ours = |(p, id): &(RelPath, u64)| {
                made.and_then(|m| m.get(p))
                    .is_some_and(|s| s.kind == Kind::Dir && s.remote_id == *id)
            };
            let before = dirs(&out.view.entries);
            let now: Vec<(RelPath, u64)> = dirs(&part.view.entries)
                .into_iter()
                .filter(|d| before.contains(d) || !ours(d))
                .collect();
            if before != now {
                stale = true;
                for (gone, _) in before.iter().filter(|d| !now.contains(d)) {
                    out.view.entries.retain(|k, _| !k.starts_with(gone));
                }
                for (new, _) in now.iter().filter(|d| !before.contains(d)) {
                    out.view.unknown.push(new.clone());
                }
            }
            out.view
                .entries
                .retain(|k, e| !(e.kind == Kind::File && scope.contains(k)));
            part
        };
        out.view.entries.extend(part.view.entries);
        out.view.unknown.extend(part.view.unknown);
        out.view.holds_more.extend(part.view.holds_more);
        out.skipped.extend(part.skipped);
        out.mapped.extend(part.mapped);
        out.listed.extend(part.listed);
        out.stats.api_calls += part.stats.api_calls;
    }
    out.view.unknown.sort();
    out.view.unknown.dedup();
    (out, stale)
}

/// Whether the folder at `base` is still where the cached tree has it: it
/// and every folder above it have the parents the cache recorded. The host
/// lists a folder by its id also after it was trashed (detached to the
/// account root, without its trashed files, or below a trashed folder), so
/// a focused pass must not list a cached folder id without this: it would
/// take an emptied trashed folder for the folder's content, send uploads
/// into it and count them as seen (a later full pass then found them gone
/// and trashed the local files; daemon simulation, seed 51). One
/// `folder/info` per level.
async fn still_in_place(
    client: &dyn Host,
    cached: &crate::model::RemoteView,
    base: &RelPath,
) -> Result<bool, ApiError> {
    let mut at = Some(base.clone());
    while let Some(p) = at.filter(|p| !p.is_root()) {
        let Some(e) = cached.entries.get(&p) else {
            return Ok(false);
        };
        match client.folder_info(FolderId(e.id)).await {
            Ok(f) if f.parent_id.map(|f| f.0) == e.parent => {}
            Ok(_) => return Ok(false),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        }
        at = p.parent();
    }
    Ok(true)
}

/// Removes from `synced` the entries the ignore rules match now (with
/// everything below them) and returns the top-most of them.
fn forget_ignored(
    synced: &mut crate::model::Tree<crate::model::SyncedEntry>,
    rules: &IgnoreRules,
    forgot: &mut Vec<(RelPath, crate::model::SyncedEntry)>,
) -> Vec<RelPath> {
    let mut top: std::collections::BTreeSet<RelPath> = std::collections::BTreeSet::new();
    for (p, e) in synced.iter() {
        if p.is_root() || crate::model::under_any(&top, p) {
            continue;
        }
        // Parents were looked at first (path order), so the entry alone
        // decides, unless its folder is not recorded (recovery may record
        // a file whose folder a pass forgot as ignored: sim seed 148965,
        // where such an entry waited for ever as "moved, other side
        // unknown"); then its folders are looked at too.
        let folder_recorded = p
            .parent()
            .is_none_or(|d| d.is_root() || synced.contains_key(&d));
        let ignored = if folder_recorded {
            rules.ignores_entry(p, e.kind)
        } else {
            rules.is_ignored(p, e.kind)
        };
        if ignored {
            top.insert(p.clone());
        }
    }
    for t in &top {
        let below: Vec<RelPath> = synced
            .keys()
            .filter(|k| k.starts_with(t))
            .cloned()
            .collect();
        for k in below {
            if let Some(e) = synced.remove(&k) {
                forgot.push((k, e));
            }
        }
    }
    top.into_iter().collect()
}

/// Host entries dcsync made that no listing has shown yet
/// (`StateDb::unlisted`): a listing that shows one ends that. One missing
/// from this pass's listing was never there for anybody to delete — the
/// folder it went into was trashed (or moved away) before it arrived — so
/// the planner does not see it as synced: the local file counts as new and
/// goes up again, instead of being taken for deleted on the host and
/// trashed locally (a folder: with everything below it). Moves on the host
/// count as made too. A full pass also forgets ids no longer tracked.
fn forget_unlisted(
    db: &mut StateDb,
    synced: Arc<crate::model::Tree<crate::model::SyncedEntry>>,
    view: &crate::model::RemoteView,
    full: bool,
    dry_run: bool,
) -> Result<Arc<crate::model::Tree<crate::model::SyncedEntry>>, EngineError> {
    let unlisted = db.unlisted()?;
    if unlisted.is_empty() {
        return Ok(synced);
    }
    let mut done: Vec<(crate::model::Kind, u64)> = view
        .entries
        .values()
        .map(|e| (e.kind, e.id))
        .filter(|k| unlisted.contains(k))
        .collect();
    let unknown: std::collections::BTreeSet<RelPath> = view.unknown.iter().cloned().collect();
    let gone: Vec<RelPath> = synced
        .iter()
        .filter(|(p, e)| {
            let key = (e.kind, e.remote_id);
            !p.is_root()
                && unlisted.contains(&key)
                && !done.contains(&key)
                && !crate::model::under_any(&unknown, p)
        })
        .map(|(p, _)| p.clone())
        .collect();
    if full {
        let tracked: std::collections::HashSet<(crate::model::Kind, u64)> =
            synced.values().map(|e| (e.kind, e.remote_id)).collect();
        done.extend(unlisted.iter().filter(|k| !tracked.contains(k)));
    }
    tracing::debug!(
        unlisted = unlisted.len(),
        listed = done.len(),
        ?gone,
        "entries dcsync made, not yet listed"
    );
    if !dry_run {
        db.drop_unlisted(&done)?;
    }
    if gone.is_empty() {
        return Ok(synced);
    }
    let mut kept = (*synced).clone();
    for p in &gone {
        tracing::info!(path = %p, "what dcsync put on the host is not there, and nobody saw it there: sending it again");
        // A folder's content went with it, unseen as well.
        kept.retain(|k, _| !k.starts_with(p));
    }
    // Forgotten in the database too: a record of a host entry nobody saw
    // must not outlive this pass when sending it again fails (the user
    // moved the file away meanwhile): a later pass took the file, back at
    // its path, for synced and unchanged and trashed it locally when the
    // host's folder was deleted (sim seed 104674).
    if !dry_run {
        let changes: Vec<_> = gone
            .iter()
            .map(|p| crate::state::Change::RemoveTree(p.clone()))
            .collect();
        db.apply(&changes)?;
    }
    Ok(Arc::new(kept))
}

/// Files whose content is what Synced recorded but whose identity (mtime)
/// differs - touched, or recorded as racily clean - get their identity
/// recorded anew (settled against this scan), so the next scan's fast
/// check holds again instead of hashing them every time.
fn record_settled_files(
    db: &mut StateDb,
    synced: &crate::model::Tree<crate::model::SyncedEntry>,
    local: &crate::model::LocalView,
    scan_ns: i64,
) -> Result<(), EngineError> {
    use crate::model::Kind;
    let mut changes = Vec::new();
    for (p, l) in &local.entries {
        let Some(s) = synced.get(p) else { continue };
        if l.kind != Kind::File
            || s.kind != Kind::File
            || l.meta == s.local
            || l.meta.ino != s.local.ino
            || l.meta.size != s.size
            || l.hashes.sha256.is_none()
            || l.hashes.sha256 != s.hashes.sha256
        {
            continue;
        }
        let settled = l.meta.settled(scan_ns);
        if settled != s.local {
            changes.push(crate::state::Change::Put(
                p.clone(),
                crate::model::SyncedEntry {
                    local: settled,
                    ..s.clone()
                },
            ));
        }
    }
    if !changes.is_empty() {
        db.apply(&changes)?;
    }
    Ok(())
}

/// A converged pass hands its Remote tree to the daemon (for polls and
/// focused passes), unless parts of it are unknown.
fn remember_view(
    report: &mut SyncReport,
    mut view: crate::model::RemoteView,
    listed: Vec<snapshot::ListedFolder>,
) {
    if view.unknown.is_empty() {
        // Focused passes list their scopes' files again; the folders (and
        // the synced folder's own files, as the quick check keeps them)
        // are all they take from it. A daemon keeps this between passes:
        // a tree's folders, not its files.
        view.entries
            .retain(|p, e| e.kind == crate::model::Kind::Dir || p.depth() == 1);
        report.remote_view = Some(Arc::new(view));
        report.remote_listed = Some(Arc::new(listed));
    }
}

/// Progress callbacks for a front end (CLI, daemon).
pub trait Reporter: Send + Sync {
    /// A round planned these ops (not called for empty plans).
    fn planned(&self, _round: usize, _ops: &[Op]) {}
    /// An op finished (`Ok`) or failed (`Err(message)`).
    fn op_done(&self, _op: &Op, _result: &Result<(), String>) {}
    /// Bytes moved by a transfer (delta).
    fn bytes(&self, _n: u64) {}
    /// Where per-transfer progress goes: called with (path, bytes done,
    /// bytes total) while a file moves, and with `None` totals when it ends.
    fn transfer_sink(&self) -> Option<TransferSink> {
        None
    }
}

/// A callback for per-transfer progress: `(path, done, Some(total))` while
/// the transfer runs, `(path, 0, None)` when it has ended.
pub type TransferSink = Arc<dyn Fn(&RelPath, u64, Option<u64>) + Send + Sync>;

/// A reporter that reports nothing.
pub struct Quiet;
impl Reporter for Quiet {}

/// Why a pass stopped before converging.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "{} has no {MARKER}/ marker but dcsync has synced it before: is the volume mounted? \
         Refusing to sync, because an empty folder would look like everything was deleted. \
         If the folder really moved, run `dcsync init` for the new place.",
        .0.display()
    )]
    NoMarker(PathBuf),
    #[error(
        "{} is not a dcsync sync root yet (no {MARKER}/ folder in it); refusing to fill or empty it. \
         If this is the right folder, run `dcsync init` (with your --config) to make it one.",
        .0.display()
    )]
    NotARoot(PathBuf),
    #[error(
        "{}: {why}; dcsync keeps its trash and temp files there and refuses to use it. \
         Remove it or make it a real folder owned by you, then sync again.",
        .path.display()
    )]
    UnsafeStateDir { path: PathBuf, why: &'static str },
    #[error("local folder {} does not exist or is not a folder; check local_path", .0.display())]
    NoRoot(PathBuf),
    #[error("another dcsync process is syncing {} right now; try again when it is done", .0.display())]
    Busy(PathBuf),
    #[error(
        "remote folder {path:?} is gone or in the host's trash, but dcsync has synced it before; \
         refusing to re-upload or delete anything. Restore it from the host's trash, or point remote_path elsewhere."
    )]
    RemoteRootGone { path: String },
    #[error(
        "remote folder {path:?} is now folder {now}, not folder {before} that was synced before; \
         refusing to sync against a different folder. Restore the old one, or start afresh with a new state_dir."
    )]
    RemoteRootChanged { path: String, before: u64, now: u64 },
    #[error(
        "this pass would delete {count} of {tracked} tracked files {side} (limits: {percent}% or {max} files); \
         nothing was changed. Check what happened, then run again with --allow-mass-delete to go ahead."
    )]
    MassDelete {
        count: u64,
        tracked: u64,
        side: &'static str,
        percent: u32,
        max: u64,
        /// What the pass would delete (the first [`MASS_DELETE_SHOWN`]
        /// paths), for the console.
        paths: Vec<String>,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// Safety stops: the user must look before dcsync goes on.
    pub fn is_safety_stop(&self) -> bool {
        matches!(
            self,
            EngineError::NoMarker(_)
                | EngineError::NotARoot(_)
                | EngineError::UnsafeStateDir { .. }
                | EngineError::RemoteRootGone { .. }
                | EngineError::RemoteRootChanged { .. }
                | EngineError::MassDelete { .. }
        )
    }

    /// The host's answer behind this error, if it is one (directly, or
    /// while resolving the remote folder).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            EngineError::Api(e) => Some(e),
            EngineError::Snapshot(SnapshotError::Api { source, .. }) => Some(source),
            _ => None,
        }
    }

    /// Errors that trying again cannot fix: the user must act first (bad
    /// credentials, a state database from a newer dcsync or damaged).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.api_error(),
            Some(ApiError::BadCredentials { .. } | ApiError::Config(_))
        ) || matches!(
            self,
            EngineError::State(StateError::TooNew { .. } | StateError::Corrupt { .. })
        )
    }

    /// Whether trying the pass again later may help by itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Busy(_) => true,
            EngineError::State(e) => e.is_retryable(),
            EngineError::Snapshot(e) => e.is_retryable(),
            EngineError::Api(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// The sync root must exist and hold the `.dcsync/` marker folder (a real
/// folder, not a symlink).
fn check_marker(root: &Path, tracked: u64) -> Result<(), EngineError> {
    if !std::fs::metadata(root).is_ok_and(|m| m.is_dir()) {
        return Err(EngineError::NoRoot(root.to_path_buf()));
    }
    let marker = root.join(MARKER);
    if std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    Err(if tracked > 0 {
        EngineError::NoMarker(root.to_path_buf())
    } else {
        EngineError::NotARoot(root.to_path_buf())
    })
}

/// `.dcsync`, `.dcsync/tmp` and `.dcsync/trash` must be real folders (not
/// symlinks) owned by this user, and only this user may write to them
/// (fixed to 0700 when they are ours but open to others); `tmp` and
/// `trash` are created (0700) when missing. Otherwise the pass stops.
fn check_state_dirs(root: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let me = fsat::euid();
    let marker = root.join(MARKER);
    for (path, create) in [
        (marker.clone(), false),
        (marker.join("tmp"), true),
        (marker.join("trash"), true),
    ] {
        let md = match std::fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(io(&path))?;
                std::fs::symlink_metadata(&path).map_err(io(&path))?
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let why = if md.file_type().is_symlink() {
            Some("it is a symbolic link")
        } else if !md.is_dir() {
            Some("it is not a folder")
        } else if md.uid() != me {
            Some("it belongs to another user")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(EngineError::UnsafeStateDir { path, why });
        }
        if md.mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&path))?;
        }
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs one sync pass. See the module docs. A pass that stops for safety
/// (or finds its folder missing) says so in the state DB too, so that
/// `dcsync status` never shows "converged" after it.
pub async fn sync(
    client: &dyn Host,
    cfg: &EngineConfig,
    req: SyncRequest,
    clock: Arc<dyn Clock>,
    reporter: &dyn Reporter,
) -> Result<SyncReport, EngineError> {
    let dry_run = req.dry_run;
    let full = SyncRequest {
        quick_check: false,
        focus: None,
        keep: None,
        // The full pass a narrowed one asks for is one pass: a survey
        // would only plan windows nobody runs.
        window_entries: 0,
        ..req.clone()
    };
    let mut result = sync_pass(client, cfg, req.clone(), clock.clone(), reporter, false).await;
    // A first sync of a big tree: the survey planned windows; they run,
    // then the last pass looks at everything (the quick check: in sync, or
    // narrowed to what changed meanwhile; a full pass if windows ended
    // early).
    if let Ok(first) = &mut result
        && let Some(planned) = first.planned_windows.take()
    {
        tracing::info!(
            windows = planned.windows.len(),
            "a first sync of a big tree: it runs in windows of about {} entries",
            req.window_entries
        );
        let window = |focus: Focus| {
            let req = SyncRequest {
                focus: Some(focus),
                quick_check: false,
                keep: None,
                window_entries: 0,
                ..req.clone()
            };
            sync_pass(client, cfg, req, clock.clone(), reporter, true)
        };
        let done = windows::run(*planned, window).await;
        // With the quick check whatever the request said: a full pass
        // would build the trees the windows kept small (the check gives
        // way to one when anything is off).
        let last = SyncRequest {
            window_entries: 0,
            quick_check: true,
            ..req.clone()
        };
        result = match done {
            Ok(done) => sync_pass(client, cfg, last, clock.clone(), reporter, false)
                .await
                .map(|r| r.after(done)),
            Err(e) => Err(e),
        };
    }
    // A pass narrowed by the quick check that met work outside its scopes:
    // the full pass does it now (a focused pass the caller asked for says
    // so to the caller instead).
    if let Ok(first) = &result
        && first.narrowed
        && first.needs_full_pass
    {
        tracing::debug!("the narrowed pass met work outside its folders; a full pass follows");
        let first = first.clone();
        result = sync_pass(client, cfg, full, clock.clone(), reporter, false)
            .await
            .map(|r| r.after(first));
    }
    if let Err(e) = &result
        && !dry_run
        && (e.is_safety_stop() || matches!(e, EngineError::NoRoot(_)))
        && cfg.db_path.exists()
    {
        let now = clock::datetime(clock.now());
        let recorded = StateDb::open(&cfg.db_path).and_then(|mut db| {
            db.set_meta("last_sync", &now)?;
            db.set_meta("last_result", &format!("stopped: {e}"))
        });
        if let Err(se) = recorded {
            tracing::warn!(error = %se, "could not record the stop for `dcsync status`");
        }
    }
    result
}

/// One pass. `window`: a window of a first sync ([`windows`]): its
/// one-level scopes may make and record folders, and take the subfolders
/// Synced records there as known.
async fn sync_pass(
    client: &dyn Host,
    cfg: &EngineConfig,
    req: SyncRequest,
    clock: Arc<dyn Clock>,
    reporter: &dyn Reporter,
    window: bool,
) -> Result<SyncReport, EngineError> {
    let started = Instant::now();
    let mut db = StateDb::open(&cfg.db_path)?;
    let tracked = db.synced_len()?;
    let root = &cfg.local_root;
    let marker = root.join(MARKER);
    // Only `dcsync init` makes a folder a sync root: an empty folder without
    // the marker may be an unmounted volume or a mistyped path.
    check_marker(root, tracked)?;
    // Trashed files and temp files live below it: it must be ours alone.
    check_state_dirs(root)?;
    let lock_path = marker.join("lock");
    let lock = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&lock_path)
            .map_err(io(&lock_path))?
    };
    if lock.try_lock().is_err() {
        return Err(EngineError::Busy(root.clone()));
    }
    if !req.dry_run {
        let n = exec::clear_tmp(root);
        if n > 0 {
            tracing::debug!(files = n, "removed temp files an earlier run left behind");
        }
    }

    let remote_root = remote_root(client, cfg, &mut db, tracked, &*clock).await?;
    let (cfg, upload_limit, storage_limit) = &apply_package_limits(client, cfg).await;
    let mut rules = IgnoreRules::load(root)?;
    let case_insensitive = case_insensitive_fs(&marker);
    if case_insensitive {
        tracing::debug!(root = %root.display(), "the local filesystem ignores case");
    }
    // Once the account is full, no round of this pass uploads.
    let quota = exec::Quota::default();
    let mut report = SyncReport {
        remote_root,
        ..SyncReport::default()
    };

    // Both sides as Synced recorded them: nothing to plan, no tree built.
    // Only some paths differ: the pass is focused around them.
    let mut unchanged = false;
    let mut focus_req = req.focus.clone();
    let mut narrowed: Option<Vec<snapshot::ListedFolder>> = None;
    if req.quick_check && focus_req.is_none() && !req.dry_run && tracked > 0 {
        let verdict = unchanged::check(
            client,
            &mut db,
            cfg.db_path.clone(),
            root.clone(),
            remote_root,
            &rules,
            cfg.listing_concurrency,
            !req.host_from_polls,
        )
        .await?;
        match verdict {
            unchanged::Verdict::Unchanged(u) => {
                unchanged = true;
                end_at_check(&mut db, &clock::datetime(clock.now()), &mut report, u)?;
            }
            // The account root lists folders in the host's trash too, which
            // only the full pass tells from moved ones
            // (`drop_trashed_root_folders`).
            unchanged::Verdict::Differs { .. } if remote_root.is_none() => {
                tracing::debug!("the quick check found changes; a full pass looks (account root)")
            }
            unchanged::Verdict::Differs {
                paths,
                view,
                listed,
            } => {
                tracing::debug!(
                    paths = paths.len(),
                    first = ?paths.first(),
                    "the quick check found changes; the pass looks around them"
                );
                focus_req = Some(Focus {
                    remote: Arc::new(view),
                    paths,
                    folders: Vec::new(),
                });
                narrowed = Some(listed);
            }
            unchanged::Verdict::Look(why) => {
                tracing::debug!(%why, "the quick check gives way to a full pass")
            }
        }
    }
    // A first sync of a big tree runs in windows (`sync` runs them); so
    // does one that was interrupted (killed, a safety stop), when the
    // quick check did not narrow the pass: a full pass would build the
    // trees the windows keep small.
    if let Some(root_id) = remote_root
        && req.window_entries > 0
        && (tracked == 0
            || db
                .get_meta(windows::IN_PROGRESS)?
                .is_some_and(|v| !v.is_empty()))
        && focus_req.is_none()
        && !req.dry_run
        && let Some(planned) = windows::survey(
            client,
            root,
            root_id,
            &rules,
            cfg.listing_concurrency,
            req.window_entries,
        )
        .await?
    {
        db.set_meta(windows::IN_PROGRESS, &clock::datetime(clock.now()))?;
        report.planned_windows = Some(Box::new(planned));
        return Ok(report);
    }
    let focus = focus_req.as_ref().and_then(|f| {
        plan::focus::scopes_for(&f.remote, &f.paths, &f.folders, remote_root.map(|r| r.0))
    });
    if focus.is_none() {
        // Not focused after all (no scope covers a change): a full pass.
        focus_req = None;
        narrowed = None;
    }
    report.narrowed = narrowed.is_some();
    let scopes: Option<Vec<Scope>> = focus
        .as_ref()
        .map(|f| f.iter().map(|(s, _)| s.clone()).collect());
    let mut keep = req.keep;
    if unchanged && report.remote_view.is_none() {
        report.remote_view = keep.take();
    }
    // Not beside the trees a full pass builds.
    drop(keep);
    // The last round made no progress (only found things changed).
    let mut stalled = false;
    let rounds = if unchanged { 0 } else { MAX_ROUNDS };
    for round in 0..rounds {
        report.rounds = round + 1;
        // Checked before every round: a volume unmounted during the pass
        // must not look like everything was deleted.
        if round > 0 {
            check_marker(root, tracked)?;
            // An op of the last round may have changed the ignore file (a
            // download, a conflict): the next round plans by the new rules,
            // or a pass would end "in sync" by rules no longer in force
            // (sim seed 514). A focused pass saw only its scopes of what
            // the old rules left out: a full pass looks.
            let now = IgnoreRules::load(root)?;
            if !now.same_as(&rules) {
                tracing::info!(
                    "the ignore rules changed during the pass; planning by the new ones"
                );
                if scopes.is_some() {
                    report.needs_full_pass = true;
                    break;
                }
                rules = now;
            }
        }
        // Entries this round forgets before its listing is compared: the
        // check for a trashed remote root still looks at them (a root
        // trashed meanwhile took their host files along).
        let mut forgot = Vec::new();
        let mut held = Vec::new();
        if !req.dry_run {
            let r = recover::run(client, &mut db, root, remote_root, &*clock).await?;
            (forgot, held) = (r.forgot, r.held);
        }
        // The account root's listing shows folders in the host's trash; the
        // ones known (trashed by us, found before, or just recorded by
        // recovery) are left out of it.
        let trashed = match remote_root {
            None => trashed_folders(&db)?,
            Some(_) => Default::default(),
        };
        let t_load = Instant::now();
        // A focused pass reads, scans and plans only its scopes.
        let mut synced = match &scopes {
            Some(s) => db.load_synced_scoped(s)?,
            None => db.load_synced()?,
        };
        // What the rules ignore now is no longer synced: its Synced entries
        // are forgotten (never turned into deletes on either side).
        let forgotten = forget_ignored(&mut synced, &rules, &mut forgot);
        if !forgotten.is_empty() && !req.dry_run {
            let changes: Vec<_> = forgotten
                .iter()
                .map(|p| crate::state::Change::RemoveTree(p.clone()))
                .collect();
            db.apply(&changes)?;
            for p in &forgotten {
                tracing::info!(path = %p, "now ignored: no longer synced (left as it is on both sides)");
            }
        }
        let synced = Arc::new(synced);
        report.timings.load_ms += t_load.elapsed().as_millis() as u64;
        let scan_ns = clock::unix_nanos(clock.now());
        let (mut scanned, mut snap) = {
            // Shared with the scanner thread, not copied.
            let (root2, synced2, rules2) = (root.clone(), Arc::clone(&synced), rules.clone());
            let scopes2 = scopes.clone();
            let scan_task = tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                match scopes2 {
                    Some(s) => scan::scan_scoped(&root2, &synced2, &rules2, &s),
                    None => scan::scan(&root2, &synced2, &rules2),
                }
                .map(|s| (s, t.elapsed()))
            });
            let t_snap = Instant::now();
            let snap = match (&focus, &focus_req) {
                (Some(parts), Some(f)) => {
                    let made = window.then_some(&*synced);
                    let (snap, stale) =
                        refresh_parts(client, f, parts, &trashed, made, cfg.listing_concurrency)
                            .await;
                    report.needs_full_pass |= stale;
                    snap
                }
                _ => {
                    snapshot::snapshot_without(
                        client,
                        remote_root,
                        cfg.listing_concurrency,
                        &trashed,
                    )
                    .await
                }
            };
            report.timings.listing_ms += t_snap.elapsed().as_millis() as u64;
            let (scanned, scan_time) = scan_task.await.map_err(|e| EngineError::Io {
                path: root.clone(),
                source: std::io::Error::other(format!("scanner task failed: {e}")),
            })??;
            report.timings.scan_ms += scan_time.as_millis() as u64;
            (scanned, snap)
        };
        // What moved across a focused pass's edges on the host waits for a
        // full pass, which sees both ends (a pass narrowed by the quick
        // check has both ends among its paths already).
        if let Some(s) = &scopes
            && narrowed.is_none()
        {
            let crossing = across::crossing(&db, s, &synced, &snap.view)?;
            let crossed = across::moved_across(client, crossing, remote_root).await;
            if let Some(first) = crossed.first().filter(|_| !report.needs_full_pass) {
                tracing::info!(
                    path = %first,
                    entries = crossed.len(),
                    "entries moved on the host between these folders and others; a full pass follows"
                );
            }
            if !crossed.is_empty() {
                snap.view.unknown.extend(crossed);
                snap.view.unknown.sort();
                snap.view.unknown.dedup();
                report.needs_full_pass = true;
            }
        }
        // What could not be looked at (before held-back entries join it).
        let unseen: Vec<String> = scanned
            .view
            .unknown
            .iter()
            .map(|p| format!("local: {p}"))
            .chain(snap.view.unknown.iter().map(|p| format!("remote: {p}")))
            .chain(
                held.iter()
                    .map(|p| format!("remote: {p} (an interrupted upload is not settled yet)")),
            )
            .collect();
        // A focused pass takes the root's folders from the cached tree
        // (trashed ones dropped already) and leaves out known trashed ones
        // when it lists the account root again (`refresh_parts`).
        if remote_root.is_none()
            && scopes.is_none()
            && drop_trashed_root_folders(client, &mut db, &mut snap.view, &synced).await?
            && snap.mapped.iter().any(|(p, _)| !p.contains('/'))
        {
            // A folder just found trashed shares its name with another
            // root entry, which the listing named `… (duplicate N)` beside
            // it: listed again without it, the other keeps its name.
            tracing::info!(
                "a folder in the host's trash shares a name in the account root; listing again without it"
            );
            let trashed = trashed_folders(&db)?;
            let calls = snap.stats.api_calls;
            snap =
                snapshot::snapshot_without(client, None, cfg.listing_concurrency, &trashed).await;
            snap.stats.api_calls += calls;
            drop_trashed_root_folders(client, &mut db, &mut snap.view, &synced).await?;
        }
        pass::adjust_views(
            root,
            &mut scanned,
            &mut snap,
            &rules,
            case_insensitive,
            *upload_limit,
        );
        // Paths whose interrupted op recovery could not settle yet: nothing
        // is planned there (their Synced entry may name a version that op
        // trashed itself, which is no remote delete).
        if !held.is_empty() {
            snap.view.unknown.append(&mut held);
            snap.view.unknown.sort();
            snap.view.unknown.dedup();
        }
        // What dcsync put on the host and no listing showed yet is planned
        // again when it is not there; the check for a trashed root below
        // still looks at it (an upload into the synced folder right before
        // it was trashed is not to be sent again into the trash).
        let mut recorded = Arc::clone(&synced);
        if !forgot.is_empty() {
            let r = Arc::make_mut(&mut recorded);
            r.extend(std::mem::take(&mut forgot));
        }
        let synced = forget_unlisted(&mut db, synced, &snap.view, scopes.is_none(), req.dry_run)?;
        let now = clock::datetime(clock.now());
        let known = if round == 0 {
            known_notes(&db)?
        } else {
            Default::default()
        };
        if !req.dry_run {
            let local_notes = rel_skipped(&scanned.skipped);
            match &scopes {
                // Notes outside the scopes stay as the last full pass left them.
                Some(s) => db.set_skipped_where(Side::Local, &local_notes, &now, |p| {
                    s.iter().any(|sc| sc.contains_str(p))
                        || RelPath::new(p).is_some_and(|p| crate::model::in_scopes(s, &p))
                })?,
                None => db.set_skipped(Side::Local, &local_notes, &now)?,
            }
            // A focused pass saw only part of the remote: keep the notes
            // of the last full listing.
            if focus.is_none() {
                let mut notes = snap.skipped.clone();
                notes.extend(snap.mapped.iter().cloned());
                db.set_skipped(Side::Remote, &rel_skipped(&notes), &now)?;
            }
        }
        if round == 0 {
            log_notes(
                &known,
                scanned.skipped.iter().chain(snap.skipped.iter()),
                &snap.mapped,
            );
        }
        report.skipped = (scanned.skipped.len() + snap.skipped.len()) as u64;

        if !req.dry_run {
            record_settled_files(&mut db, &synced, &scanned.view, scan_ns)?;
        }
        let t_plan = Instant::now();
        let skipped = scanned
            .skipped
            .iter()
            .chain(snap.skipped.iter())
            .cloned()
            .collect();
        let mut pass = PassPlan::new(
            &scanned.view,
            &snap.view,
            &synced,
            scopes.as_deref(),
            cfg.plan,
            unseen,
            skipped,
            window,
        );
        report.timings.plan_ms += t_plan.elapsed().as_millis() as u64;
        for (p, why) in &pass.waiting {
            tracing::debug!(path = %p, "waits for a later round: {why}");
        }
        report.unseen = pass.unseen.clone();
        report.waiting = pass
            .waiting
            .iter()
            .map(|(p, why)| (p.as_str().to_owned(), why.clone()))
            .collect();
        report.needs_full_pass |= pass.needs_full_pass;
        report.converged = pass.converged();
        if pass.converged() {
            remember_view(&mut report, snap.view, snap.listed);
            report.plan = Some(pass);
            break;
        }
        // A remote root in the host's trash is still listed (same id, no
        // files): what vanished from it must not be taken for deletions.
        if let Some(root_id) = remote_root {
            check_root_not_trashed(client, cfg, root_id, &snap.view, &recorded).await?;
        }
        // The share of deleted files is of everything tracked, also when
        // this pass read only a part.
        let tracked_files = match &scopes {
            Some(_) => Some(db.synced_files()?),
            None => None,
        };
        let now_secs = clock::unix_secs(clock.now());
        let window = DeleteWindow::load(&db, now_secs)?;
        let (deletes, verdict) = pass.guard(
            cfg,
            (&synced, &scanned.view, &snap.view),
            tracked_files,
            &window,
            req.allow_mass_delete,
        );
        if req.dry_run {
            // A dry run shows what would be done or deleted, and the verdict.
            if verdict.is_ok() {
                reporter.planned(round, &pass.ops);
            }
            report.stopped = pass.stop.clone();
            report.plan = Some(pass);
            break;
        }
        verdict?;
        reporter.planned(round, &pass.ops);
        let fs = fsat::Root::open(root).map_err(io(root))?;
        let ctx = exec::Exec::new(
            client,
            root,
            remote_root,
            &snap.view,
            &mut db,
            &*clock,
            reporter,
            cfg.transfers,
            &quota,
            scan_ns,
            &fs,
        );
        if let Some(limit) = storage_limit
            && !quota.measured()
            && pass
                .ops
                .iter()
                .any(|o| matches!(o, Op::Upload { .. } | Op::RemoteCopy { .. }))
        {
            let used = used_storage(client, remote_root, &snap.view, cfg.listing_concurrency).await;
            quota.set_room(*limit, used);
        }
        let t_exec = Instant::now();
        let outcome = ctx.run(&pass.ops, &mut report).await;
        report.timings.execute_ms += t_exec.elapsed().as_millis() as u64;
        report.plan = Some(pass);
        // Deletions add up over the window (confirmed ones start it anew),
        // so a trickle of small passes cannot empty a folder unguarded.
        if deletes.local_files + deletes.remote_files > 0 && outcome.progressed {
            let window = if req.allow_mass_delete {
                DeleteWindow::default()
            } else {
                window.add(now_secs, deletes)
            };
            window.save(&mut db)?;
        }
        // Nothing could be done: stop instead of spinning. A round whose
        // ops found things changed since the plan gets one more look.
        let look_again = outcome.changed && !stalled;
        if !outcome.progressed && !look_again {
            break;
        }
        stalled = !outcome.progressed;
        // No shortcut after a round that did something: what a pass
        // remembers as "the host as of now" must be a listing a plan was
        // made from (an empty plan), never a re-listing after the ops,
        // which may already hold another device's change that nothing
        // would then sync until a full pass. The next round (focused again
        // when this pass is) lists, scans and plans its scopes once more.
    }
    // A narrowed pass listed its scopes again: every other folder's print
    // is the check's (its listing was as Synced recorded it).
    if let Some(mut all) = narrowed
        && let Some(own) = report.remote_listed.take()
    {
        all.retain(|f| !own.iter().any(|o| o.id == f.id));
        all.extend(own.iter().cloned());
        report.remote_listed = Some(Arc::new(all));
    }
    report.elapsed = started.elapsed();
    let t = &report.timings;
    let did_something = report.rounds > 1 || !report.errors.is_empty();
    // Quiet when nothing happened, and after a one-round pass (its ops
    // logged a line each); one summary line otherwise.
    if did_something {
        tracing::info!(
            rounds = report.rounds,
            load_ms = t.load_ms,
            scan_ms = t.scan_ms,
            listing_ms = t.listing_ms,
            plan_ms = t.plan_ms,
            execute_ms = t.execute_ms,
            "pass finished"
        );
    } else {
        tracing::debug!(
            load_ms = t.load_ms,
            scan_ms = t.scan_ms,
            listing_ms = t.listing_ms,
            plan_ms = t.plan_ms,
            execute_ms = t.execute_ms,
            focused = focus.is_some(),
            unchanged,
            needs_full_pass = report.needs_full_pass,
            "pass finished in one round"
        );
    }
    if !req.dry_run {
        // The local trash does not grow forever.
        match trash::prune(root, clock::unix_secs(clock.now()), cfg.trash) {
            Ok(p) if p.slots > 0 => {
                tracing::info!(
                    removed = p.slots,
                    bytes = p.bytes,
                    "pruned the local trash (trash_retention / trash_max_size)"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune the local trash"),
        }
        let now = clock::datetime(clock.now());
        // A first sync's windows are over once a pass after them (not one
        // of them) ends in sync; until then the next pass resumes them.
        if !window
            && report.in_sync()
            && db
                .get_meta(windows::IN_PROGRESS)?
                .is_some_and(|v| !v.is_empty())
        {
            db.set_meta(windows::IN_PROGRESS, "")?;
        }
        db.set_meta("last_sync", &now)?;
        db.set_meta(
            "last_result",
            if report.in_sync() {
                "converged"
            } else {
                "incomplete"
            },
        )?;
        // What kept the pass from being in sync (the last round's plan:
        // ops it could not finish, what waits, what it could not see), for
        // `dcsync status`.
        let left = match &report.plan {
            Some(plan) if !report.in_sync() => plan.to_string(),
            _ => String::new(),
        };
        db.set_meta(LAST_PLAN, &left)?;
        db.journal_prune(1000)?;
        // Housekeeping after the last write: a failure here costs disk
        // space, never a record, so the pass still reports what it did.
        match db.maintain() {
            Ok(m) => {
                if let Some((before, after)) = m.vacuumed {
                    tracing::info!(before, after, "compacted the state database");
                }
                if m.wal_frames_left > 0 {
                    tracing::debug!(
                        frames = m.wal_frames_left,
                        "state DB: another connection's read holds WAL frames"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not compact the state database"),
        }
    }
    drop(lock);
    Ok(report)
}

/// The meta key holding what kept the last pass from being in sync (the
/// text of its last round's [`PassPlan`]; empty when it was in sync).
pub const LAST_PLAN: &str = "last_plan";

/// The meta key holding ids of folders known to be in the host's trash.
pub(crate) const TRASHED_FOLDERS: &str = "trashed_folders";

/// How many trashed folder ids are kept (the last remembered): the list
/// is read each round, so it must not grow for ever.
const TRASHED_FOLDERS_KEPT: usize = 5000;

/// Adds folder `id` to the folders known to be in the host's trash.
pub(crate) fn remember_trashed_folder(db: &mut StateDb, id: u64) -> Result<(), StateError> {
    remember_trashed_folders(db, &[id])
}

/// Adds `ids` to the folders known to be in the host's trash; of more than
/// [`TRASHED_FOLDERS_KEPT`], the ones remembered first are let go.
fn remember_trashed_folders(db: &mut StateDb, ids: &[u64]) -> Result<(), StateError> {
    let mut list = trashed_folder_list(db)?;
    let mut known: std::collections::HashSet<u64> = list.iter().copied().collect();
    list.extend(ids.iter().filter(|id| known.insert(**id)));
    let over = list.len().saturating_sub(TRASHED_FOLDERS_KEPT);
    let text: Vec<String> = list[over..].iter().map(u64::to_string).collect();
    db.set_meta(TRASHED_FOLDERS, &text.join(","))
}

/// The folders known to be in the host's trash, in the order remembered.
fn trashed_folder_list(db: &StateDb) -> Result<Vec<u64>, StateError> {
    Ok(db
        .get_meta(TRASHED_FOLDERS)?
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect())
}

/// Ids of the folders known to be in the host's trash.
fn trashed_folders(db: &StateDb) -> Result<std::collections::BTreeSet<u64>, StateError> {
    Ok(trashed_folder_list(db)?.into_iter().collect())
}

/// When syncing the account root: the host lists trashed folders in the
/// root (detached, without their files, looking like any folder). Such a
/// folder must not count as new, nor as a move into the root. Folders dcsync
/// trashed itself are remembered; a Synced folder that shows up in the root
/// is checked through one of its former files (`file_status` = trash).
/// Returns whether folders not known to be trashed before were dropped.
async fn drop_trashed_root_folders(
    client: &dyn Host,
    db: &mut StateDb,
    view: &mut crate::model::RemoteView,
    synced: &crate::model::Tree<crate::model::SyncedEntry>,
) -> Result<bool, EngineError> {
    use crate::model::Kind;
    let trashed = trashed_folders(db)?;
    let mut found = Vec::new();
    let root_dirs: Vec<(RelPath, u64)> = view
        .entries
        .iter()
        .filter(|(p, e)| e.kind == Kind::Dir && p.depth() == 1)
        .map(|(p, e)| (p.clone(), e.id))
        .collect();
    for (path, id) in root_dirs {
        let mut drop = trashed.contains(&id);
        if !drop {
            // Synced somewhere else before? Then it moved here, or was trashed.
            let was = synced
                .iter()
                .find(|(sp, e)| e.kind == Kind::Dir && e.remote_id == id && **sp != path);
            // A folder whose listing shows active files is not in the trash
            // (a trashed folder is listed without its files): it moved here.
            let has_files =
                crate::model::below(&view.entries, &path).any(|(_, e)| e.kind == Kind::File);
            if let Some((sp, _)) = was.filter(|_| !has_files) {
                let probe = crate::model::below(synced, sp).find(|(_, e)| e.kind == Kind::File);
                if let Some((_, f)) = probe {
                    // Trashed with its folder: the file keeps its folder id.
                    // Trashed on its own: detached (no folder), which says
                    // nothing about the folder.
                    drop = trashed_with_its_folder(client, f.remote_id)
                        .await?
                        .unwrap_or(true);
                }
            }
        }
        if drop {
            if !trashed.contains(&id) {
                found.push(id);
            }
            view.entries.retain(|k, _| !k.starts_with(&path));
        }
    }
    if !found.is_empty() {
        remember_trashed_folders(db, &found)?;
    }
    Ok(!found.is_empty())
}

/// What `file/info` says of the tracked file `id` about its folder:
/// `Some(true)` when it is in the trash *with* its folder (not active, its
/// folder id kept), `Some(false)` when not (active, or trashed on its own:
/// detached), `None` when the host no longer knows it.
pub(crate) async fn trashed_with_its_folder(
    client: &dyn Host,
    id: u64,
) -> Result<Option<bool>, EngineError> {
    match client.file_info(crate::api::FileId(id)).await {
        Ok(info) => Ok(Some(
            info.status != crate::api::FileStatus::Active && info.folder_id.is_some(),
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How many tracked files that vanished from the listing are looked up
/// with `file/info` before a pass acts on a named remote folder.
const ROOT_PROBES: usize = 12;

/// The host lists a trashed folder as before (same id, same place when it
/// is at the account root, or below a trashed ancestor) but without its
/// files, and folders have no status. A tracked file that vanished from
/// the listing tells: trashed together with its folder, it keeps its folder
/// id, and when that folder is one the listing still shows, the synced
/// folder (or a folder above it) is in the trash. Then nothing is touched.
async fn check_root_not_trashed(
    client: &dyn Host,
    cfg: &EngineConfig,
    root_id: FolderId,
    view: &crate::model::RemoteView,
    synced: &crate::model::Tree<crate::model::SyncedEntry>,
) -> Result<(), EngineError> {
    use crate::model::Kind;
    // One per folder first, then a second, ...: files trashed one by one
    // (detached, they say nothing) must not use up the probes before a
    // file that went with the root is looked at (sim seed 156066: three
    // files replaced on the website came first in path order).
    let mut by_folder: std::collections::BTreeMap<Option<u64>, Vec<u64>> = Default::default();
    for (_, e) in synced.iter().filter(|(p, e)| {
        e.kind == Kind::File
            && !view.is_unknown(p)
            && view.entries.get(*p).is_none_or(|r| r.id != e.remote_id)
    }) {
        let ids = by_folder.entry(e.remote_parent).or_default();
        if ids.len() < ROOT_PROBES {
            ids.push(e.remote_id);
        }
    }
    let vanished: Vec<u64> = (0..ROOT_PROBES)
        .flat_map(|i| {
            by_folder
                .values()
                .filter_map(move |ids| ids.get(i).copied())
        })
        .take(ROOT_PROBES)
        .collect();
    if vanished.is_empty() {
        return Ok(());
    }
    let listed: std::collections::HashSet<u64> = view
        .entries
        .values()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.id)
        .chain(std::iter::once(root_id.0))
        .collect();
    for id in vanished {
        let info = match client.file_info(crate::api::FileId(id)).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(folder) = info.folder_id.filter(|f| listed.contains(&f.0)) else {
            continue;
        };
        // A folder trashed and then moved back into the tree (a move racing
        // the trash) shows the same; but a trashed root takes every file
        // with it, so a tracked file still listed outside that folder says
        // the root is not in the trash.
        let at: Option<&RelPath> = view
            .entries
            .iter()
            .find(|(_, e)| e.kind == Kind::Dir && e.id == folder.0)
            .map(|(p, _)| p);
        let alive_elsewhere = at.is_some_and(|at| {
            synced.iter().any(|(p, e)| {
                e.kind == Kind::File
                    && !p.starts_with(at)
                    && view.entries.get(p).is_some_and(|r| r.id == e.remote_id)
            })
        });
        if info.status != crate::api::FileStatus::Active
            && !alive_elsewhere
            && !cut_off_below(client, folder, root_id).await?
        {
            tracing::warn!(
                remote = %cfg.remote_path,
                file_id = id,
                "a tracked file is in the host's trash together with a folder that is still listed: the synced folder is in the trash"
            );
            return Err(EngineError::RemoteRootGone {
                path: cfg.remote_path.clone(),
            });
        }
    }
    Ok(())
}

/// How many folders up `cut_off_below` looks before it gives up (and the
/// root counts as possibly trashed).
const MAX_FOLDER_DEPTH: usize = 64;

/// Whether `folder` now hangs from a folder cut off below the synced folder
/// `root`: going up its parents ends at the account root before it meets
/// `root`. A subfolder trashed on its own is detached so (the host moves
/// only the trashed top folder to the account root), while a trashed root
/// keeps every folder below it attached to it. That tells a subfolder
/// trashed between the listing of its parent and its own listing (the
/// listing still shows it, empty) from a trashed root when no other tracked
/// file is left to tell.
pub(crate) async fn cut_off_below(
    client: &dyn Host,
    folder: FolderId,
    root: FolderId,
) -> Result<bool, EngineError> {
    let mut at = folder;
    for _ in 0..MAX_FOLDER_DEPTH {
        if at == root {
            return Ok(false);
        }
        match client.folder_info(at).await {
            Ok(f) => match f.parent_id {
                Some(parent) => at = parent,
                None => return Ok(true),
            },
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Reads the account's package and adapts the pass: no uploads allowed →
/// download-only (warned); `concurrent_uploads` caps the transfer pool.
/// Returns the largest file size the host accepts, if limited. A host
/// without `/account/package` gets no limits.
async fn apply_package_limits(
    client: &dyn Host,
    cfg: &EngineConfig,
) -> (EngineConfig, Option<u64>, Option<u64>) {
    let mut cfg = cfg.clone();
    let package = match client.account_package().await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "no package limits known");
            return (cfg, None, None);
        }
    };
    if !package.uploads_allowed() && cfg.plan.mode != plan::Mode::DownloadOnly {
        tracing::warn!(
            "the account's package does not allow uploads; syncing download-only (local changes are kept, not uploaded)"
        );
        cfg.plan.mode = plan::Mode::DownloadOnly;
    }
    if let Some(n) = package.concurrent_uploads.filter(|&n| n > 0) {
        cfg.transfers = cfg.transfers.min(usize::try_from(n).unwrap_or(usize::MAX));
    }
    (cfg, package.upload_limit(), package.storage_limit())
}

/// Bytes stored in the account now: the whole account is listed (only
/// for accounts with a storage limit, and only in passes that upload).
async fn used_storage(
    client: &dyn Host,
    remote_root: Option<FolderId>,
    view: &crate::model::RemoteView,
    concurrency: usize,
) -> Option<u64> {
    let sum = |v: &crate::model::RemoteView| {
        v.entries
            .values()
            .filter(|e| e.kind == crate::model::Kind::File)
            .map(|e| e.size)
            .sum::<u64>()
    };
    if remote_root.is_none() {
        return view.unknown.is_empty().then(|| sum(view));
    }
    let all = snapshot::snapshot(client, None, concurrency).await;
    all.view.unknown.is_empty().then(|| sum(&all.view))
}

/// Whether the filesystem holding `dir` treats names that differ only in
/// case as the same (probed, not assumed from the OS). The environment
/// variable `DCSYNC_ASSUME_CASE_INSENSITIVE=1` forces it (tests).
fn case_insensitive_fs(dir: &Path) -> bool {
    if std::env::var("DCSYNC_ASSUME_CASE_INSENSITIVE").is_ok_and(|v| v == "1") {
        return true;
    }
    // Created exclusively (never through a planted symlink), under a name
    // nobody can guess.
    let n: u64 = rand::random();
    let probe = dir.join(format!("CaseProbe-{n:016x}"));
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_err()
    {
        return false;
    }
    let insensitive = std::fs::symlink_metadata(dir.join(format!("caseprobe-{n:016x}"))).is_ok();
    if let Err(e) = std::fs::remove_file(&probe) {
        tracing::warn!(path = %probe.display(), error = %e, "could not remove the case probe");
    }
    insensitive
}

/// A pass the quick check found nothing to do for: the notes a full pass
/// would make, and its report (one round, converged, no tree).
fn end_at_check(
    db: &mut StateDb,
    now: &str,
    report: &mut SyncReport,
    u: unchanged::Unchanged,
) -> Result<(), EngineError> {
    let known = known_notes(db)?;
    db.set_skipped(Side::Local, &rel_skipped(&u.local_skipped), now)?;
    if let Some(remote) = &u.remote_skipped {
        db.set_skipped(Side::Remote, &rel_skipped(remote), now)?;
    }
    let remote = u.remote_skipped.unwrap_or_default();
    log_notes(&known, u.local_skipped.iter().chain(&remote), &[]);
    let mut skipped = u.local_skipped;
    skipped.extend(remote);
    report.rounds = 1;
    report.converged = true;
    report.unchanged = true;
    report.skipped = skipped.len() as u64;
    report.timings.scan_ms = u.scan_ms;
    report.timings.listing_ms = u.listing_ms;
    report.remote_listed = u.listed.map(Arc::new);
    report.remote_view = u.view.map(Arc::new);
    report.plan = Some(PassPlan {
        skipped,
        ..PassPlan::default()
    });
    Ok(())
}

/// What earlier passes already noted (each note is logged once per path
/// and reason; `dcsync status` keeps listing it).
fn known_notes(db: &StateDb) -> Result<std::collections::HashSet<(String, String)>, EngineError> {
    Ok(db
        .skipped()?
        .into_iter()
        .map(|e| (e.path.as_str().to_owned(), e.reason))
        .collect())
}

/// Logs a pass's notes: new ones at warn (mapped names at info), those
/// `known` from earlier passes and ignored host entries at debug.
fn log_notes<'a>(
    known: &std::collections::HashSet<(String, String)>,
    skipped: impl Iterator<Item = &'a (String, String)>,
    mapped: &[(String, String)],
) {
    let said_before = |p: &str, why: &str| {
        known.contains(&(p.trim_start_matches('/').to_owned(), why.to_owned()))
    };
    for (p, why) in skipped {
        if why == IGNORED_REMOTE || said_before(p, why) {
            tracing::debug!(path = %crate::model::printable(p), "skipped: {why}");
        } else {
            tracing::warn!(path = %crate::model::printable(p), "skipped: {why}");
        }
    }
    for (p, why) in mapped {
        if said_before(p, why) {
            tracing::debug!(path = %crate::model::printable(p), "{why}");
        } else {
            tracing::info!(path = %crate::model::printable(p), "{why}");
        }
    }
}

fn rel_skipped(list: &[(String, String)]) -> Vec<(RelPath, String)> {
    list.iter()
        .map(|(p, why)| {
            let rel = RelPath::new(p.trim_start_matches('/'))
                .unwrap_or_else(|| RelPath::new(&p.replace('/', "∕")).unwrap_or_default());
            (rel, why.clone())
        })
        .collect()
}

/// Resolves (on the first sync: creates) the remote folder, and refuses a
/// remote folder that vanished or was replaced since the last sync.
async fn remote_root(
    client: &dyn Host,
    cfg: &EngineConfig,
    db: &mut StateDb,
    tracked: u64,
    _clock: &dyn Clock,
) -> Result<Option<FolderId>, EngineError> {
    let first = tracked == 0;
    // Pairs of one daemon may share parent folders: create them one at a
    // time, or two pairs could each create the same parent.
    static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = CREATING.lock().await;
    let resolved = match snapshot::resolve_root(client, &cfg.remote_path, first).await {
        Ok(r) => r,
        Err(SnapshotError::NotFound { .. }) => {
            return Err(EngineError::RemoteRootGone {
                path: cfg.remote_path.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let now = resolved.map_or(0, |f| f.0);
    if let Some(before) = db
        .get_meta("remote_root_id")?
        .and_then(|v| v.parse::<u64>().ok())
        && before != now
        && !first
    {
        return Err(EngineError::RemoteRootChanged {
            path: cfg.remote_path.clone(),
            before,
            now,
        });
    }
    db.set_meta("remote_root_id", &now.to_string())?;
    Ok(resolved)
}

/// The meta key of the recent-deletions window.
const RECENT_DELETES: &str = "recent_deletes";
/// How many of the paths a mass-delete stop would delete it keeps.
pub const MASS_DELETE_SHOWN: usize = 200;

/// How long deletions add up in the mass-delete guard.
const DELETE_WINDOW_SECS: i64 = 3600;

/// Files deleted per side by the passes of the last [`DELETE_WINDOW_SECS`]
/// (kept in the state DB as `secs:local:remote` items).
#[derive(Debug, Clone, Default)]
struct DeleteWindow {
    items: Vec<(i64, u64, u64)>,
}

impl DeleteWindow {
    fn load(db: &StateDb, now: i64) -> Result<DeleteWindow, EngineError> {
        let text = db.get_meta(RECENT_DELETES)?.unwrap_or_default();
        let items = text
            .split(',')
            .filter_map(|item| {
                let mut it = item.split(':').map(str::parse::<i64>);
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(t)), Some(Ok(l)), Some(Ok(r))) => {
                        Some((t, u64::try_from(l).ok()?, u64::try_from(r).ok()?))
                    }
                    _ => None,
                }
            })
            .filter(|(t, _, _)| now - t < DELETE_WINDOW_SECS && *t <= now)
            .collect();
        Ok(DeleteWindow { items })
    }

    /// This plan's counts plus the window's (the share is of what was
    /// tracked when the window began).
    fn with(&self, mut c: plan::DeleteCount) -> plan::DeleteCount {
        for (_, l, r) in &self.items {
            c.local_files += l;
            c.remote_files += r;
            c.tracked_files += l + r;
        }
        c
    }

    fn add(mut self, now: i64, c: plan::DeleteCount) -> DeleteWindow {
        self.items.push((now, c.local_files, c.remote_files));
        self
    }

    fn save(&self, db: &mut StateDb) -> Result<(), EngineError> {
        let text: Vec<String> = self
            .items
            .iter()
            .map(|(t, l, r)| format!("{t}:{l}:{r}"))
            .collect();
        Ok(db.set_meta(RECENT_DELETES, &text.join(","))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, SyncedEntry};

    fn entry(kind: Kind) -> SyncedEntry {
        SyncedEntry {
            kind,
            local: Default::default(),
            hashes: Default::default(),
            remote_id: 1,
            remote_parent: None,
            remote_name: String::new(),
            size: 0,
        }
    }

    /// The trashed folders' list is read each round: remembering one more
    /// keeps it at [`TRASHED_FOLDERS_KEPT`], letting go of the one
    /// remembered first (not of the lowest id: an old folder trashed now
    /// is the one to remember).
    #[test]
    fn the_trashed_folders_list_keeps_the_last_remembered_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("state.db")).unwrap();
        let n = TRASHED_FOLDERS_KEPT as u64;
        let ids: Vec<u64> = (10..10 + n).collect();
        remember_trashed_folders(&mut db, &ids).unwrap();
        remember_trashed_folder(&mut db, 3).unwrap();
        let kept = trashed_folders(&db).unwrap();
        assert_eq!(kept.len(), TRASHED_FOLDERS_KEPT);
        assert!(kept.contains(&3) && !kept.contains(&10) && kept.contains(&11));
        let list = trashed_folder_list(&db).unwrap();
        remember_trashed_folder(&mut db, 11).unwrap();
        assert_eq!(
            trashed_folder_list(&db).unwrap(),
            list,
            "a known id is not added twice"
        );
    }

    #[test]
    fn an_entry_below_an_ignored_folder_is_forgotten_also_without_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dcsyncignore"), "d1/\n").unwrap();
        let rules = IgnoreRules::load(dir.path()).unwrap();
        let p = |s: &str| RelPath::new(s).unwrap();
        let mut synced: crate::model::Tree<SyncedEntry> = Default::default();
        synced.insert(p("a.txt"), entry(Kind::File));
        synced.insert(p("d1/b.txt"), entry(Kind::File));
        synced.insert(p("d2"), entry(Kind::Dir));
        synced.insert(p("d2/c.txt"), entry(Kind::File));
        let mut forgot = Vec::new();
        let top = forget_ignored(&mut synced, &rules, &mut forgot);
        assert_eq!(top, [p("d1/b.txt")]);
        let left: Vec<&str> = synced.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["a.txt", "d2", "d2/c.txt"]);
    }

    /// An upload dcsync made that a listing of its folder does not show
    /// (the folder went to the host's trash meanwhile) is forgotten in the
    /// database, not only for the pass: when sending it again fails (the
    /// user moved the file away), a stale record left behind took the
    /// file, back at its path, for synced and unchanged, and a later
    /// delete on the host trashed its only copy locally (sim seed 104674).
    /// A made entry listed, or below a folder whose listing failed, stays.
    #[test]
    fn an_upload_no_listing_shows_is_forgotten_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("state.db")).unwrap();
        let p = |s: &str| RelPath::new(s).unwrap();
        let with_id = |kind, id| SyncedEntry {
            remote_id: id,
            ..entry(kind)
        };
        db.apply(&[
            crate::state::Change::Put(p("d"), with_id(Kind::Dir, 2)),
            crate::state::Change::Put(p("d/gone.txt"), with_id(Kind::File, 5)),
            crate::state::Change::Put(p("d/seen.txt"), with_id(Kind::File, 6)),
            crate::state::Change::Put(p("u"), with_id(Kind::Dir, 3)),
            crate::state::Change::Put(p("u/unknown.txt"), with_id(Kind::File, 7)),
            crate::state::Change::Made(Kind::File, 5),
            crate::state::Change::Made(Kind::File, 6),
            crate::state::Change::Made(Kind::File, 7),
        ])
        .unwrap();
        let synced = Arc::new(db.load_synced().unwrap());
        let remote = |id| crate::model::RemoteEntry {
            kind: Kind::Dir,
            id,
            parent: Some(1),
            size: 0,
        };
        let mut view = crate::model::RemoteView::default();
        view.entries.insert(p("d"), remote(2));
        view.entries.insert(
            p("d/seen.txt"),
            crate::model::RemoteEntry {
                kind: Kind::File,
                ..remote(6)
            },
        );
        view.entries.insert(p("u"), remote(3));
        view.unknown.push(p("u"));
        let kept = forget_unlisted(&mut db, synced, &view, true, false).unwrap();
        assert!(
            !kept.contains_key(&p("d/gone.txt")),
            "forgotten for the pass"
        );
        let stored = db.load_synced().unwrap();
        let left: Vec<&str> = stored.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["d", "d/seen.txt", "u", "u/unknown.txt"]);
        // The listed one is no longer waiting to be seen; the other two are.
        let waiting = db.unlisted().unwrap();
        assert!(!waiting.contains(&(Kind::File, 6)), "{waiting:?}");
        assert!(waiting.contains(&(Kind::File, 7)), "{waiting:?}");
    }
}
