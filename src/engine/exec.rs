//! The executor: carries out one round's ops and records each result.
//!
//! Stages run in order (set-aside, folders parents first, moves, transfers
//! on a bounded pool, deletes children first). Every op re-checks its
//! precondition just before acting (the local file is still what the plan
//! saw); an op whose precondition fails is skipped and planned again next
//! round. Every op that changes the remote is journalled as an intent
//! before the call and marked done, together with its Synced changes, in
//! one transaction after. Local deletes and replaced files go to
//! `.dcsync/trash/`; downloads go to `.dcsync/tmp/` first.

use super::recover::Named;
use super::{MARKER, Reporter, SyncReport};
use crate::api::folders::{Made, create_folder};
use crate::api::host::Host;
use crate::api::{ApiError, Expected, FileId, FolderId, FolderOptions, RemoteFolder};
use crate::clock::{self, Clock};
use crate::model::*;
use crate::plan::{Op, Stage, conflict_name};
use crate::state::{Change, StateDb, StateError};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why one op did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    /// The world changed since planning; the next round plans again.
    #[error("{path} changed since planning ({what}); it will be looked at again")]
    Changed { path: RelPath, what: &'static str },
    #[error("{path}: {source}")]
    Api {
        path: RelPath,
        #[source]
        source: ApiError,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    /// Not tried: an earlier op showed it cannot succeed in this pass.
    #[error("{path}: {why}")]
    Held { path: RelPath, why: &'static str },
}

const QUOTA_FULL: &str =
    "not uploaded: the account's storage on the host is full; free space there and sync again";
const QUOTA_WOULD_EXCEED: &str = "not uploaded: it would exceed the account's storage limit; free space on the host and sync again";

/// The account's storage budget for one pass.
#[derive(Debug, Default)]
pub(crate) struct Quota {
    /// The host refused an upload for lack of storage, or the budget ran
    /// out: nothing more is uploaded in this pass.
    full: std::sync::atomic::AtomicBool,
    /// Bytes that may still be stored (`None` = unknown or unlimited).
    room: Mutex<Option<u64>>,
    measured: std::sync::atomic::AtomicBool,
}

impl Quota {
    pub(crate) fn measured(&self) -> bool {
        self.measured.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the budget from the limit and the bytes in use (if known).
    pub(crate) fn set_room(&self, limit: u64, used: Option<u64>) {
        self.measured
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let (Some(used), Ok(mut room)) = (used, self.room.lock()) {
            *room = Some(limit.saturating_sub(used));
            tracing::debug!(limit, used, "account storage");
        }
    }

    /// Takes `size` bytes from the budget; `Err` with the reason when the
    /// upload must not be tried.
    fn take(&self, size: u64) -> Result<(), &'static str> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.full.load(Relaxed) {
            return Err(QUOTA_FULL);
        }
        let Ok(mut room) = self.room.lock() else {
            return Ok(());
        };
        match room.as_mut() {
            Some(r) if *r < size => {
                if !self.full.swap(true, Relaxed) {
                    tracing::warn!("{QUOTA_WOULD_EXCEED}");
                }
                Err(QUOTA_WOULD_EXCEED)
            }
            Some(r) => {
                *r -= size;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Remembers a refusal for lack of storage.
    fn refused(&self) {
        if !self.full.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!("{QUOTA_FULL}");
        }
    }
}

fn changed(path: &RelPath, what: &'static str) -> OpError {
    OpError::Changed {
        path: path.clone(),
        what,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OpError + '_ {
    move |source| OpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a successful op contributes to the report.
#[derive(Debug, Default)]
struct Done {
    uploaded: u64,
    downloaded: u64,
    copied: u64,
    moved: u64,
    created_dirs: u64,
    deleted_local: u64,
    deleted_remote: u64,
    conflicts: u64,
    bytes_up: u64,
    bytes_down: u64,
}

/// How many new remote folders in one folder share a listing of it (the
/// look before their creates, the settle after): bounded so that progress
/// moves (each is reported when settled) and a lost listing costs a run.
const CREATE_RUN: usize = 64;

/// A remote folder of [`Exec::create_remote_dirs`] after its look before.
enum Making {
    /// Nothing to settle: taken as it was on the host.
    Done(Done),
    /// Made (journal intent, the host's answer): to be settled.
    Made(i64, RemoteFolder),
}

/// How a round went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundOutcome {
    /// At least one op succeeded.
    pub progressed: bool,
    /// Some op found its precondition gone (the next round looks again).
    pub changed: bool,
}

pub(crate) struct Exec<'a> {
    client: &'a dyn Host,
    root: &'a Path,
    /// Remote folder ids by path (`None` = the account root), kept current
    /// as this round creates and moves folders.
    dirs: Mutex<HashMap<RelPath, Option<u64>>>,
    db: Mutex<&'a mut StateDb>,
    clock: &'a dyn Clock,
    reporter: &'a dyn Reporter,
    transfers: usize,
    /// Set when the host refused an upload for lack of storage: the rest
    /// of the pass uploads nothing (reported once, not once per file).
    quota: &'a Quota,
    /// When this round's scan started (ns since the epoch): files whose
    /// mtime is not a tick older are recorded as racily clean.
    scan_ns: i64,
    /// The opened sync root: every local create and rename goes through it.
    fs: &'a super::fsat::Root,
    /// The synced content of each local file this round's ops replace or
    /// trash, read before the first op ran: what the plan took the file to
    /// hold. An earlier op of the round may record the same host file at
    /// another path (a rename made on the host, a conflicted copy), which
    /// drops the record at this one; the check must not then take the
    /// untouched local file for changed (and keep it as one more copy).
    planned_sha: Mutex<HashMap<RelPath, Option<Sha256>>>,
}

impl<'a> Exec<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: &'a dyn Host,
        root: &'a Path,
        remote_root: Option<FolderId>,
        remote: &RemoteView,
        db: &'a mut StateDb,
        clock: &'a dyn Clock,
        reporter: &'a dyn Reporter,
        transfers: usize,
        quota: &'a Quota,
        scan_ns: i64,
        fs: &'a super::fsat::Root,
    ) -> Exec<'a> {
        let mut dirs: HashMap<RelPath, Option<u64>> = remote
            .entries
            .iter()
            .filter(|(_, e)| e.kind == Kind::Dir)
            .map(|(p, e)| (p.clone(), Some(e.id)))
            .collect();
        dirs.insert(RelPath::root(), remote_root.map(|f| f.0));
        Exec {
            client,
            root,
            dirs: Mutex::new(dirs),
            db: Mutex::new(db),
            clock,
            reporter,
            transfers: transfers.max(1),
            quota,
            scan_ns,
            fs,
            planned_sha: Mutex::new(HashMap::new()),
        }
    }

    /// Runs the ops of one round. Returns whether any op succeeded.
    pub(crate) async fn run(&self, ops: &[Op], report: &mut SyncReport) -> RoundOutcome {
        self.note_planned_content(ops);
        let mut stages: Vec<(Stage, Vec<&Op>)> = Vec::new();
        for op in ops {
            match stages.last_mut() {
                Some((s, v)) if *s == op.stage() => v.push(op),
                _ => stages.push((op.stage(), vec![op])),
            }
        }
        let mut outcome = RoundOutcome {
            progressed: false,
            changed: false,
        };
        for (stage, ops) in stages {
            // Each op is counted and reported the moment it ends, so
            // progress moves while a stage runs (not at its end).
            if stage == Stage::Transfers {
                // At most `transfers` op futures exist at a time: one is a
                // few KiB, so building all of them up front cost ~2.7 KiB
                // per file of an initial upload. Pushed from this body (not
                // by a closure inside a stream), the future stays `Send`
                // for spawned callers.
                let mut pending = ops.iter();
                let mut running = futures_util::stream::FuturesUnordered::new();
                loop {
                    while running.len() < self.transfers.max(1) {
                        let Some(op) = pending.next() else { break };
                        running.push(self.one_tagged(op));
                    }
                    match running.next().await {
                        Some((op, r)) => self.count(op, r, report, &mut outcome),
                        None => break,
                    }
                }
            } else if stage == Stage::Dirs {
                self.run_dirs(ops, report, &mut outcome).await;
            } else {
                for op in ops {
                    let r = self.one(op).await;
                    self.count(op, r, report, &mut outcome);
                }
            }
        }
        outcome
    }

    /// The folder stage, level by level (parents before children, as path
    /// order had it): the remote folders one level makes in one folder go
    /// together ([`Self::create_remote_dirs`]); the other ops one by one.
    async fn run_dirs(
        &self,
        mut ops: Vec<&Op>,
        report: &mut SyncReport,
        outcome: &mut RoundOutcome,
    ) {
        ops.sort_by_key(|o| o.path().depth());
        let mut at = 0;
        while at < ops.len() {
            let depth = ops[at].path().depth();
            let end = at
                + ops[at..]
                    .iter()
                    .take_while(|o| o.path().depth() == depth)
                    .count();
            let mut creates: std::collections::BTreeMap<RelPath, Vec<&Op>> = Default::default();
            for &op in &ops[at..end] {
                match op {
                    Op::CreateRemoteDir { path, .. } => creates
                        .entry(path.parent().unwrap_or_default())
                        .or_default()
                        .push(op),
                    _ => {
                        let r = self.one(op).await;
                        self.count(op, r, report, outcome);
                    }
                }
            }
            for run in creates.values() {
                self.create_remote_dirs(run, &mut |op, r| self.count(op, r, report, outcome))
                    .await;
            }
            at = end;
        }
    }

    /// Counts one op's result into the report and tells the reporter.
    fn count(
        &self,
        op: &Op,
        r: Result<Done, OpError>,
        report: &mut SyncReport,
        outcome: &mut RoundOutcome,
    ) {
        match r {
            Ok(d) => {
                outcome.progressed = true;
                report.uploaded += d.uploaded;
                report.downloaded += d.downloaded;
                report.copied += d.copied;
                report.moved += d.moved;
                report.created_dirs += d.created_dirs;
                report.deleted_local += d.deleted_local;
                report.deleted_remote += d.deleted_remote;
                report.conflicts += d.conflicts;
                report.bytes_up += d.bytes_up;
                report.bytes_down += d.bytes_down;
                self.reporter.op_done(op, &Ok(()));
            }
            Err(OpError::Changed { path, what }) => {
                tracing::info!(%path, "changed since planning ({what}); looking again");
                report.deferred += 1;
                outcome.changed = true;
                self.reporter
                    .op_done(op, &Err(format!("{path}: changed since planning ({what})")));
            }
            Err(OpError::Held { path, why }) => {
                report.skipped += 1;
                self.reporter.op_done(op, &Err(format!("{path}: {why}")));
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!("{msg}");
                self.reporter.op_done(op, &Err(msg.clone()));
                report.errors.push(msg);
            }
        }
    }

    async fn one_tagged<'o>(&self, op: &'o Op) -> (&'o Op, Result<Done, OpError>) {
        let r = self.one(op).await;
        if let Some(sink) = self.reporter.transfer_sink() {
            sink(op.path(), 0, None);
        }
        (op, r)
    }

    /// Per-transfer progress for the reporter, if it wants it.
    fn progress(&self, path: &RelPath, total: u64) -> Option<crate::api::Progress> {
        let sink = self.reporter.transfer_sink()?;
        let path = path.clone();
        Some(std::sync::Arc::new(move |done| {
            sink(&path, done, Some(total))
        }))
    }

    async fn one(&self, op: &Op) -> Result<Done, OpError> {
        match op {
            Op::SetAside { path, expect } => self.set_aside(path, expect).map(|_| Done {
                conflicts: 1,
                ..Done::default()
            }),
            Op::SetAsideRemote { path, id } => self.set_aside_remote(op, path, *id).await,
            Op::CreateRemoteDir { path, .. } => {
                let mut result = None;
                self.create_remote_dirs(&[op], &mut |_, r| result = Some(r))
                    .await;
                result.unwrap_or_else(|| Err(changed(path, "not made")))
            }
            Op::CreateLocalDir { path, remote_id } => self.create_local_dir(path, *remote_id),
            Op::RecordDir {
                path,
                local,
                remote_id,
                remote_parent,
            } => {
                self.commit(
                    None,
                    vec![Change::Put(
                        path.clone(),
                        dir_entry(path, *local, *remote_id, *remote_parent),
                    )],
                )?;
                Ok(Done::default())
            }
            Op::MoveRemote {
                kind,
                id,
                synced,
                from,
                to,
            } => self.move_remote(op, *kind, *id, synced, from, to).await,
            Op::MoveLocal {
                from,
                to,
                expect,
                remote_parent,
                ..
            } => self.move_local(from, to, expect, *remote_parent),
            Op::RecordMove {
                from,
                to,
                remote_parent,
            } => {
                let changes = self.move_changes(from, to, *remote_parent)?;
                self.commit(None, changes)?;
                Ok(Done::default())
            }
            Op::Upload {
                path,
                local,
                replaces,
            } => self.upload(op, path, local, *replaces).await,
            Op::RemoteCopy {
                path,
                local,
                source,
                source_hashes,
                replaces,
            } => {
                self.remote_copy(op, path, local, *source, source_hashes, *replaces)
                    .await
            }
            Op::Download {
                path,
                remote,
                replaces,
            } => self.download(path, remote, replaces.as_ref()).await,
            Op::Reconcile {
                path,
                local,
                remote,
            } => self.reconcile(path, local, remote).await,
            Op::DeleteRemote { kind, path, id } => self.delete_remote(op, *kind, path, *id).await,
            Op::DeleteLocal { path, expect, .. } => self.delete_local(path, expect),
            Op::Forget { path } => {
                self.commit(None, vec![Change::RemoveTree(path.clone())])?;
                Ok(Done::default())
            }
        }
    }

    // ------------------------------------------------------------ helpers

    fn abs(&self, p: &RelPath) -> PathBuf {
        if p.is_root() {
            self.root.to_path_buf()
        } else {
            self.root.join(p.as_str())
        }
    }

    /// A scanned file's identity as Synced records it: racily clean ones
    /// (changed within a tick of the scan) with [`LocalMeta::RACY_MTIME`],
    /// so the next scan hashes them again.
    fn settle(&self, meta: LocalMeta) -> LocalMeta {
        meta.settled(self.scan_ns)
    }

    fn now(&self) -> String {
        clock::datetime(self.clock.now())
    }

    /// The local entry at `p` now, without following symlinks.
    fn stat(&self, p: &RelPath) -> Result<Option<(Kind, LocalMeta)>, OpError> {
        let path = self.abs(p);
        match std::fs::symlink_metadata(&path) {
            Ok(m) => Ok(Some((
                if m.is_dir() { Kind::Dir } else { Kind::File },
                meta_of(&m),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn still(&self, p: &RelPath, expect: &LocalMeta, kind: Kind) -> Result<(), OpError> {
        match self.stat(p)? {
            Some((k, m))
                if k == kind
                    && m.ino == expect.ino
                    && (kind == Kind::Dir
                        || (m.size == expect.size && m.mtime_ns == expect.mtime_ns)) =>
            {
                Ok(())
            }
            _ => Err(changed(p, "the local entry is not what the plan saw")),
        }
    }

    /// A file whose size, mtime and inode are as expected may still have
    /// been written again since: within one timestamp tick of its last
    /// write a second write keeps the mtime (and, same length, the size).
    /// When its mtime is that recent, its content must still hash to
    /// `want` (what was synced); without `want` it counts as changed.
    /// Called right before a local file is replaced or trashed.
    fn same_if_racy(&self, path: &RelPath, m: &LocalMeta, want: Option<Sha256>) -> bool {
        if !m.is_racy_at(clock::unix_nanos(self.clock.now())) {
            return true;
        }
        let Some(want) = want else {
            return false;
        };
        let same = crate::scan::sha256_file(&self.abs(path)).is_ok_and(|(got, _)| got == want);
        if !same {
            tracing::debug!(%path, "written again within one timestamp tick; not what the plan saw");
        }
        same
    }

    /// Reads, before any op of the round runs, the synced content of the
    /// local files the ops replace or trash (`planned_sha`).
    fn note_planned_content(&self, ops: &[Op]) {
        let (Ok(db), Ok(mut planned)) = (self.db.lock(), self.planned_sha.lock()) else {
            return;
        };
        planned.clear();
        for op in ops {
            if let Op::Download {
                path,
                replaces: Some(_),
                ..
            }
            | Op::DeleteLocal { path, .. } = op
            {
                let sha = db
                    .get_synced(path)
                    .ok()
                    .flatten()
                    .and_then(|s| s.hashes.sha256);
                planned.insert(path.clone(), sha);
            }
        }
    }

    /// The synced content hash of `path` the plan relied on, for
    /// `same_if_racy`: as read before the round's first op, else now.
    fn synced_sha(&self, path: &RelPath) -> Option<Sha256> {
        if let Some(sha) = self.planned_sha.lock().ok()?.get(path) {
            return *sha;
        }
        let db = self.db.lock().ok()?;
        db.get_synced(path).ok().flatten()?.hashes.sha256
    }

    fn parent_id(&self, p: &RelPath) -> Result<Option<u64>, OpError> {
        let parent = p.parent().unwrap_or_default();
        self.dirs
            .lock()
            .ok()
            .and_then(|d| d.get(&parent).copied())
            .ok_or_else(|| changed(p, "its remote folder is not there"))
    }

    fn journal(&self, op: &Op, parent: Option<u64>) -> Result<i64, OpError> {
        self.journal_intent(&super::recover::Intent {
            op: op.clone(),
            parent,
            placed: None,
            discard: None,
            moved_from: None,
        })
    }

    fn journal_intent(&self, intent: &super::recover::Intent) -> Result<i64, OpError> {
        let json = serde_json::to_string(intent).map_err(|e| OpError::Io {
            path: self.root.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let now = self.now();
        let mut db = self.db.lock().map_err(|_| poisoned())?;
        Ok(db.journal_begin(&json, &now)?)
    }

    /// Records in the open intent the file an upload or copy made, as soon
    /// as its answer arrived: from here on recovery knows which file is
    /// ours. A failure is reported, not fatal (recovery then compares
    /// contents instead).
    fn journal_placed(&self, intent: i64, op: &Op, parent: Option<u64>, placed: FileId) {
        self.journal_made(intent, op, parent, Some(placed), None);
    }

    /// Records in the open intent the file an op made that must not stay
    /// (trashing it failed): recovery trashes it.
    fn journal_discard(&self, intent: i64, op: &Op, parent: Option<u64>, bad: FileId) {
        self.journal_made(intent, op, parent, None, Some(bad));
    }

    fn journal_made(
        &self,
        intent: i64,
        op: &Op,
        parent: Option<u64>,
        placed: Option<FileId>,
        discard: Option<FileId>,
    ) {
        let file = placed.or(discard).map_or(0, |f| f.0);
        let json = serde_json::to_string(&super::recover::Intent {
            op: op.clone(),
            parent,
            placed: placed.map(|f| f.0),
            discard: discard.map(|f| f.0),
            moved_from: None,
        });
        let now = self.now();
        let r = match (json, self.db.lock()) {
            (Ok(json), Ok(mut db)) => db
                .journal_update(intent, &json, &now)
                .map_err(|e| e.to_string()),
            (Err(e), _) => Err(e.to_string()),
            (_, Err(_)) => Err("state database lock poisoned".to_owned()),
        };
        if let Err(e) = r {
            tracing::warn!(file, error = %e, "could not record which file an upload made");
        }
    }

    /// Closes an intent whose op did nothing that needs recording.
    fn abandon(&self, intent: i64) {
        let now = self.now();
        let r = match self.db.lock() {
            Ok(mut db) => db.journal_abandon(intent, &now).map_err(|e| e.to_string()),
            Err(_) => Err("state database lock poisoned".to_owned()),
        };
        if let Err(e) = r {
            tracing::warn!(intent, error = %e, "could not close a journal entry; recovery looks at it again");
        }
    }

    /// Trashes a file this op made that must not stay (the local file
    /// changed while it was sent, a copy of the wrong content). Only when
    /// that worked is the intent closed; otherwise it stays open and
    /// recovery trashes the file (its id is in the intent).
    async fn trash_placed(&self, intent: i64, path: &RelPath, id: FileId) -> Result<(), OpError> {
        match self.client.file_delete(id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::warn!(%path, file = %id, error = %e, "could not trash an unfinished upload; the next round tries again");
                return Err(OpError::Api {
                    path: path.clone(),
                    source: e,
                });
            }
        }
        self.abandon(intent);
        Ok(())
    }

    /// A failed call after this op's file reached the host (its id is in
    /// the intent): the intent stays open, recovery settles it.
    fn fail_placed(&self, path: &RelPath, e: ApiError) -> OpError {
        OpError::Api {
            path: path.clone(),
            source: e,
        }
    }

    /// Gives a file this op just made (`id`, stored as `stored`) its place
    /// (see [`super::recover::claim_name`]): the exact name, or a
    /// conflicted-copy name when another version took the name meanwhile.
    /// Returns the name the file ends with.
    async fn give_name(
        &self,
        intent: i64,
        path: &RelPath,
        parent: Option<u64>,
        file: super::recover::Stored<'_>,
        replaces: Option<u64>,
    ) -> Result<String, OpError> {
        let id = file.id;
        let stamp = clock::conflict_stamp(self.clock.now());
        let named = super::recover::claim_name(self.client, parent, path, file, replaces, &stamp)
            .await
            .map_err(|e| self.fail_placed(path, e))?;
        match named {
            Named::Exact => Ok(path.name().to_owned()),
            Named::Conflict(name) => {
                let copy = path.parent().unwrap_or_default().join(&name);
                if let (Some(copy), Ok(mut db)) = (copy, self.db.lock())
                    && let Err(e) =
                        db.add_conflict(path, &copy, crate::state::Side::Local, &self.now())
                {
                    tracing::warn!(%path, error = %e, "could not record a conflict for `dcsync status`");
                }
                tracing::warn!(%path, copy = %name, "conflict: another version took this name on the host while ours was sent; kept both, ours as a conflicted copy");
                Ok(name)
            }
            Named::Refused(stored) => {
                // A name the host stores differently would come back as
                // another file next pass: the upload is undone.
                self.trash_placed(intent, path, id).await?;
                Err(OpError::Api {
                    path: path.clone(),
                    source: ApiError::Api {
                        endpoint: "file/edit",
                        message: format!(
                            "the host stores this name as {stored:?}; the file is left out"
                        ),
                    },
                })
            }
        }
    }

    /// Records Synced changes (and closes the journal intent, if any) in
    /// one transaction.
    fn commit(&self, intent: Option<i64>, changes: Vec<Change>) -> Result<(), OpError> {
        let now = self.now();
        let mut db = self.db.lock().map_err(|_| poisoned())?;
        match intent {
            Some(id) => db.journal_done(id, &changes, &now)?,
            None => db.apply(&changes)?,
        }
        Ok(())
    }

    /// A failed remote call: close the intent unless the host may have
    /// done it (then recovery looks at it before the next round). A call
    /// safe to repeat (`folder/delete`) whose retries ran out on lost
    /// answers may have been done as much as an unsafe one: a trash that
    /// went through unrecorded left the entry tracked, and when its local
    /// copy came back (a folder renamed away and back) the next pass took
    /// the host's trash for somebody else's delete and moved the only copy
    /// to the local trash (sim seed 115703).
    fn fail(&self, intent: i64, path: &RelPath, e: ApiError) -> OpError {
        if !matches!(e, ApiError::OutcomeUnknown { .. })
            && !e.may_have_been_applied()
            && let Ok(mut db) = self.db.lock()
            && let Err(se) = db.journal_abandon(intent, &clock::datetime(self.clock.now()))
        {
            tracing::warn!(error = %se, "could not close a journal entry");
        }
        OpError::Api {
            path: path.clone(),
            source: e,
        }
    }

    fn synced(&self, p: &RelPath) -> Result<Option<SyncedEntry>, OpError> {
        let db = self.db.lock().map_err(|_| poisoned())?;
        Ok(db.get_synced(p)?)
    }

    fn tmp_path(&self) -> PathBuf {
        let n: u64 = rand::random();
        self.root
            .join(MARKER)
            .join("tmp")
            .join(format!("{n:016x}.dcsync-part"))
    }

    /// Moves a local file or folder into `.dcsync/trash/<stamp>/<path>`
    /// (`<stamp>-N` when that is taken), never following a symlink and
    /// never replacing anything.
    fn to_trash(&self, p: &RelPath) -> Result<PathBuf, OpError> {
        let stamp = clock::compact_stamp(self.clock.now());
        super::trash::discard(self.root, p, &stamp).map_err(io(&self.abs(p)))
    }

    /// Renames the local entry at `p` to a free conflicted-copy name next to it.
    fn conflict_copy(&self, p: &RelPath) -> Result<RelPath, OpError> {
        let parent = p.parent().unwrap_or_default();
        let stamp = clock::conflict_stamp(self.clock.now());
        for n in 1..1000 {
            let Some(c) = parent.join(&conflict_name(p.name(), &stamp, n)) else {
                break;
            };
            if self.stat(&c)?.is_none() {
                match self.fs.rename(p, &c, false) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io(&self.abs(p))(e)),
                }
                let now = self.now();
                if let Ok(mut db) = self.db.lock()
                    && let Err(e) = db.add_conflict(p, &c, crate::state::Side::Local, &now)
                {
                    tracing::warn!(path = %p, error = %e, "could not record a conflict for `dcsync status`");
                }
                tracing::info!(path = %p, copy = %c, "conflict: kept the local version as a copy");
                return Ok(c);
            }
        }
        Err(changed(p, "no free conflicted-copy name"))
    }

    fn move_changes(
        &self,
        from: &RelPath,
        to: &RelPath,
        remote_parent: Option<u64>,
    ) -> Result<Vec<Change>, OpError> {
        let mut changes = vec![Change::MoveTree {
            from: from.clone(),
            to: to.clone(),
        }];
        if let Some(mut e) = self.synced(from)? {
            e.remote_parent = remote_parent;
            e.remote_name = to.name().to_owned();
            changes.push(Change::Put(to.clone(), e));
        }
        Ok(changes)
    }

    // ---------------------------------------------------------------- ops

    fn set_aside(&self, path: &RelPath, expect: &LocalMeta) -> Result<RelPath, OpError> {
        match self.stat(path)? {
            Some((_, m)) if m.ino == expect.ino => self.conflict_copy(path),
            _ => Err(changed(path, "the local entry is not what the plan saw")),
        }
    }

    /// Makes the remote folders of `creates` (`CreateRemoteDir` ops whose
    /// paths share one parent), telling `done` each one's result as it
    /// ends. `folder/create` does no uniqueness check, so each is looked
    /// for before (a folder of the name another device made since the
    /// pass's listing is taken as ours, not made twice) and settled after
    /// (`recover::keep_oldest_in`: of folders made in the same moment the
    /// oldest is the one). One listing of the parent serves a run of
    /// [`CREATE_RUN`] creates, and the listing that settles a run is the
    /// next run's look before: before, each create listed the parent twice,
    /// and 10,000 new folders in one folder listed it 20,000 times (half of
    /// a 1M-file first upload's time). Not in the account root, whose
    /// listing shows trashed folders too.
    async fn create_remote_dirs(
        &self,
        creates: &[&Op],
        done: &mut (dyn FnMut(&Op, Result<Done, OpError>) + Send),
    ) {
        let Some(first) = creates.first() else { return };
        let parent = match self.parent_id(first.path()) {
            Ok(p) => p,
            Err(_) => {
                for &op in creates {
                    done(
                        op,
                        Err(changed(op.path(), "its remote folder is not there")),
                    );
                }
                return;
            }
        };
        let list = || async move {
            match parent {
                Some(pid) => self
                    .client
                    .folder_listing(Some(FolderId(pid)))
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let mut look = list().await;
        for run in creates.chunks(CREATE_RUN) {
            let mut made = Vec::new();
            for &op in run {
                let Op::CreateRemoteDir { path, local } = op else {
                    continue;
                };
                let step = match &look {
                    Ok(listing) => {
                        self.make_remote_dir(op, path, local, parent, listing.as_ref())
                            .await
                    }
                    Err(e) => Err(OpError::Api {
                        path: path.clone(),
                        source: e.clone(),
                    }),
                };
                match step {
                    Ok(Making::Made(intent, created)) => made.push((op, intent, created)),
                    Ok(Making::Done(d)) => done(op, Ok(d)),
                    Err(e) => done(op, Err(e)),
                }
            }
            if made.is_empty() && look.is_ok() {
                continue;
            }
            // Settles this run; the next run's look before.
            look = list().await;
            for (op, intent, created) in made {
                let r = self
                    .settle_remote_dir(op, parent, intent, created, &look)
                    .await;
                done(op, r);
            }
        }
    }

    /// One folder of [`Self::create_remote_dirs`], up to its create: what
    /// the look before (`listing`, `None` in the account root) shows at its
    /// name decides whether it is made, taken as it is, or left to the
    /// next round.
    async fn make_remote_dir(
        &self,
        op: &Op,
        path: &RelPath,
        local: &LocalMeta,
        parent: Option<u64>,
        listing: Option<&crate::api::Listing>,
    ) -> Result<Making, OpError> {
        self.still(path, local, Kind::Dir)?;
        if let Some(listing) = listing {
            if listing.files.iter().any(|f| f.name == path.name()) {
                return Err(changed(path, "a file of this name appeared on the host"));
            }
            let same: Vec<u64> = listing
                .folders
                .iter()
                .filter(|f| f.name == path.name())
                .map(|f| f.id.0)
                .collect();
            match same.as_slice() {
                [] => {}
                [id] => {
                    return self
                        .adopt_remote_dir(path, local, *id, parent)
                        .map(Making::Done);
                }
                _ => {
                    return Err(changed(
                        path,
                        "several folders of this name are on the host",
                    ));
                }
            }
        }
        let intent = self.journal(op, parent)?;
        // A lost answer: a folder of this name that is none of the folders
        // this round knows (listed, or made by an earlier op) is ours.
        let known = |id: FolderId| {
            self.dirs
                .lock()
                .map(|d| d.values().any(|v| *v == Some(id.0)))
                .unwrap_or(true)
        };
        let made = create_folder(
            self.client,
            path.name(),
            parent.map(FolderId),
            &FolderOptions::default(),
            &known,
        )
        .await;
        let created = match made {
            Ok(Made::Created(f) | Made::Found(f)) => f,
            Ok(Made::NotMade(e)) => return Err(self.fail(intent, path, e)),
            // Not known whether it arrived (the look failed): the intent
            // stays open and recovery settles folders of this name.
            Err(e) => return Err(self.fail(intent, path, e)),
        };
        // A run killed before the settle leaves the id to recovery.
        self.journal_placed(intent, op, parent, FileId(created.id.0));
        Ok(Making::Made(intent, created))
    }

    /// One folder of [`Self::create_remote_dirs`] after its create, on the
    /// listing `after` taken since: folders of this name made in the call
    /// between our look and our create (or, with a lost answer, ours beside
    /// theirs) settle on the oldest (the lower id wins, so two dcsync
    /// instances racing keep the same one); then it is recorded.
    async fn settle_remote_dir(
        &self,
        op: &Op,
        parent: Option<u64>,
        intent: i64,
        created: RemoteFolder,
        after: &Result<Option<crate::api::Listing>, ApiError>,
    ) -> Result<Done, OpError> {
        let (path, local) = match op {
            Op::CreateRemoteDir { path, local } => (path, local),
            _ => return Err(changed(op.path(), "not a folder to make")),
        };
        let oldest = match after {
            Ok(Some(listing)) => super::recover::keep_oldest_in(self.client, path, listing).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e.clone()),
        };
        let created = match oldest {
            Ok(Some(oldest)) if oldest != created.id.0 => {
                tracing::info!(%path, "a remote folder of this name appeared as ours was made; syncing with it");
                RemoteFolder {
                    id: FolderId(oldest),
                    ..created
                }
            }
            Ok(_) => created,
            // Not looked at: the intent stays open and recovery looks next
            // round, before anything is planned into the folder.
            Err(e) => {
                let e = ApiError::OutcomeUnknown {
                    endpoint: "folder/create",
                    source: Box::new(e),
                };
                return Err(self.fail(intent, path, e));
            }
        };
        if let Ok(mut d) = self.dirs.lock() {
            d.insert(path.clone(), Some(created.id.0));
        }
        self.commit(
            Some(intent),
            vec![
                Change::Put(path.clone(), dir_entry(path, *local, created.id.0, parent)),
                Change::Made(Kind::Dir, created.id.0),
            ],
        )?;
        tracing::info!(%path, "created remote folder");
        Ok(Done {
            created_dirs: 1,
            ..Done::default()
        })
    }

    /// Takes a folder of `path`'s name that appeared on the host as the
    /// remote side of the local folder `path`.
    fn adopt_remote_dir(
        &self,
        path: &RelPath,
        local: &LocalMeta,
        id: u64,
        parent: Option<u64>,
    ) -> Result<Done, OpError> {
        if let Ok(mut d) = self.dirs.lock() {
            d.insert(path.clone(), Some(id));
        }
        self.commit(
            None,
            vec![Change::Put(
                path.clone(),
                dir_entry(path, *local, id, parent),
            )],
        )?;
        tracing::info!(%path, "a remote folder of this name appeared; syncing with it");
        Ok(Done::default())
    }

    /// Whether the remote folder `path` went into is still in the tree: a
    /// folder trashed on the host leaves its parent's listing (only the top
    /// of a trashed subtree does, so every folder on the way is looked at).
    /// One in the account root cannot be told from a live one: it counts as
    /// there.
    async fn still_attached(&self, path: &RelPath) -> Result<bool, ApiError> {
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| !d.is_root()) {
            let id = self
                .dirs
                .lock()
                .ok()
                .and_then(|m| m.get(&d).copied().flatten());
            let (Some(id), Ok(Some(parent))) = (id, self.parent_id(&d)) else {
                return Ok(true);
            };
            let listing = self.client.folder_listing(Some(FolderId(parent))).await?;
            if !listing.folders.iter().any(|f| f.id.0 == id) {
                return Ok(false);
            }
            dir = d.parent();
        }
        Ok(true)
    }

    /// The synced folder on the host (`None` when it is the account root).
    fn remote_root(&self) -> Option<FolderId> {
        self.dirs
            .lock()
            .ok()
            .and_then(|d| d.get(&RelPath::root()).copied().flatten())
            .map(FolderId)
    }

    /// Whether `name` in the remote folder `parent` is held by an entry
    /// other than ours (a fresh listing; see `recover::held_by_another`).
    async fn taken_on_host(
        &self,
        path: &RelPath,
        parent: Option<u64>,
        name: &str,
        kind: Kind,
        id: u64,
    ) -> Result<bool, OpError> {
        let listing = self
            .client
            .folder_listing(parent.map(FolderId))
            .await
            .map_err(|e| OpError::Api {
                path: path.clone(),
                source: e,
            })?;
        Ok(super::recover::held_by_another(
            &listing,
            parent.is_none(),
            name,
            kind,
            id,
        ))
    }

    fn create_local_dir(&self, path: &RelPath, remote_id: u64) -> Result<Done, OpError> {
        let abs = self.abs(path);
        match self.stat(path)? {
            None => self.fs.mkdir(path).map_err(io(&abs))?,
            Some((Kind::Dir, _)) => {}
            Some(_) => return Err(changed(path, "a file is in the way")),
        }
        let Some((_, meta)) = self.stat(path)? else {
            return Err(changed(path, "the new folder vanished"));
        };
        let parent = self.parent_id(path).unwrap_or(None);
        self.commit(
            None,
            vec![Change::Put(
                path.clone(),
                dir_entry(path, meta, remote_id, parent),
            )],
        )?;
        tracing::info!(%path, "created local folder");
        Ok(Done {
            created_dirs: 1,
            ..Done::default()
        })
    }

    async fn move_remote(
        &self,
        op: &Op,
        kind: Kind,
        id: u64,
        synced: &RelPath,
        from: &RelPath,
        to: &RelPath,
    ) -> Result<Done, OpError> {
        let new_parent = self.parent_id(to)?;
        let old_parent = self.parent_id(from).ok();
        let (moves, renames) = (old_parent != Some(new_parent), from.name() != to.name());
        // Still where the listing showed it? Another device may have moved
        // it since (a move of ours would then carry it, under whatever
        // name it has now, beside a namesake).
        let api = |e: ApiError| OpError::Api {
            path: from.clone(),
            source: e,
        };
        let (now_parent, old_name) = match kind {
            Kind::File => {
                let f = self.client.file_info(FileId(id)).await.map_err(api)?;
                if f.status != crate::api::FileStatus::Active {
                    return Err(changed(
                        from,
                        "it was trashed on the host since the listing",
                    ));
                }
                (f.folder_id.map(|p| p.0), f.name)
            }
            Kind::Dir => {
                let f = self.client.folder_info(FolderId(id)).await.map_err(api)?;
                (f.parent_id.map(|p| p.0), f.name)
            }
        };
        if old_parent.is_some_and(|p| p != now_parent) {
            return Err(changed(from, "it moved on the host since the listing"));
        }
        // `file/move`, `file/edit` and their folder twins do no uniqueness
        // check: an entry another device put at the destination since the
        // listing would end up beside a second one of the same name.
        if self
            .taken_on_host(to, new_parent, to.name(), kind, id)
            .await?
        {
            return Err(changed(
                to,
                "another entry of this name appeared on the host",
            ));
        }
        // Moved and renamed: the step in between should not make a pair
        // either, so rename first when the old name is taken over there
        // (and the new one is free where it is). When both are taken, the
        // pair lasts one call (move, then rename).
        let rename_first = moves
            && renames
            && self
                .taken_on_host(to, new_parent, from.name(), kind, id)
                .await?
            && match old_parent {
                Some(p) => !self.taken_on_host(from, p, to.name(), kind, id).await?,
                None => false,
            };
        // Where it was: recovery brings it back there when the folder it
        // went into turns out trashed (or moved out of the synced tree).
        let intent = self.journal_intent(&super::recover::Intent {
            op: op.clone(),
            parent: new_parent,
            placed: None,
            discard: None,
            moved_from: old_parent.map(|parent| super::recover::MovedFrom { parent }),
        })?;
        let rename = || async {
            match kind {
                Kind::File => drop(self.client.file_rename(FileId(id), to.name()).await?),
                Kind::Dir => drop(self.client.folder_rename(FolderId(id), to.name()).await?),
            }
            Ok::<(), ApiError>(())
        };
        let result = async {
            let to_parent = new_parent.map(FolderId);
            if rename_first {
                rename().await?;
            }
            if moves {
                match kind {
                    Kind::File => drop(self.client.file_move(FileId(id), to_parent).await?),
                    Kind::Dir => drop(self.client.folder_move(FolderId(id), to_parent).await?),
                }
            }
            if renames && !rename_first {
                rename().await?;
            }
            Ok::<(), ApiError>(())
        }
        .await;
        if let Err(e) = result {
            // A step may have gone through: never leave a pair of names.
            // A step may also have put it into a folder trashed meanwhile
            // (the host takes moves into trashed folders): back it goes.
            if !matches!(e, ApiError::OutcomeUnknown { .. }) {
                let stamp = clock::conflict_stamp(self.clock.now());
                let settled = async {
                    super::recover::settle_move(
                        self.client,
                        kind,
                        id,
                        new_parent,
                        to,
                        moves,
                        &stamp,
                    )
                    .await?;
                    if let (Some(back), Some(top)) = (old_parent, self.remote_root()) {
                        super::recover::move_back_if_detached(
                            self.client,
                            kind,
                            id,
                            from,
                            back,
                            top,
                            &stamp,
                        )
                        .await?;
                    }
                    Ok::<(), ApiError>(())
                };
                if let Err(se) = settled.await {
                    // Left as it may be (beside a namesake, in a trashed
                    // folder): the intent stays open, recovery settles it.
                    tracing::debug!(path = %to, error = %se, "a half-done move could not be looked at");
                    return Err(self.fail(
                        intent,
                        to,
                        ApiError::OutcomeUnknown {
                            endpoint: "file/move",
                            source: Box::new(e),
                        },
                    ));
                }
            }
            return Err(self.fail(intent, to, e));
        }
        // The folder it went into was trashed on the host meanwhile (the
        // host still takes moves into it): bring the entry back, with what
        // it holds that was never synced, and let the next round look again.
        // From here the move went through: a check that cannot run leaves
        // the intent open, so recovery settles the move next round.
        let unsettled = |e: ApiError| ApiError::OutcomeUnknown {
            endpoint: "file/move",
            source: Box::new(e),
        };
        let attached = if moves {
            match self.still_attached(to).await {
                Ok(a) => a,
                Err(e) => return Err(self.fail(intent, to, unsettled(e))),
            }
        } else {
            true
        };
        if !attached {
            let stamp = clock::conflict_stamp(self.clock.now());
            let back = old_parent.flatten();
            let top = self.remote_root();
            let undone =
                super::recover::bring_home(self.client, kind, id, from, back, top, &stamp).await;
            // Not brought back (the call failed): the intent stays open and
            // recovery brings it back next round; closed, the entry would
            // stay in the trashed folder for good (sim seed 103801).
            if let Err(e) = undone {
                return Err(self.fail(intent, to, unsettled(e)));
            }
            self.commit(Some(intent), vec![])?;
            return Err(changed(
                to,
                "its new remote folder was trashed meanwhile; moved back",
            ));
        }
        // Another entry took the name in the call between our look and our
        // move: ours steps aside (the next round follows locally). Or
        // another device moved ours elsewhere in the call between our look
        // and our rename: `file/edit` renames in place, so the new name
        // went wherever it is now, maybe beside a namesake (sim seed
        // 104654): the rename is undone there, and the next pass follows
        // the other device's move.
        let stamp = clock::conflict_stamp(self.clock.now());
        let settled = super::recover::settle_renamed(
            self.client,
            kind,
            id,
            new_parent,
            to,
            &old_name,
            &stamp,
        )
        .await;
        let aside = match settled {
            Ok(super::recover::Renamed::Here(a)) => a,
            Ok(super::recover::Renamed::Elsewhere) => {
                self.commit(Some(intent), vec![])?;
                return Err(changed(
                    from,
                    "another device moved it on the host during the rename; the rename was undone there",
                ));
            }
            Err(e) => return Err(self.fail(intent, to, unsettled(e))),
        };
        if kind == Kind::Dir
            && let Ok(mut d) = self.dirs.lock()
        {
            let moved: Vec<(RelPath, Option<u64>)> = d
                .iter()
                .filter(|(k, _)| k.starts_with(from))
                .filter_map(|(k, v)| Some((k.rebase(from, to)?, *v)))
                .collect();
            d.retain(|k, _| !k.starts_with(from));
            d.extend(moved);
        }
        let mut changes = self.move_changes(synced, to, new_parent)?;
        if let Some(name) = aside {
            for c in changes.iter_mut() {
                if let Change::Put(p, e) = c
                    && p == to
                {
                    e.remote_name = name.clone();
                }
            }
        }
        // Until a listing shows it there, its folder may have been trashed
        // before it arrived (see `engine::forget_unlisted`).
        changes.push(Change::Made(kind, id));
        self.commit(Some(intent), changes)?;
        tracing::info!(from = %from, to = %to, "moved on the host");
        Ok(Done {
            moved: 1,
            ..Done::default()
        })
    }

    fn move_local(
        &self,
        from: &RelPath,
        to: &RelPath,
        expect: &LocalMeta,
        remote_parent: Option<u64>,
    ) -> Result<Done, OpError> {
        match self.stat(from)? {
            Some((_, m)) if m.ino == expect.ino => {}
            _ => return Err(changed(from, "the local entry is not what the plan saw")),
        }
        if self.stat(to)?.is_some() {
            return Err(changed(to, "something is in the way"));
        }
        self.fs
            .rename(from, to, false)
            .map_err(io(&self.abs(from)))?;
        let changes = self.move_changes(from, to, remote_parent)?;
        self.commit(None, changes)?;
        tracing::info!(from = %from, to = %to, "moved locally");
        Ok(Done {
            moved: 1,
            ..Done::default()
        })
    }

    async fn upload(
        &self,
        op: &Op,
        path: &RelPath,
        local: &LocalEntry,
        replaces: Option<u64>,
    ) -> Result<Done, OpError> {
        self.still(path, &local.meta, Kind::File)?;
        self.check_quota(path, local.meta.size)?;
        let parent = self.parent_id(path)?;
        let abs = self.abs(path);
        let intent = self.journal(op, parent)?;
        let up = match self
            .client
            .upload_file(
                &abs,
                path.name(),
                parent.map(FolderId),
                self.progress(path, local.meta.size),
            )
            .await
        {
            Ok(u) => u,
            Err(ApiError::LeftOnHost {
                what,
                detail,
                id,
                cause,
            }) => {
                // The intent stays open with the file's id: recovery
                // trashes it.
                self.journal_discard(intent, op, parent, id);
                return Err(self.fail_placed(
                    path,
                    ApiError::LeftOnHost {
                        what,
                        detail,
                        id,
                        cause,
                    },
                ));
            }
            Err(e) => {
                self.note_quota(&e);
                return Err(self.fail(intent, path, e));
            }
        };
        self.reporter.bytes(up.size);
        // Changed while it was read? Then what arrived is not what the
        // scan hashed: remove it and let the next round upload again.
        let unchanged = self.still(path, &local.meta, Kind::File).is_ok();
        // The file's id goes into the intent (fsynced) only when more host
        // calls follow: a run killed during them then knows the file by id.
        // Stored under its name with nothing to replace, it is recorded
        // right away, and a run killed before that finds it by name and
        // content, as when killed during the upload (one fsync less per
        // file of an initial upload).
        if !unchanged || up.name != path.name() || replaces.is_some() {
            self.journal_placed(intent, op, parent, up.id);
        }
        if !unchanged {
            self.trash_placed(intent, path, up.id).await?;
            return Err(changed(path, "it changed while it was uploaded"));
        }
        let name = self
            .give_name(
                intent,
                path,
                parent,
                super::recover::Stored {
                    id: up.id,
                    name: &up.name,
                    unique: true,
                },
                replaces,
            )
            .await?;
        let conflict = name != path.name();
        let entry = SyncedEntry {
            kind: Kind::File,
            local: self.settle(local.meta),
            hashes: Hashes {
                sha256: local.hashes.sha256,
                // Empty or malformed (no hash from the host): not known.
                md5: crate::model::Md5::from_hex(&up.md5),
            },
            remote_id: up.id.0,
            remote_parent: parent,
            remote_name: name,
            size: up.size,
        };
        self.commit(
            Some(intent),
            vec![
                Change::Put(path.clone(), entry),
                Change::Made(Kind::File, up.id.0),
            ],
        )?;
        tracing::info!(%path, bytes = up.size, "uploaded");
        Ok(Done {
            uploaded: 1,
            bytes_up: up.size,
            conflicts: u64::from(conflict),
            ..Done::default()
        })
    }

    fn check_quota(&self, path: &RelPath, size: u64) -> Result<(), OpError> {
        self.quota.take(size).map_err(|why| OpError::Held {
            path: path.clone(),
            why,
        })
    }

    /// Remembers a refusal for lack of storage, so later uploads of this
    /// pass are not even tried.
    fn note_quota(&self, e: &ApiError) {
        if let ApiError::Api { message, .. } = e
            && message.to_ascii_lowercase().contains("storage")
        {
            self.quota.refused();
        }
    }

    /// Backup mode: renames the never-synced remote file `id` at `path` to
    /// a free conflicted-copy name in its folder, so the local version can
    /// take the name. Only if `id` still holds the name (else: changed).
    async fn set_aside_remote(&self, op: &Op, path: &RelPath, id: u64) -> Result<Done, OpError> {
        let parent = self.parent_id(path)?;
        let listing = self
            .client
            .folder_listing(parent.map(FolderId))
            .await
            .map_err(|e| OpError::Api {
                path: path.clone(),
                source: e,
            })?;
        if !listing
            .files
            .iter()
            .any(|f| f.id.0 == id && f.name == path.name())
        {
            return Err(changed(path, "the host's file is not what the plan saw"));
        }
        let stamp = clock::conflict_stamp(self.clock.now());
        let name = super::recover::free_conflict_name(&listing, path.name(), &stamp)
            .ok_or_else(|| changed(path, "no free conflicted-copy name on the host"))?;
        let intent = self.journal(op, parent)?;
        let f = match self.client.file_rename(FileId(id), &name).await {
            Ok(f) => f,
            Err(e) => return Err(self.fail(intent, path, e)),
        };
        self.commit(Some(intent), vec![])?;
        let copy = path.parent().unwrap_or_default().join(&f.name);
        if let (Some(copy), Ok(mut db)) = (copy, self.db.lock())
            && let Err(e) = db.add_conflict(path, &copy, crate::state::Side::Remote, &self.now())
        {
            tracing::warn!(%path, error = %e, "could not record a conflict for `dcsync status`");
        }
        tracing::warn!(%path, copy = %f.name, "conflict: the host had another version; kept it there as a conflicted copy, the local version takes the name");
        Ok(Done {
            conflicts: 1,
            ..Done::default()
        })
    }

    async fn remote_copy(
        &self,
        op: &Op,
        path: &RelPath,
        local: &LocalEntry,
        source: u64,
        source_hashes: &Hashes,
        replaces: Option<u64>,
    ) -> Result<Done, OpError> {
        self.still(path, &local.meta, Kind::File)?;
        self.check_quota(path, local.meta.size)?;
        let parent = self.parent_id(path)?;
        let intent = self.journal(op, parent)?;
        let copy = match self
            .client
            .file_copy(FileId(source), parent.map(FolderId))
            .await
        {
            Ok(c) => c.copy,
            Err(e) => {
                self.note_quota(&e);
                return Err(self.fail(intent, path, e));
            }
        };
        self.journal_placed(intent, op, parent, copy.id);
        if copy.size != local.meta.size {
            self.trash_placed(intent, path, copy.id).await?;
            return Err(changed(path, "the copy source is not the same content"));
        }
        let name = self
            .give_name(
                intent,
                path,
                parent,
                super::recover::Stored {
                    id: copy.id,
                    name: &copy.name,
                    unique: false,
                },
                replaces,
            )
            .await?;
        let conflict = name != path.name();
        let entry = SyncedEntry {
            kind: Kind::File,
            local: self.settle(local.meta),
            hashes: Hashes {
                sha256: local.hashes.sha256,
                md5: source_hashes.md5,
            },
            remote_id: copy.id.0,
            remote_parent: parent,
            remote_name: name,
            size: copy.size,
        };
        self.commit(
            Some(intent),
            vec![
                Change::Put(path.clone(), entry),
                Change::Made(Kind::File, copy.id.0),
            ],
        )?;
        tracing::info!(%path, source, "copied on the host instead of uploading");
        Ok(Done {
            copied: 1,
            conflicts: u64::from(conflict),
            ..Done::default()
        })
    }

    /// Downloads `remote` into a temp file; returns it with its hashes.
    async fn fetch(
        &self,
        path: &RelPath,
        remote: &RemoteEntry,
    ) -> Result<(PathBuf, Hashes), OpError> {
        let tmp = self.tmp_path();
        let expected = Expected {
            size: Some(remote.size),
            md5: None,
        };
        let got = match self
            .client
            .download_file(
                FileId(remote.id),
                &tmp,
                &expected,
                self.progress(path, remote.size),
            )
            .await
        {
            Ok(g) => g,
            Err(e) => {
                discard_tmp(&tmp);
                return Err(OpError::Api {
                    path: path.clone(),
                    source: e,
                });
            }
        };
        self.reporter.bytes(got.size);
        let tmp2 = tmp.clone();
        let sha = tokio::task::spawn_blocking(move || crate::scan::sha256_file(&tmp2))
            .await
            .map_err(|e| OpError::Io {
                path: tmp.clone(),
                source: std::io::Error::other(e.to_string()),
            })
            .and_then(|r| r.map_err(io(&tmp)));
        let sha = match sha {
            Ok(s) => s.0,
            Err(e) => {
                discard_tmp(&tmp);
                return Err(e);
            }
        };
        Ok((
            tmp,
            Hashes {
                sha256: Some(sha),
                md5: crate::model::Md5::from_hex(&got.md5),
            },
        ))
    }

    /// Sets a fetched temp file's permissions for its place at `path`: those
    /// of the regular file there now (a replaced `secret.env` stays 0600),
    /// else what a new file gets under this process's umask.
    fn give_mode(&self, tmp: &Path, path: &RelPath) -> Result<(), OpError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::symlink_metadata(self.abs(path)) {
            Ok(m) if m.is_file() => m.permissions().mode() & 0o7777,
            _ => super::fsat::new_file_mode(),
        };
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode)).map_err(io(tmp))
    }

    /// Renames a fetched temp file to `path` and records it.
    fn place(
        &self,
        path: &RelPath,
        tmp: &Path,
        hashes: Hashes,
        remote: &RemoteEntry,
    ) -> Result<(), OpError> {
        let dest = self.abs(path);
        let tmp_rel = tmp
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| RelPath::new(&format!("{MARKER}/tmp/{n}")))
            .ok_or_else(|| changed(path, "the temp file has no usable name"))?;
        self.fs.rename(&tmp_rel, path, false).map_err(io(&dest))?;
        let Some((_, meta)) = self.stat(path)? else {
            return Err(changed(path, "the downloaded file vanished"));
        };
        let entry = SyncedEntry {
            kind: Kind::File,
            local: meta.settled(clock::unix_nanos(self.clock.now())),
            hashes,
            remote_id: remote.id,
            remote_parent: remote.parent,
            remote_name: path.name().to_owned(),
            size: remote.size,
        };
        self.commit(None, vec![Change::Put(path.clone(), entry)])
    }

    async fn download(
        &self,
        path: &RelPath,
        remote: &RemoteEntry,
        replaces: Option<&LocalMeta>,
    ) -> Result<Done, OpError> {
        let parent = path.parent().unwrap_or_default();
        if !matches!(self.stat(&parent)?, Some((Kind::Dir, _))) {
            return Err(changed(path, "its local folder is not there"));
        }
        let (tmp, hashes) = self.fetch(path, remote).await?;
        let placed = self.put_in_place(path, replaces, &tmp, hashes, remote);
        if placed.is_err() {
            discard_tmp(&tmp);
        }
        let target_ok = placed?;
        tracing::info!(%path, bytes = remote.size, "downloaded");
        Ok(Done {
            downloaded: 1,
            bytes_down: remote.size,
            conflicts: u64::from(!target_ok),
            ..Done::default()
        })
    }

    /// The second half of a download: keeps what is at `path` now if it is
    /// not what the plan saw, then renames the temp file into place.
    /// Returns whether the target was as planned.
    fn put_in_place(
        &self,
        path: &RelPath,
        replaces: Option<&LocalMeta>,
        tmp: &Path,
        hashes: Hashes,
        remote: &RemoteEntry,
    ) -> Result<bool, OpError> {
        // The new version keeps the permissions of the file it replaces.
        self.give_mode(tmp, path)?;
        // The target must still be what the plan saw; else keep both.
        let target_ok = match (replaces, self.stat(path)?) {
            (None, None) => true,
            (Some(e), Some((Kind::File, m))) => {
                m.ino == e.ino
                    && m.size == e.size
                    && m.mtime_ns == e.mtime_ns
                    && self.same_if_racy(path, &m, self.synced_sha(path))
            }
            _ => false,
        };
        if !target_ok {
            if self.stat(path)?.is_some() {
                self.conflict_copy(path)?;
            }
        } else if replaces.is_some() {
            self.to_trash(path)?;
        }
        self.place(path, tmp, hashes, remote)?;
        Ok(target_ok)
    }

    async fn reconcile(
        &self,
        path: &RelPath,
        local: &LocalEntry,
        remote: &RemoteEntry,
    ) -> Result<Done, OpError> {
        self.still(path, &local.meta, Kind::File)?;
        let (tmp, hashes) = self.fetch(path, remote).await?;
        let local_sha = match local.hashes.sha256 {
            Some(s) => s,
            None => {
                crate::scan::sha256_file(&self.abs(path))
                    .map_err(io(&self.abs(path)))?
                    .0
            }
        };
        if hashes.sha256 == Some(local_sha) {
            // Same content on both sides: just record it.
            discard_tmp(&tmp);
            self.still(path, &local.meta, Kind::File)?;
            let entry = SyncedEntry {
                kind: Kind::File,
                local: self.settle(local.meta),
                hashes,
                remote_id: remote.id,
                remote_parent: remote.parent,
                remote_name: path.name().to_owned(),
                size: remote.size,
            };
            self.commit(None, vec![Change::Put(path.clone(), entry)])?;
            tracing::info!(%path, "same content on both sides; recorded");
            return Ok(Done::default());
        }
        // Different: keep both. The local version becomes the conflicted
        // copy (uploaded next round); the remote version takes the name.
        let kept = self
            .still(path, &local.meta, Kind::File)
            .and_then(|()| self.give_mode(&tmp, path))
            .and_then(|()| self.conflict_copy(path))
            .and_then(|_| self.place(path, &tmp, hashes, remote));
        if kept.is_err() {
            discard_tmp(&tmp);
        }
        kept?;
        Ok(Done {
            downloaded: 1,
            bytes_down: remote.size,
            conflicts: 1,
            ..Done::default()
        })
    }

    async fn delete_remote(
        &self,
        op: &Op,
        kind: Kind,
        path: &RelPath,
        id: u64,
    ) -> Result<Done, OpError> {
        // The plan saw the synced entry gone locally. Back again (its
        // folder renamed away and back since the scan), it must not be
        // trashed on the host: the next pass would take that for a delete
        // there and move the only copy to the local trash (sim seed 104000,
        // daemon seed 12).
        if let (Some((k, now)), Some(s)) = (self.stat(path)?, self.synced(path)?)
            && k == kind
            && now.ino == s.local.ino
        {
            return Err(changed(path, "the synced entry is back in its place"));
        }
        if kind == Kind::Dir {
            self.remote_dir_holds_only_synced(path, id).await?;
        }
        let intent = self.journal(op, None)?;
        let r = match kind {
            Kind::File => self.client.file_delete(FileId(id)).await,
            Kind::Dir => self.client.folder_delete(FolderId(id)).await,
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(self.fail(intent, path, e)),
        }
        self.commit(Some(intent), vec![Change::RemoveTree(path.clone())])?;
        if kind == Kind::Dir {
            // The host lists trashed folders in the account root: remember
            // this one so it is not taken for a new folder there.
            let mut db = self.db.lock().map_err(|_| poisoned())?;
            super::remember_trashed_folder(&mut db, id)?;
        }
        tracing::info!(%path, "moved to the host's trash");
        Ok(Done {
            deleted_remote: 1,
            ..Done::default()
        })
    }

    /// A remote folder is trashed whole only when a fresh listing of it
    /// holds nothing but Synced entries (by id): anything else (another
    /// device's upload since the plan, an ignored or skipped entry) makes
    /// the op a precondition failure, and the next round plans the folder's
    /// content one by one.
    async fn remote_dir_holds_only_synced(&self, path: &RelPath, id: u64) -> Result<(), OpError> {
        let listed = crate::snapshot::snapshot_from(
            self.client,
            Some(FolderId(id)),
            path.clone(),
            LISTING_CONCURRENCY,
        )
        .await;
        if !listed.view.unknown.is_empty() || !listed.skipped.is_empty() {
            return Err(changed(
                path,
                "the remote folder could not be listed completely just before trashing it",
            ));
        }
        let synced = self.synced_below(path)?;
        let ids: std::collections::HashSet<(Kind, u64)> =
            synced.values().map(|e| (e.kind, e.remote_id)).collect();
        let extra = crate::model::below(&listed.view.entries, path)
            .find(|(_, e)| !ids.contains(&(e.kind, e.id)));
        if let Some((p, _)) = extra {
            tracing::info!(folder = %path, entry = %p, "not trashing the remote folder: it holds an entry that was never synced");
            return Err(changed(
                path,
                "the remote folder holds entries that were never synced",
            ));
        }
        Ok(())
    }

    /// The Synced entries strictly below `path`.
    fn synced_below(&self, path: &RelPath) -> Result<crate::model::Tree<SyncedEntry>, OpError> {
        let db = self.db.lock().map_err(|_| poisoned())?;
        let mut t = db.load_synced_scoped(&[crate::model::Scope {
            base: path.clone(),
            deep: true,
        }])?;
        t.retain(|k, _| k.is_below(path));
        Ok(t)
    }

    /// Deletes a local folder that the other side deleted: each Synced
    /// entry below it that is still exactly what was synced goes to the
    /// trash on its own, folders are removed only when that leaves them
    /// empty. Anything else (never synced, ignored, a symlink, a name that
    /// is not UTF-8, made or changed since the scan) stays where it is, and
    /// is reported; the next round sees it.
    fn delete_local_dir(&self, path: &RelPath, expect: &LocalMeta) -> Result<Done, OpError> {
        match self.stat(path)? {
            Some((Kind::Dir, m)) if m.ino == expect.ino => {}
            None => {
                self.commit(None, vec![Change::RemoveTree(path.clone())])?;
                return Ok(Done::default());
            }
            _ => return Err(changed(path, "the local entry is not what the plan saw")),
        }
        let synced = self.synced_below(path)?;
        let mut sweep = Sweep::default();
        let walked = self.sweep_dir(path, &synced, &mut sweep);
        let removed = walked.is_ok() && {
            match self.fs.rmdir(path) {
                Ok(()) => {
                    sweep.changes.push(Change::RemoveTree(path.clone()));
                    true
                }
                Err(_) => false,
            }
        };
        // What went to the trash is recorded even when the walk failed.
        self.commit(None, std::mem::take(&mut sweep.changes))?;
        walked?;
        if !removed && sweep.trashed == 0 {
            return Err(changed(
                path,
                "the folder holds only entries that were not synced; it stays",
            ));
        }
        if removed {
            tracing::info!(%path, files = sweep.trashed, "moved to the local trash");
        } else {
            let shown: Vec<&str> = sweep.kept.iter().take(5).map(String::as_str).collect();
            tracing::warn!(
                %path,
                trashed = sweep.trashed,
                kept = sweep.kept.len(),
                "the other side deleted this folder; kept what was not synced or changed since: {}{}",
                shown.join(", "),
                if sweep.kept.len() > shown.len() { ", ..." } else { "" }
            );
        }
        Ok(Done {
            deleted_local: u64::from(removed).max(u64::from(sweep.trashed > 0)),
            ..Done::default()
        })
    }

    /// One folder of [`Exec::delete_local_dir`], children first.
    fn sweep_dir(
        &self,
        dir: &RelPath,
        synced: &crate::model::Tree<SyncedEntry>,
        sweep: &mut Sweep,
    ) -> Result<(), OpError> {
        let abs = self.abs(dir);
        let entries = std::fs::read_dir(&abs).map_err(io(&abs))?;
        for e in entries {
            let e = e.map_err(io(&abs))?;
            let name = e.file_name();
            let Some(rel) = name.to_str().and_then(|n| dir.join(n)) else {
                sweep.kept.push(format!("{dir}/{}", name.to_string_lossy()));
                continue;
            };
            let ft = e.file_type().map_err(io(&e.path()))?;
            let s = synced.get(&rel);
            if ft.is_dir() && s.is_some_and(|s| s.kind == Kind::Dir) {
                self.sweep_dir(&rel, synced, sweep)?;
                if self.fs.rmdir(&rel).is_ok() {
                    sweep.changes.push(Change::RemoveTree(rel));
                }
                continue;
            }
            let unchanged = ft.is_file()
                && s.is_some_and(|s| {
                    s.kind == Kind::File
                        && self.stat(&rel).ok().flatten().is_some_and(|(k, m)| {
                            k == Kind::File && m.size == s.local.size && self.as_synced(&rel, &m, s)
                        })
                });
            if unchanged {
                self.to_trash(&rel)?;
                sweep.changes.push(Change::RemoveTree(rel));
                sweep.trashed += 1;
            } else {
                sweep.kept.push(rel.as_str().to_owned());
            }
        }
        Ok(())
    }

    /// Whether the file at `rel` (of identity `m`, same size) is the version
    /// Synced recorded: by the fast check (inode and mtime, with the content
    /// read when the mtime is within a tick of now), else by its content.
    /// A file recorded racily clean has no trustworthy mtime in Synced
    /// ([`LocalMeta::RACY_MTIME`]): only its content can tell, as in the
    /// planner.
    fn as_synced(&self, rel: &RelPath, m: &LocalMeta, s: &SyncedEntry) -> bool {
        if m.ino == s.local.ino && m.mtime_ns == s.local.mtime_ns {
            return self.same_if_racy(rel, m, s.hashes.sha256);
        }
        let Some(want) = s.hashes.sha256 else {
            return false;
        };
        crate::scan::sha256_file(&self.abs(rel)).is_ok_and(|(got, _)| got == want)
    }

    fn delete_local(&self, path: &RelPath, expect: &LocalMeta) -> Result<Done, OpError> {
        if matches!(self.stat(path)?, Some((Kind::Dir, _))) {
            return self.delete_local_dir(path, expect);
        }
        match self.stat(path)? {
            Some((Kind::File, m))
                if m.ino == expect.ino
                    && m.size == expect.size
                    && m.mtime_ns == expect.mtime_ns
                    && self.same_if_racy(path, &m, self.synced_sha(path)) => {}
            None => {
                // Already gone: nothing to keep.
                self.commit(None, vec![Change::RemoveTree(path.clone())])?;
                return Ok(Done::default());
            }
            _ => return Err(changed(path, "the local entry is not what the plan saw")),
        }
        let dest = self.to_trash(path)?;
        self.commit(None, vec![Change::RemoveTree(path.clone())])?;
        tracing::info!(%path, trash = %dest.display(), "moved to the local trash");
        Ok(Done {
            deleted_local: 1,
            ..Done::default()
        })
    }
}

