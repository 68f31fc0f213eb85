//! The planner: Local, Remote and Synced trees in, a sorted list of
//! operations out.
//!
//! Pure: it never touches disk, network, clock, database or tokio, so its
//! tests are data. A change is a difference from Synced, never a difference
//! between Local and Remote; no Synced entry means "never agreed".
//!
//! One call plans one *round*. Some work needs several rounds (a move whose
//! destination folder does not exist yet on the other side waits for it; a
//! path whose kind changed is freed first and re-created in the next round),
//! so the caller re-scans and plans again until the plan is empty. Each
//! round only plans what is certain to be valid against the views it got.
//!
//! Invariants enforced here:
//! - nothing under a path the scan or listing could not see (`unknown`) is
//!   deleted, and nothing is created there;
//! - a folder is deleted whole only when nothing below it is new, changed or
//!   moved away on either side; otherwise its contents are handled one by one;
//! - modification beats deletion (a changed file is transferred, not deleted);
//! - both sides changing one file is never resolved by overwriting: the
//!   executor compares contents and keeps both when they differ.

pub mod focus;
mod moves;
#[cfg(test)]
mod proptest;
#[cfg(test)]
mod tests;

use crate::model::*;
use std::collections::{BTreeSet, HashMap};

/// Which directions changes flow in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Changes on either side reach the other.
    #[default]
    TwoWay,
    /// Backup: local is the source. Remote-only changes are undone or left
    /// alone; remote deletes happen only with `propagate_deletes`.
    UploadOnly,
    /// Mirror of the remote: local-only changes are undone or left alone.
    DownloadOnly,
}

/// Planner settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOptions {
    pub mode: Mode,
    /// In one-way modes, whether deletions on the source side are carried over.
    pub propagate_deletes: bool,
}

/// One operation. Each carries what the executor must re-check before acting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Create a remote folder for the local folder at `path`.
    CreateRemoteDir { path: RelPath, local: LocalMeta },
    /// Create a local folder for the remote folder at `path`.
    CreateLocalDir { path: RelPath, remote_id: u64 },
    /// Both sides have a folder at `path`: record them as agreed.
    RecordDir {
        path: RelPath,
        local: LocalMeta,
        remote_id: u64,
        remote_parent: Option<u64>,
    },
    /// Move/rename the remote file or folder `id` to `to` (one call for a
    /// whole folder). Synced entries below `from` follow.
    MoveRemote {
        kind: Kind,
        id: u64,
        /// Where Synced has the entry (differs from `from` when the remote
        /// side moved it too).
        synced: RelPath,
        from: RelPath,
        to: RelPath,
    },
    /// Rename the local file or folder at `from` to `to`.
    MoveLocal {
        kind: Kind,
        from: RelPath,
        to: RelPath,
        expect: LocalMeta,
        /// The remote folder the entry is in now.
        remote_parent: Option<u64>,
    },
    /// Both sides already made the same move: only Synced changes.
    RecordMove {
        from: RelPath,
        to: RelPath,
        remote_parent: Option<u64>,
    },
    /// Upload the local file at `path`; afterwards trash `replaces` (the
    /// previous remote version) and give the new file the exact name.
    Upload {
        path: RelPath,
        local: LocalEntry,
        replaces: Option<u64>,
    },
    /// The remote already has this content as file `source`: copy it on
    /// the server instead of uploading.
    RemoteCopy {
        path: RelPath,
        local: LocalEntry,
        source: u64,
        source_hashes: Hashes,
        replaces: Option<u64>,
    },
    /// Download remote file to `path`. `replaces` is the local file the
    /// plan saw there (`None`: the path must still be free).
    Download {
        path: RelPath,
        remote: RemoteEntry,
        replaces: Option<LocalMeta>,
    },
    /// Both sides have a file at `path` that Synced does not explain as
    /// equal: compare contents; record if equal, else keep both (the local
    /// one as a conflicted copy) and take the remote one at `path`.
    Reconcile {
        path: RelPath,
        local: LocalEntry,
        remote: RemoteEntry,
    },
    /// A local file is in the way of a remote folder (or the reverse):
    /// rename the local entry to a conflicted-copy name.
    SetAside { path: RelPath, expect: LocalMeta },
    /// Backup mode: the remote file `id` at `path` was never synced and the
    /// local version takes the name: rename the remote one to a
    /// conflicted-copy name on the host (kept, never trashed).
    SetAsideRemote { path: RelPath, id: u64 },
    /// Trash the remote file or folder (a folder with everything below it).
    DeleteRemote { kind: Kind, path: RelPath, id: u64 },
    /// Move the local file or folder to `.dcsync/trash/`.
    DeleteLocal {
        kind: Kind,
        path: RelPath,
        expect: LocalMeta,
    },
    /// Gone on both sides: drop the Synced entry (and everything below).
    Forget { path: RelPath },
}