/// Folder listings at once when a folder is checked before trashing it.
const LISTING_CONCURRENCY: usize = 4;

/// What [`Exec::delete_local_dir`] did so far.
#[derive(Default)]
struct Sweep {
    /// Synced changes for what left the disk.
    changes: Vec<Change>,
    /// Files moved to the trash.
    trashed: u64,
    /// Entries left in place (relative paths, lossy).
    kept: Vec<String>,
}

/// Removes a download's temp file that will not be placed (absent is fine).
fn discard_tmp(tmp: &Path) {
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %tmp.display(), error = %e, "could not remove a temp file; the next pass removes it")
        }
    }
}

/// Removes what earlier runs left in `.dcsync/tmp/` (killed downloads).
/// Only regular files and symlinks are removed (a symlink itself, never
/// what it points to); the caller holds the pair's lock, so no other
/// process of this pair is using them. Returns how many were removed.
pub(crate) fn clear_tmp(root: &Path) -> u64 {
    let dir = root.join(MARKER).join("tmp");
    if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| !t.is_dir()) {
            let p = e.path();
            match std::fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(err) => {
                    tracing::warn!(path = %p.display(), error = %err, "could not remove a leftover temp file")
                }
            }
        }
    }
    n
}

fn poisoned() -> OpError {
    OpError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other("state database lock poisoned"),
    }
}