impl Op {
    /// A short name of the op's kind, for metrics and the activity list
    /// (`upload`, `trash_local`, ...).
    pub fn kind_label(&self) -> &'static str {
        match self {
            Op::CreateRemoteDir { .. } => "mkdir_remote",
            Op::CreateLocalDir { .. } => "mkdir_local",
            Op::RecordDir { .. } | Op::RecordMove { .. } => "record",
            Op::MoveRemote { .. } => "move_remote",
            Op::MoveLocal { .. } => "move_local",
            Op::Upload { .. } => "upload",
            Op::RemoteCopy { .. } => "copy_remote",
            Op::Download { .. } => "download",
            Op::Reconcile { .. } => "compare",
            Op::SetAside { .. } => "set_aside_local",
            Op::SetAsideRemote { .. } => "set_aside_remote",
            Op::DeleteRemote { .. } => "trash_remote",
            Op::DeleteLocal { .. } => "trash_local",
            Op::Forget { .. } => "forget",
        }
    }

    /// The path the op is about (its destination for moves).
    pub fn path(&self) -> &RelPath {
        match self {
            Op::CreateRemoteDir { path, .. }
            | Op::CreateLocalDir { path, .. }
            | Op::RecordDir { path, .. }
            | Op::Upload { path, .. }
            | Op::RemoteCopy { path, .. }
            | Op::Download { path, .. }
            | Op::Reconcile { path, .. }
            | Op::SetAside { path, .. }
            | Op::SetAsideRemote { path, .. }
            | Op::DeleteRemote { path, .. }
            | Op::DeleteLocal { path, .. }
            | Op::Forget { path } => path,
            Op::MoveRemote { to, .. } | Op::MoveLocal { to, .. } | Op::RecordMove { to, .. } => to,
        }
    }

    /// The execution stage: stages run in order, ops within a stage may
    /// run concurrently except folder creation (parents first, by path).
    pub fn stage(&self) -> Stage {
        match self {
            Op::SetAside { .. } | Op::SetAsideRemote { .. } => Stage::SetAside,
            Op::CreateRemoteDir { .. } | Op::CreateLocalDir { .. } | Op::RecordDir { .. } => {
                Stage::Dirs
            }
            Op::MoveRemote { .. } | Op::MoveLocal { .. } | Op::RecordMove { .. } => Stage::Moves,
            Op::Upload { .. }
            | Op::RemoteCopy { .. }
            | Op::Download { .. }
            | Op::Reconcile { .. } => Stage::Transfers,
            Op::DeleteRemote { .. } | Op::DeleteLocal { .. } | Op::Forget { .. } => Stage::Deletes,
        }
    }

    /// Whether the op removes something on a side (for the mass-delete guard).
    pub fn is_delete(&self) -> bool {
        matches!(self, Op::DeleteRemote { .. } | Op::DeleteLocal { .. })
    }
}

/// One line per op, as a person reads it (logs, `sync` output).
impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::CreateRemoteDir { path, .. } => write!(f, "mkdir remote  {path}/"),
            Op::CreateLocalDir { path, .. } => write!(f, "mkdir local   {path}/"),
            Op::RecordDir { path, .. } => write!(f, "same folder   {path}/"),
            Op::MoveRemote { from, to, .. } => write!(f, "move remote   {from} -> {to}"),
            Op::MoveLocal { from, to, .. } => write!(f, "move local    {from} -> {to}"),
            Op::RecordMove { from, to, .. } => write!(f, "moved both    {from} -> {to}"),
            Op::Upload { path, .. } => write!(f, "upload        {path}"),
            Op::RemoteCopy { path, .. } => write!(f, "copy remote   {path}"),
            Op::Download { path, .. } => write!(f, "download      {path}"),
            Op::Reconcile { path, .. } => write!(f, "compare       {path}"),
            Op::SetAside { path, .. } => write!(f, "set aside     {path}"),
            Op::SetAsideRemote { path, .. } => {
                write!(f, "keep remote   {path} (as a conflicted copy)")
            }
            Op::DeleteRemote { path, .. } => write!(f, "trash remote  {path}"),
            Op::DeleteLocal { path, .. } => write!(f, "trash local   {path}"),
            Op::Forget { path } => write!(f, "stop tracking {path} (nothing is deleted)"),
        }
    }
}

/// Execution stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    SetAside,
    Dirs,
    Moves,
    Transfers,
    Deletes,
}

/// The result of planning one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by (stage, path); deletes children first.
    pub ops: Vec<Op>,
    /// Paths left for a later round, with why (for logs and tests).
    pub deferred: Vec<(RelPath, &'static str)>,
}

/// How many tracked files a plan would delete, per side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteCount {
    pub local_files: u64,
    pub remote_files: u64,
    pub tracked_files: u64,
}

impl Plan {
    /// Counts the tracked files the plan deletes (a folder counts its files).
    pub fn delete_count(&self, synced: &Tree<SyncedEntry>) -> DeleteCount {
        delete_count(&self.ops, synced)
    }
}

/// Counts the tracked files `ops` delete (a folder counts its files).
pub fn delete_count(ops: &[Op], synced: &Tree<SyncedEntry>) -> DeleteCount {
    let files_under = |p: &RelPath| {
        std::iter::once(p)
            .filter_map(|p| synced.get_key_value(p))
            .chain(crate::model::below(synced, p))
            .filter(|(_, e)| e.kind == Kind::File)
            .count() as u64
    };
    let mut c = DeleteCount {
        tracked_files: synced.values().filter(|e| e.kind == Kind::File).count() as u64,
        ..Default::default()
    };
    for op in ops {
        match op {
            Op::DeleteLocal { path, .. } => c.local_files += files_under(path),
            Op::DeleteRemote { path, .. } => c.remote_files += files_under(path),
            _ => {}
        }
    }
    c
}

/// Where a Synced entry is now on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Cannot tell (scan or listing failed there).
    Unknown,
    /// Still at its path. `changed`: content differs from Synced (files),
    /// or the remote folder has another id.
    Same {
        changed: bool,
    },
    /// Found at another path by identity (inode / id).
    Moved {
        to: RelPath,
        changed: bool,
    },
    Deleted,
}

/// Planning context shared by the phases.
pub(crate) struct Ctx<'a> {
    pub local: &'a LocalView,
    pub remote: &'a RemoteView,
    pub synced: &'a Tree<SyncedEntry>,
    pub opts: PlanOptions,
    pub lfate: HashMap<&'a RelPath, Fate>,
    pub rfate: HashMap<&'a RelPath, Fate>,
    /// Local paths that are move destinations of a Synced entry.
    pub local_move_targets: BTreeSet<RelPath>,
    pub remote_move_targets: BTreeSet<RelPath>,
    /// Subtrees no other op may touch this round (move sources and targets).
    pub busy: Vec<RelPath>,
    /// Paths fully handled by an op on an ancestor (folder deletes).
    pub covered: Vec<RelPath>,
    pub ops: Vec<Op>,
    pub deferred: Vec<(RelPath, &'static str)>,
    /// Folders that will exist on the remote / locally after this round's
    /// `Dirs` stage (so children may be created in the same round).
    pub remote_dirs_planned: BTreeSet<RelPath>,
    pub local_dirs_planned: BTreeSet<RelPath>,
}

impl Ctx<'_> {
    fn is_busy(&self, p: &RelPath) -> bool {
        self.busy.iter().any(|b| p.starts_with(b))
    }
    fn is_covered(&self, p: &RelPath) -> bool {
        self.covered.iter().any(|c| p.starts_with(c))
    }
    pub(crate) fn defer(&mut self, p: &RelPath, why: &'static str) {
        self.deferred.push((p.clone(), why));
    }
    /// A remote folder exists (or will, after this round's Dirs stage) at `p`.
    fn remote_dir_ready(&self, p: &RelPath) -> bool {
        p.is_root()
            || self.remote_dirs_planned.contains(p)
            || self
                .remote
                .entries
                .get(p)
                .is_some_and(|e| e.kind == Kind::Dir)
    }
    fn local_dir_ready(&self, p: &RelPath) -> bool {
        p.is_root()
            || self.local_dirs_planned.contains(p)
            || self
                .local
                .entries
                .get(p)
                .is_some_and(|e| e.kind == Kind::Dir)
    }
    fn can_change_remote(&self) -> bool {
        self.opts.mode != Mode::DownloadOnly
    }
    fn can_change_local(&self) -> bool {
        self.opts.mode != Mode::UploadOnly
    }
}