fn dir_entry(path: &RelPath, local: LocalMeta, remote_id: u64, parent: Option<u64>) -> SyncedEntry {
    SyncedEntry {
        kind: Kind::Dir,
        local,
        hashes: Hashes::default(),
        remote_id,
        remote_parent: parent,
        remote_name: path.name().to_owned(),
        size: 0,
    }
}

pub(crate) fn meta_of(m: &std::fs::Metadata) -> LocalMeta {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        LocalMeta {
            dev: m.dev(),
            ino: m.ino(),
            size: if m.is_dir() { 0 } else { m.len() },
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        }
    }
    #[cfg(not(unix))]
    {
        LocalMeta {
            dev: 0,
            ino: 0,
            size: if m.is_dir() { 0 } else { m.len() },
            mtime_ns: m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_budget_and_refusal() {
        let q = Quota::default();
        assert!(q.take(10).is_ok(), "no budget known: try");
        q.set_room(100, Some(70));
        assert!(q.measured());
        assert!(q.take(20).is_ok());
        assert_eq!(q.take(20), Err(QUOTA_WOULD_EXCEED));
        assert_eq!(q.take(1), Err(QUOTA_FULL), "full for the rest of the pass");
        let q = Quota::default();
        q.refused();
        assert_eq!(q.take(1), Err(QUOTA_FULL));
    }
}