/// Whether a local file's content differs from what Synced recorded.
pub(crate) fn local_changed(s: &SyncedEntry, l: &LocalEntry) -> bool {
    if s.kind != l.kind {
        return true;
    }
    if l.kind == Kind::Dir {
        return false;
    }
    if l.meta.size != s.size {
        return true;
    }
    if l.meta.ino == s.local.ino && l.meta.mtime_ns == s.local.mtime_ns {
        return false; // fast check: untouched
    }
    match (&l.hashes.sha256, &s.hashes.sha256) {
        (Some(a), Some(b)) => a != b,
        _ => true,
    }
}

/// Why a backup leaves a path alone: the host has an entry of another kind
/// there that was never synced, and backup mode never removes such a thing.
pub const BACKUP_IN_THE_WAY: &str = "the host has a file or folder here that was never synced; \
     backup mode does not remove it: move it away on the host";

/// Plans one round. See the module docs.
pub fn plan(
    local: &LocalView,
    remote: &RemoteView,
    synced: &Tree<SyncedEntry>,
    opts: PlanOptions,
) -> Plan {
    let mut cx = Ctx {
        local,
        remote,
        synced,
        opts,
        lfate: HashMap::with_capacity(synced.len()),
        rfate: HashMap::with_capacity(synced.len()),
        local_move_targets: BTreeSet::new(),
        remote_move_targets: BTreeSet::new(),
        busy: Vec::new(),
        covered: Vec::new(),
        ops: Vec::new(),
        deferred: Vec::new(),
        remote_dirs_planned: BTreeSet::new(),
        local_dirs_planned: BTreeSet::new(),
    };
    moves::compute_fates(&mut cx);
    moves::plan_moves(&mut cx);
    plan_synced(&mut cx);
    plan_new(&mut cx);
    finish(cx)
}

/// Decides each Synced entry that did not move.
fn plan_synced(cx: &mut Ctx<'_>) {
    let synced = cx.synced;
    for (path, s) in synced {
        if path.is_root() || cx.is_busy(path) || cx.is_covered(path) {
            continue;
        }
        let lf = cx.lfate.get(path).cloned().unwrap_or(Fate::Unknown);
        let rf = cx.rfate.get(path).cloned().unwrap_or(Fate::Unknown);
        if matches!(lf, Fate::Moved { .. }) || matches!(rf, Fate::Moved { .. }) {
            // Moves that could not be planned degrade in `moves`; the
            // entry itself waits for the next round.
            continue;
        }
        if lf == Fate::Unknown || rf == Fate::Unknown {
            continue; // cannot tell: touch nothing
        }
        let l = cx.local.entries.get(path);
        let r = cx.remote.entries.get(path);
        match (s.kind, lf, rf) {
            (_, Fate::Deleted, Fate::Deleted) => {
                cx.ops.push(Op::Forget { path: path.clone() });
                cx.covered.push(path.clone());
            }
            // ---------------------------------------------------- files
            (Kind::File, Fate::Same { changed: lc }, Fate::Same { changed: rc }) => {
                let (Some(l), Some(r)) = (l, r) else { continue };
                match (lc, rc) {
                    (false, false) => {}
                    (true, false) if cx.can_change_remote() => cx.ops.push(Op::Upload {
                        path: path.clone(),
                        local: l.clone(),
                        replaces: Some(r.id),
                    }),
                    (false, true) if cx.can_change_local() => cx.ops.push(Op::Download {
                        path: path.clone(),
                        remote: r.clone(),
                        replaces: Some(l.meta),
                    }),
                    (true, true) => both_changed(cx, path, l, r),
                    // Download-only, local change: the mirror takes the
                    // remote version back; the local edit is kept as a
                    // conflicted copy, never overwritten.
                    (true, false) => cx.ops.push(Op::Reconcile {
                        path: path.clone(),
                        local: l.clone(),
                        remote: r.clone(),
                    }),
                    // Backup, remote change: the local version takes the
                    // name back; the host's version (never synced) is kept
                    // as a conflicted copy, not trashed.
                    (false, true) => backup_over(cx, path, l, r),
                }
            }
            (Kind::File, Fate::Deleted, Fate::Same { changed }) => {
                let Some(r) = r else { continue };
                // One-way deletes carry over only what was synced: a
                // version changed since is never removed.
                let delete = match cx.opts.mode {
                    Mode::TwoWay => !changed,
                    Mode::UploadOnly => cx.opts.propagate_deletes && !changed,
                    Mode::DownloadOnly => false,
                };
                if delete {
                    cx.ops.push(Op::DeleteRemote {
                        kind: Kind::File,
                        path: path.clone(),
                        id: r.id,
                    });
                } else if cx.can_change_local() {
                    // Modification beats deletion (or a mirror restores).
                    if let Some(other) = l.filter(|l| l.kind != Kind::File) {
                        cx.ops.push(Op::SetAside {
                            path: path.clone(),
                            expect: other.meta,
                        });
                    } else if cx.local_dir_ready_for(path) {
                        cx.ops.push(Op::Download {
                            path: path.clone(),
                            remote: r.clone(),
                            replaces: None,
                        });
                    } else {
                        cx.defer(path, "local parent folder missing");
                    }
                } else {
                    // Upload-only without propagation: stop tracking; the
                    // remote copy stays.
                    cx.ops.push(Op::Forget { path: path.clone() });
                }
            }
            (Kind::File, Fate::Same { changed }, Fate::Deleted) => {
                let Some(l) = l else { continue };
                let delete = match cx.opts.mode {
                    Mode::TwoWay => !changed,
                    Mode::DownloadOnly => cx.opts.propagate_deletes && !changed,
                    Mode::UploadOnly => false,
                };
                let r_other = r.filter(|r| r.kind != Kind::File);
                if delete {
                    cx.ops.push(Op::DeleteLocal {
                        kind: Kind::File,
                        path: path.clone(),
                        expect: l.meta,
                    });
                } else if cx.can_change_remote() {
                    match r_other {
                        // Backup never removes what it did not upload.
                        Some(_) if cx.opts.mode == Mode::UploadOnly => {
                            cx.defer(path, BACKUP_IN_THE_WAY);
                            cx.covered.push(path.clone());
                        }
                        Some(_) => cx.ops.push(Op::SetAside {
                            path: path.clone(),
                            expect: l.meta,
                        }),
                        None if cx.remote_dir_ready_for(path) => cx.ops.push(Op::Upload {
                            path: path.clone(),
                            local: l.clone(),
                            replaces: None,
                        }),
                        None => cx.defer(path, "remote parent folder missing"),
                    }
                } else if r_other.is_some() {
                    // Download-only: the remote folder wins the name.
                    cx.ops.push(Op::SetAside {
                        path: path.clone(),
                        expect: l.meta,
                    });
                } else {
                    cx.ops.push(Op::Forget { path: path.clone() });
                }
            }
            // -------------------------------------------------- folders
            (Kind::Dir, Fate::Same { .. }, Fate::Same { changed }) => {
                let (Some(l), Some(r)) = (l, r) else { continue };
                if l.kind == Kind::Dir && (changed || l.meta.ino != s.local.ino) {
                    // Same folder, new identity on a side: re-record.
                    cx.ops.push(Op::RecordDir {
                        path: path.clone(),
                        local: l.meta,
                        remote_id: r.id,
                        remote_parent: r.parent,
                    });
                }
            }
            (Kind::Dir, Fate::Deleted, Fate::Same { .. }) => {
                let delete_ok = match cx.opts.mode {
                    Mode::TwoWay => true,
                    Mode::UploadOnly => cx.opts.propagate_deletes,
                    Mode::DownloadOnly => false,
                };
                if delete_ok && remote_subtree_deletable(cx, path) {
                    let id = cx.remote.entries.get(path).map_or(s.remote_id, |r| r.id);
                    cx.ops.push(Op::DeleteRemote {
                        kind: Kind::Dir,
                        path: path.clone(),
                        id,
                    });
                    cx.covered.push(path.clone());
                } else if cx.can_change_local() {
                    // Something below is new or changed remotely: keep the
                    // folder; children are handled one by one.
                    if let Some(other) = l.filter(|l| l.kind != Kind::Dir) {
                        cx.ops.push(Op::SetAside {
                            path: path.clone(),
                            expect: other.meta,
                        });
                    } else if cx.local_dir_ready_for(path)
                        && let Some(r) = r
                    {
                        cx.ops.push(Op::CreateLocalDir {
                            path: path.clone(),
                            remote_id: r.id,
                        });
                        cx.local_dirs_planned.insert(path.clone());
                    }
                } else {
                    // Upload-only without propagation: stop tracking the
                    // whole subtree, leave the remote as it is.
                    cx.ops.push(Op::Forget { path: path.clone() });
                    cx.covered.push(path.clone());
                }
            }
            (Kind::Dir, Fate::Same { .. }, Fate::Deleted) => {
                let delete_ok = match cx.opts.mode {
                    Mode::TwoWay => true,
                    Mode::DownloadOnly => cx.opts.propagate_deletes,
                    Mode::UploadOnly => false,
                };
                let Some(l) = l else { continue };
                let r_other = r.filter(|r| r.kind != Kind::Dir);
                if delete_ok && local_subtree_deletable(cx, path) {
                    cx.ops.push(Op::DeleteLocal {
                        kind: Kind::Dir,
                        path: path.clone(),
                        expect: l.meta,
                    });
                    cx.covered.push(path.clone());
                } else if cx.can_change_remote() {
                    match r_other {
                        // Backup never removes what it did not upload.
                        Some(_) if cx.opts.mode == Mode::UploadOnly => {
                            cx.defer(path, BACKUP_IN_THE_WAY);
                            cx.covered.push(path.clone());
                        }
                        Some(_) => {
                            cx.ops.push(Op::SetAside {
                                path: path.clone(),
                                expect: l.meta,
                            });
                            cx.covered.push(path.clone());
                        }
                        None if cx.remote_dir_ready_for(path) => {
                            cx.ops.push(Op::CreateRemoteDir {
                                path: path.clone(),
                                local: l.meta,
                            });
                            cx.remote_dirs_planned.insert(path.clone());
                        }
                        None => cx.defer(path, "remote parent folder missing"),
                    }
                } else if r_other.is_some() {
                    cx.ops.push(Op::SetAside {
                        path: path.clone(),
                        expect: l.meta,
                    });
                    cx.covered.push(path.clone());
                } else {
                    cx.ops.push(Op::Forget { path: path.clone() });
                    cx.covered.push(path.clone());
                }
            }
            _ => {}
        }
    }
}

impl Ctx<'_> {
    /// Whether an entry of `kind` at `p` is new: Synced has nothing there,
    /// or an entry of another kind that has left `p` on both sides.
    fn free_of_synced(&self, p: &RelPath, kind: Kind) -> bool {
        let gone = |f: Option<&Fate>| matches!(f, Some(Fate::Moved { .. } | Fate::Deleted));
        match self.synced.get(p) {
            None => true,
            Some(s) if s.kind == kind => false,
            Some(_) => gone(self.lfate.get(p)) && gone(self.rfate.get(p)),
        }
    }

    fn remote_dir_ready_for(&self, p: &RelPath) -> bool {
        p.parent().is_some_and(|pp| self.remote_dir_ready(&pp))
    }
    fn local_dir_ready_for(&self, p: &RelPath) -> bool {
        p.parent().is_some_and(|pp| self.local_dir_ready(&pp))
    }
}

/// A remote folder may be trashed whole when everything below it on the
/// remote is Synced, unchanged, and deleted locally (not moved away).
fn remote_subtree_deletable(cx: &Ctx<'_>, dir: &RelPath) -> bool {
    if cx.local.is_unknown(dir) || cx.remote.is_unknown(dir) {
        return false;
    }
    let below_remote = crate::model::below(&cx.remote.entries, dir);
    for (p, r) in below_remote {
        let Some(s) = cx.synced.get(p) else {
            return false; // new remotely
        };
        if s.kind != r.kind || s.remote_id != r.id {
            return false; // changed remotely
        }
        if cx.lfate.get(p) != Some(&Fate::Deleted) {
            return false; // still somewhere locally (moved away)
        }
    }
    // Remote entries that moved out of the folder are not below it any
    // more; Synced entries that moved out remotely must not be lost either.
    !cx.moved_out_below(dir) && !cx.unknown_below(dir)
}

/// The local mirror image of [`remote_subtree_deletable`].
fn local_subtree_deletable(cx: &Ctx<'_>, dir: &RelPath) -> bool {
    if cx.local.is_unknown(dir) || cx.remote.is_unknown(dir) {
        return false;
    }
    for (p, l) in crate::model::below(&cx.local.entries, dir) {
        let Some(s) = cx.synced.get(p) else {
            return false; // new locally
        };
        if local_changed(s, l) {
            return false;
        }
        if cx.rfate.get(p) != Some(&Fate::Deleted) {
            return false;
        }
    }
    !cx.moved_out_below(dir) && !cx.unknown_below(dir)
}

impl Ctx<'_> {
    /// Whether a Synced entry below `dir` moved (on either side): it must
    /// not be lost with the folder.
    fn moved_out_below(&self, dir: &RelPath) -> bool {
        crate::model::below(self.synced, dir).any(|(p, _)| {
            matches!(self.rfate.get(p), Some(Fate::Moved { .. }))
                || matches!(self.lfate.get(p), Some(Fate::Moved { .. }))
        })
    }

    /// Whether any unknown subtree lies below `dir` on either side.
    /// Whether any unknown subtree, or any entry that is not synced
    /// (ignored, a symlink), lies in `dir` on either side: the folder
    /// holds more than what Synced explains, so it is never removed whole.
    fn unknown_below(&self, dir: &RelPath) -> bool {
        self.local
            .unknown
            .iter()
            .chain(self.remote.unknown.iter())
            .any(|u| u.starts_with(dir))
            || crate::model::any_below(&self.local.ignored, dir)
            || crate::model::any_below(&self.remote.ignored, dir)
            || [&self.local.holds_more, &self.remote.holds_more]
                .iter()
                .any(|h| h.contains(dir) || crate::model::any_below(h, dir))
    }
}

/// The ops for a file both sides have changed (or both created) in ways
/// Synced does not explain. Two-way: compare, keep both if they differ.
/// Backup: the local version takes the name, the remote one is kept as a
/// conflicted copy on the host (never trashed: it was never synced).
/// Mirror: the remote version wins, the local one is kept as a conflicted
/// copy (never overwritten).
fn both_changed(cx: &mut Ctx<'_>, path: &RelPath, l: &LocalEntry, r: &RemoteEntry) {
    match cx.opts.mode {
        Mode::UploadOnly => backup_over(cx, path, l, r),
        Mode::TwoWay | Mode::DownloadOnly => cx.ops.push(Op::Reconcile {
            path: path.clone(),
            local: l.clone(),
            remote: r.clone(),
        }),
    }
}

/// Backup mode, a remote file at `path` that was never synced: it is
/// renamed to a conflicted copy on the host (set-aside stage), and the
/// local file is uploaded to the name (transfer stage, same round).
fn backup_over(cx: &mut Ctx<'_>, path: &RelPath, l: &LocalEntry, r: &RemoteEntry) {
    cx.ops.push(Op::SetAsideRemote {
        path: path.clone(),
        id: r.id,
    });
    cx.ops.push(Op::Upload {
        path: path.clone(),
        local: l.clone(),
        replaces: None,
    });
}

/// Entries on one side that Synced does not know.
fn plan_new(cx: &mut Ctx<'_>) {
    // Content index of live remote files, for server-side copies.
    let mut by_sha: HashMap<&Sha256, (&RelPath, &SyncedEntry)> = HashMap::new();
    for (p, s) in cx.synced {
        if s.kind == Kind::File
            && let Some(sha) = &s.hashes.sha256
            && cx
                .remote
                .entries
                .get(p)
                .is_some_and(|r| r.id == s.remote_id)
        {
            by_sha.entry(sha).or_insert((p, s));
        }
    }

    let local = cx.local;
    for (path, l) in &local.entries {
        if path.is_root()
            || !cx.free_of_synced(path, l.kind)
            || cx.local_move_targets.contains(path)
            || cx.is_busy(path)
            || cx.local.is_unknown(path)
        {
            continue;
        }
        if cx.remote.is_unknown(path) {
            cx.defer(path, "remote side unknown");
            continue;
        }
        match cx.remote.entries.get(path) {
            Some(_) if cx.remote_move_targets.contains(path) => {
                cx.defer(path, "remote move lands here");
            }
            Some(r) => match (l.kind, r.kind) {
                (Kind::Dir, Kind::Dir) => {
                    cx.ops.push(Op::RecordDir {
                        path: path.clone(),
                        local: l.meta,
                        remote_id: r.id,
                        remote_parent: r.parent,
                    });
                }
                (Kind::File, Kind::File) => both_changed(cx, path, l, r),
                _ => {
                    // File against folder: move the local one out of the
                    // way (backup mode: the remote one goes to its trash).
                    if cx.can_change_local() {
                        cx.ops.push(Op::SetAside {
                            path: path.clone(),
                            expect: l.meta,
                        });
                    } else {
                        // Backup never removes what it did not upload.
                        cx.defer(path, BACKUP_IN_THE_WAY);
                        cx.covered.push(path.clone());
                    }
                }
            },
            None => {
                if !cx.can_change_remote() {
                    continue; // download-only: local extras are left alone
                }
                let parent_ready = cx.remote_dir_ready_for(path);
                if !parent_ready {
                    cx.defer(path, "remote parent folder not there yet");
                    continue;
                }
                match l.kind {
                    Kind::Dir => {
                        cx.ops.push(Op::CreateRemoteDir {
                            path: path.clone(),
                            local: l.meta,
                        });
                        cx.remote_dirs_planned.insert(path.clone());
                    }
                    Kind::File => {
                        let source = l
                            .hashes
                            .sha256
                            .as_ref()
                            .and_then(|sha| by_sha.get(sha))
                            .filter(|(_, s)| s.size == l.meta.size);
                        match source {
                            Some((_, s)) => cx.ops.push(Op::RemoteCopy {
                                path: path.clone(),
                                local: l.clone(),
                                source: s.remote_id,
                                source_hashes: s.hashes.clone(),
                                replaces: None,
                            }),
                            None => cx.ops.push(Op::Upload {
                                path: path.clone(),
                                local: l.clone(),
                                replaces: None,
                            }),
                        }
                    }
                }
            }
        }
    }

    let remote = cx.remote;
    for (path, r) in &remote.entries {
        if path.is_root()
            || !cx.free_of_synced(path, r.kind)
            || cx.remote_move_targets.contains(path)
            || cx.is_busy(path)
            || cx.remote.is_unknown(path)
            || cx.local.entries.contains_key(path)
        {
            continue;
        }
        if cx.local.is_unknown(path) {
            cx.defer(path, "local side unknown");
            continue;
        }
        if cx.local_move_targets.contains(path) {
            cx.defer(path, "local move lands here");
            continue;
        }
        if !cx.can_change_local() {
            // Backup: what the host has that was never synced is left
            // alone, also with `propagate_deletes` (which carries over the
            // deletion of what was synced, nothing more).
            continue;
        }
        if !cx.local_dir_ready_for(path) {
            cx.defer(path, "local parent folder not there yet");
            continue;
        }
        match r.kind {
            Kind::Dir => {
                cx.ops.push(Op::CreateLocalDir {
                    path: path.clone(),
                    remote_id: r.id,
                });
                cx.local_dirs_planned.insert(path.clone());
            }
            Kind::File => cx.ops.push(Op::Download {
                path: path.clone(),
                remote: r.clone(),
                replaces: None,
            }),
        }
    }
}

fn finish(cx: Ctx<'_>) -> Plan {
    let mut ops = cx.ops;
    ops.sort_by(|a, b| {
        a.stage().cmp(&b.stage()).then_with(|| {
            if a.stage() == Stage::Deletes {
                b.path().cmp(a.path()) // children before parents
            } else {
                a.path().cmp(b.path())
            }
        })
    });
    ops.dedup();
    let mut deferred = cx.deferred;
    deferred.sort();
    deferred.dedup();
    Plan { ops, deferred }
}

/// The name of a conflicted copy: `name (conflicted copy 2024-09-19 044819).ext`,
/// with ` 2`, ` 3`, ... appended inside the parentheses for `n` > 1.
/// `stamp` is the caller's clock reading, already formatted.
///
/// The result is at most [`MAX_NAME_BYTES`] long: a long stem is cut (at a
/// character boundary) so that the copy can exist on the disk and the host.
pub fn conflict_name(name: &str, stamp: &str, n: u32) -> String {
    let (mut stem, mut ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let tag = if n <= 1 {
        format!(" (conflicted copy {stamp})")
    } else {
        format!(" (conflicted copy {stamp} {n})")
    };
    if ext.len() + tag.len() >= MAX_NAME_BYTES / 2 {
        // An absurdly long "extension": treat the whole name as the stem.
        (stem, ext) = (name, "");
    }
    let room = MAX_NAME_BYTES.saturating_sub(tag.len() + ext.len());
    if stem.len() > room {
        let mut cut = room;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        stem = &stem[..cut];
    }
    format!("{stem}{tag}{ext}")
}

/// The longest file name (in bytes) that Linux filesystems and the host take.
pub const MAX_NAME_BYTES: usize = 255;
