//! One round of a pass as values (after rustic_core's `prune_plan` ->
//! `PrunePlan` -> `prune`): the two views read for the round are adjusted
//! in one pure step ([`adjust_views`]), then [`PassPlan::new`] makes the
//! plan and what the round decides from it: the ops, what waits for a later
//! round, what could not be looked at, what was held back, and (through
//! [`PassPlan::guard`]) how many tracked files the ops delete and whether
//! the delete guard stops them. `dcsync sync --dry-run` prints this value;
//! a pass's "converged" and "in sync" are computed from it.
//!
//! Owns: the order of the view adjustments (ignored remote entries out,
//! names matched to the local spelling, entries the host cannot take held
//! back) and the round's verdicts. Must never touch the disk, the network,
//! the clock or the state DB: the engine reads what these give and passes
//! it in, so every function here is a function of its arguments.

use std::path::Path;

use crate::model::{LocalView, RelPath, RemoteView, Scope, SyncedEntry, Tree};
use crate::plan::{self, Op, PlanOptions};
use crate::scan::{self, IgnoreRules};
use crate::snapshot;

use super::{DeleteWindow, EngineConfig, EngineError};

/// What one round would do, and why it would not do more. See the module
/// docs.
#[derive(Debug, Clone, Default)]
pub struct PassPlan {
    /// The ops, in the order they run.
    pub ops: Vec<Op>,
    /// Paths left for a later round, with why.
    pub waiting: Vec<(RelPath, String)>,
    /// What could not be looked at (`local: path`, `remote: path`): failed
    /// listings, unreadable folders and files. Nothing there is deleted.
    pub unseen: Vec<String>,
    /// Paths held back or left out, with why (empty files, names the host
    /// would change, ignored entries on the host, symlinks, ...).
    pub skipped: Vec<(String, String)>,
    /// A focused round saw work outside its folders: a full pass does it.
    pub needs_full_pass: bool,
    /// Tracked files the ops delete, per side, with the recent window's
    /// (set by [`PassPlan::guard`]).
    pub deletes: Option<plan::DeleteCount>,
    /// The safety stop the ops would meet (set by [`PassPlan::guard`]).
    pub stop: Option<String>,
}

impl PassPlan {
    /// Plans a round from the adjusted views. `scopes` restricts a focused
    /// round (`creates`: its one-level scopes may make and record folders,
    /// a window of a first sync); `unseen` is what the scan and the listing
    /// could not look at (taken before entries were held back, which are
    /// `skipped` instead).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        local: &LocalView,
        remote: &RemoteView,
        synced: &Tree<SyncedEntry>,
        scopes: Option<&[Scope]>,
        opts: PlanOptions,
        unseen: Vec<String>,
        skipped: Vec<(String, String)>,
        creates: bool,
    ) -> PassPlan {
        let mut p = match scopes {
            Some(s) => plan::plan(
                local,
                &plan::focus::restrict_remote(remote, s),
                synced,
                opts,
            ),
            None => plan::plan(local, remote, synced, opts),
        };
        let waiting = p
            .deferred
            .iter()
            .map(|(path, why)| (path.clone(), (*why).to_owned()))
            .collect();
        // An op reaching outside what all three trees were just read for
        // means none of the plan runs here: a full pass does it.
        let needs_full_pass = scopes.is_some_and(|s| !plan::focus::confine(&mut p, s, creates));
        PassPlan {
            ops: p.ops,
            waiting,
            unseen,
            skipped,
            needs_full_pass,
            deletes: None,
            stop: None,
        }
    }

    /// Nothing to do: both sides agree with what was synced, as far as
    /// this round could see.
    pub fn converged(&self) -> bool {
        self.ops.is_empty()
    }

    /// Converged, and nothing out of sight or waiting.
    pub fn in_sync(&self) -> bool {
        self.converged() && self.unseen.is_empty() && self.waiting.is_empty()
    }

    /// The delete guard: counts the tracked files the ops delete (a
    /// folder counts its files; `tracked_files` overrides the total for a
    /// focused round, which read only part of Synced), adds the recent
    /// window's, and returns the stop the engine must make unless
    /// `allow_mass_delete`. Both are also kept in the value.
    pub(super) fn guard(
        &mut self,
        cfg: &EngineConfig,
        (synced, local, remote): (&Tree<SyncedEntry>, &LocalView, &RemoteView),
        tracked_files: Option<u64>,
        window: &DeleteWindow,
        allow_mass_delete: bool,
    ) -> (plan::DeleteCount, Result<(), EngineError>) {
        let deletes = delete_count(&self.ops, synced, local, remote, tracked_files);
        let with_window = window.with(deletes);
        self.deletes = Some(with_window);
        let mut verdict = if allow_mass_delete {
            Ok(())
        } else {
            check_mass_delete(cfg, with_window)
        };
        if let Err(EngineError::MassDelete { paths, .. }) = &mut verdict {
            *paths = self
                .ops
                .iter()
                .filter(|op| matches!(op, Op::DeleteLocal { .. } | Op::DeleteRemote { .. }))
                .take(super::MASS_DELETE_SHOWN)
                .map(|op| op.path().as_str().to_owned())
                .collect();
        }
        if let Err(e) = &verdict {
            self.stop = Some(e.to_string());
        }
        (deletes, verdict)
    }

    /// How many entries of `skipped` are remote entries the ignore rules
    /// leave out (listed by count only: there can be many).
    pub fn ignored_remote(&self) -> usize {
        self.skipped
            .iter()
            .filter(|(_, why)| why == IGNORED_REMOTE)
            .count()
    }
}

/// The plan as a person reads it: one op per line, then what waits, what
/// was not looked at, what was held back, and the deletes (the guard's
/// verdict, `stop`, is the caller's to report: it is an error).
impl std::fmt::Display for PassPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        for (p, why) in &self.waiting {
            writeln!(f, "waits for a later round: {p} ({why})")?;
        }
        for p in &self.unseen {
            writeln!(f, "not looked at (nothing there is deleted): {p}")?;
        }
        for (p, why) in self.skipped.iter().filter(|(_, w)| w != IGNORED_REMOTE) {
            writeln!(f, "skipped: {} ({why})", crate::model::printable(p))?;
        }
        let ignored = self.ignored_remote();
        if ignored > 0 {
            writeln!(f, "left alone on the host by the ignore rules: {ignored}")?;
        }
        if let Some(d) = self.deletes.filter(|d| d.local_files + d.remote_files > 0) {
            writeln!(
                f,
                "deletes (with the last hour's): {} files here, {} on the host, of {} tracked",
                d.local_files, d.remote_files, d.tracked_files
            )?;
        }
        Ok(())
    }
}

/// Adjusts the views read for a round, in this order: remote entries the
/// ignore rules match leave the remote view; remote names are matched to
/// the local spelling (Unicode form, case on a case-insensitive disk);
/// entries the host cannot take are held back as unknown (empty files,
/// files over the upload limit, names the host would change, paths too
/// long for this system). Everything held back is noted in `skipped`.
pub fn adjust_views(
    root: &Path,
    scanned: &mut scan::ScanOutcome,
    snap: &mut snapshot::SnapshotOutcome,
    rules: &IgnoreRules,
    case_insensitive: bool,
    upload_limit: Option<u64>,
) {
    leave_out_ignored_remote(snap, rules);
    match_local_names(snap, &scanned.view, case_insensitive);
    hold_back_empty_files(scanned);
    if let Some(limit) = upload_limit {
        hold_back_large_files(scanned, limit);
    }
    hold_back_unstorable_names(scanned);
    hold_back_too_long_paths(root, scanned, snap);
}

/// Why a remote entry is not synced when the ignore rules match it.
pub const IGNORED_REMOTE: &str = "matches the ignore rules; left alone on the host";

/// The ignore rules hold on the host's side too: a remote entry they match
/// (and everything below it) leaves the view, is recorded in
/// `view.ignored` (so nothing is downloaded over, moved or trashed there)
/// and is noted once for `dcsync status`.
pub(super) fn leave_out_ignored_remote(snap: &mut snapshot::SnapshotOutcome, rules: &IgnoreRules) {
    let view = &mut snap.view;
    let mut found: std::collections::BTreeSet<RelPath> = std::collections::BTreeSet::new();
    for (p, e) in &view.entries {
        if p.is_root()
            || crate::model::under_any(&view.ignored, p)
            || crate::model::under_any(&found, p)
        {
            continue;
        }
        // Parents were looked at first (path order), so the entry alone decides.
        if rules.ignores_entry(p, e.kind) {
            found.insert(p.clone());
        }
    }
    if found.is_empty() && view.ignored.is_empty() {
        return;
    }
    for f in &found {
        snap.skipped
            .push((f.as_str().to_owned(), IGNORED_REMOTE.to_owned()));
    }
    view.ignored.extend(found);
    let ignored = &view.ignored;
    view.entries
        .retain(|k, _| k.is_root() || !crate::model::under_any(ignored, k));
}

/// Remote names as the local side sees them: case twins apart on a disk
/// that ignores case, Unicode forms aligned with the local names.
fn match_local_names(
    snap: &mut snapshot::SnapshotOutcome,
    local: &crate::model::LocalView,
    case_insensitive: bool,
) {
    if case_insensitive {
        separate_case_twins(&mut snap.view, &mut snap.mapped);
    }
    align_unicode_forms(local, &mut snap.view, &mut snap.mapped, case_insensitive);
}

/// Files larger than the host accepts are left alone and reported.
fn hold_back_large_files(scanned: &mut scan::ScanOutcome, limit: u64) {
    let large: Vec<RelPath> = scanned
        .view
        .entries
        .iter()
        .filter(|(_, e)| e.kind == crate::model::Kind::File && e.meta.size > limit)
        .map(|(p, _)| p.clone())
        .collect();
    for p in large {
        scanned.view.entries.remove(&p);
        scanned.skipped.push((
            p.as_str().to_owned(),
            format!("larger than the account's upload limit of {limit} bytes"),
        ));
        scanned.view.unknown.push(p);
    }
}

/// A name in NFD on one side (macOS writes NFD) and NFC on the other is
/// the same file. A remote entry whose path is not on disk but matches a
/// local path under Unicode NFC normalization is given the local spelling,
/// so neither a duplicate nor a rename back and forth happens.
fn align_unicode_forms(
    local: &crate::model::LocalView,
    remote: &mut crate::model::RemoteView,
    notes: &mut Vec<(String, String)>,
    ignore_case: bool,
) {
    use unicode_normalization::{UnicodeNormalization, is_nfc};
    if !ignore_case
        && remote.entries.keys().all(|p| is_nfc(p.as_str()))
        && local.entries.keys().all(|p| is_nfc(p.as_str()))
    {
        return; // the common case: nothing to align
    }
    // On a case-insensitive disk, `A.txt` there is `a.txt` here too.
    let nfc = |p: &RelPath| -> String {
        let s: String = p.as_str().nfc().collect();
        if ignore_case { s.to_lowercase() } else { s }
    };
    let local_by_nfc: std::collections::HashMap<String, &RelPath> =
        local.entries.keys().map(|p| (nfc(p), p)).collect();
    // Walk in path order (parents first); a renamed folder takes its
    // whole subtree along.
    let old = std::mem::take(&mut remote.entries);
    let originals: std::collections::HashSet<RelPath> = old.keys().cloned().collect();
    let mut prefixes: Vec<(RelPath, RelPath)> = Vec::new();
    for (path, e) in old {
        let mut cur = path.clone();
        if let Some((from, to)) = prefixes.iter().rev().find(|(from, _)| path.is_below(from))
            && let Some(rebased) = path.rebase(from, to)
        {
            cur = rebased;
        }
        if !local.entries.contains_key(&cur)
            && let Some(l) = local_by_nfc.get(&nfc(&cur))
            && **l != cur
            && !remote.entries.contains_key(*l)
            && !originals.contains(*l)
        {
            notes.push((
                l.as_str().to_owned(),
                format!(
                    "the host spells this name {:?} (another Unicode form or case); synced as the same entry",
                    cur.name()
                ),
            ));
            if e.kind == crate::model::Kind::Dir {
                prefixes.push((path.clone(), (*l).clone()));
            }
            cur = (*l).clone();
        } else if cur != path && e.kind == crate::model::Kind::Dir {
            prefixes.push((path.clone(), cur.clone()));
        }
        remote.entries.insert(cur, e);
    }
}

/// On a case-insensitive disk, two remote entries of one folder whose
/// names differ only in case cannot both exist locally: the oldest keeps
/// its name, the others get `name (case conflict N).ext`.
fn separate_case_twins(remote: &mut crate::model::RemoteView, notes: &mut Vec<(String, String)>) {
    use std::collections::HashMap;
    // (parent folder, name folded to lower case) -> (id, path) of members
    type Twins = HashMap<(Option<RelPath>, String), Vec<(u64, RelPath)>>;
    let mut groups: Twins = HashMap::new();
    for (p, e) in &remote.entries {
        groups
            .entry((p.parent(), p.name().to_lowercase()))
            .or_default()
            .push((e.id, p.clone()));
    }
    let mut renames: Vec<(RelPath, RelPath)> = Vec::new();
    for (_, mut members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        members.sort();
        for (n, (_, p)) in members.into_iter().enumerate().skip(1) {
            let name = p.name();
            let (stem, ext) = match name.rfind('.') {
                Some(i) if i > 0 => (&name[..i], &name[i..]),
                _ => (name, ""),
            };
            let alias = if n == 1 {
                format!("{stem} (case conflict){ext}")
            } else {
                format!("{stem} (case conflict {n}){ext}")
            };
            if let Some(to) = p.parent().and_then(|pp| pp.join(&alias)) {
                renames.push((p, to));
            }
        }
    }
    renames.sort();
    for (from, to) in renames {
        let moved: Vec<RelPath> = remote
            .entries
            .keys()
            .filter(|k| k.starts_with(&from))
            .cloned()
            .collect();
        for k in moved {
            if let (Some(e), Some(nk)) = (remote.entries.remove(&k), k.rebase(&from, &to)) {
                remote.entries.insert(nk, e);
            }
        }
        notes.push((
            to.as_str().to_owned(),
            format!(
                "the local disk ignores case and {:?} differs from another name only in case; synced locally as {:?}",
                from.name(),
                to.name()
            ),
        ));
    }
}

/// The longest absolute path the system calls take (Linux `PATH_MAX`
/// counts the terminating NUL).
const MAX_ABS_PATH: usize = 4095;

/// Entries whose absolute local path would exceed the system's limit
/// cannot be read or written with ordinary calls: they are left alone on
/// both sides (as unknown, so nothing is deleted) and reported.
fn hold_back_too_long_paths(
    root: &Path,
    scanned: &mut scan::ScanOutcome,
    snap: &mut snapshot::SnapshotOutcome,
) {
    let base = root.as_os_str().len() + 1;
    let too_long = |p: &RelPath| base + p.as_str().len() > MAX_ABS_PATH;
    let why = || {
        format!(
            "the local path would be longer than the system's {} bytes; shorten a folder name",
            MAX_ABS_PATH + 1
        )
    };
    let local: Vec<RelPath> = scanned
        .view
        .entries
        .keys()
        .filter(|p| too_long(p))
        .cloned()
        .collect();
    let remote: Vec<RelPath> = snap
        .view
        .entries
        .keys()
        .filter(|p| too_long(p))
        .cloned()
        .collect();
    for p in local {
        if scanned.view.unknown.iter().any(|u| p.starts_with(u)) {
            continue;
        }
        scanned.view.entries.retain(|k, _| !k.starts_with(&p));
        scanned.skipped.push((p.as_str().to_owned(), why()));
        scanned.view.unknown.push(p);
    }
    for p in remote {
        if snap.view.unknown.iter().any(|u| p.starts_with(u)) {
            continue;
        }
        snap.view.entries.retain(|k, _| !k.starts_with(&p));
        snap.skipped.push((p.as_str().to_owned(), why()));
        snap.view.unknown.push(p);
    }
}

/// The host refuses zero-byte uploads. An empty local file is left where
/// it is, reported, and treated as unknown so that neither it nor the
/// remote version at its path is deleted; it syncs once it has content.
fn hold_back_empty_files(scanned: &mut scan::ScanOutcome) {
    let empty: Vec<RelPath> = scanned
        .view
        .entries
        .iter()
        .filter(|(_, e)| e.kind == crate::model::Kind::File && e.meta.size == 0)
        .map(|(p, _)| p.clone())
        .collect();
    for p in empty {
        scanned.view.entries.remove(&p);
        scanned.skipped.push((
            p.as_str().to_owned(),
            "the host cannot store empty files; it will sync once it has content".to_owned(),
        ));
        scanned.view.unknown.push(p);
    }
}

/// A local name the host would change (spaces trimmed, tags stripped, line
/// breaks, too long) would come back under another name and be synced
/// again and again. Such entries (and everything below a folder) are left
/// alone, reported once, and treated as unknown so nothing is deleted.
fn hold_back_unstorable_names(scanned: &mut scan::ScanOutcome) {
    let bad: Vec<(RelPath, &'static str)> = scanned
        .view
        .entries
        .keys()
        .filter_map(|p| crate::api::names::unstorable(p.name()).map(|why| (p.clone(), why)))
        .collect();
    for (p, why) in bad {
        if scanned.view.unknown.iter().any(|u| p.starts_with(u)) {
            continue; // below a folder already held back
        }
        scanned.view.entries.retain(|k, _| !k.starts_with(&p));
        scanned
            .skipped
            .push((p.as_str().to_owned(), why.to_owned()));
        scanned.view.unknown.push(p);
    }
}

/// Files a plan removes, per side: for each delete op the larger of the
/// tracked files below it (Synced) and the files the side's view holds
/// there, so content that was never synced counts too.
fn delete_count(
    ops: &[Op],
    synced: &crate::model::Tree<crate::model::SyncedEntry>,
    local: &crate::model::LocalView,
    remote: &crate::model::RemoteView,
    tracked_files: Option<u64>,
) -> plan::DeleteCount {
    use crate::model::Kind;
    fn files_at<E>(t: &crate::model::Tree<E>, p: &RelPath, kind: impl Fn(&E) -> Kind) -> u64 {
        std::iter::once(p)
            .filter_map(|p| t.get_key_value(p))
            .chain(crate::model::below(t, p))
            .filter(|(_, e)| kind(e) == Kind::File)
            .count() as u64
    }
    let mut c = plan::delete_count(ops, synced);
    let (mut l, mut r) = (0, 0);
    for op in ops {
        match op {
            Op::DeleteLocal { path, .. } => l += files_at(&local.entries, path, |e| e.kind),
            Op::DeleteRemote { path, .. } => r += files_at(&remote.entries, path, |e| e.kind),
            _ => {}
        }
    }
    c.local_files = c.local_files.max(l);
    c.remote_files = c.remote_files.max(r);
    if let Some(n) = tracked_files {
        c.tracked_files = n;
    }
    c
}

fn check_mass_delete(cfg: &EngineConfig, c: plan::DeleteCount) -> Result<(), EngineError> {
    for (count, side) in [(c.local_files, "locally"), (c.remote_files, "on the host")] {
        // The share applies from a handful of files on: deleting 3 of 4
        // files is ordinary work, deleting 300 of 400 is not.
        let too_many_share =
            count > 10 && count * 100 > c.tracked_files * u64::from(cfg.max_delete_percent);
        if count > cfg.max_delete_count || too_many_share {
            return Err(EngineError::MassDelete {
                count,
                tracked: c.tracked_files,
                side,
                percent: cfg.max_delete_percent,
                max: cfg.max_delete_count,
                paths: Vec::new(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hashes, Kind, LocalMeta};

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn synced_files(n: u64) -> Tree<SyncedEntry> {
        (0..n)
            .map(|i| {
                let e = SyncedEntry {
                    kind: Kind::File,
                    local: LocalMeta::default(),
                    hashes: Hashes::default(),
                    remote_id: i + 1,
                    remote_parent: None,
                    remote_name: format!("f{i}"),
                    size: 1,
                };
                (p(&format!("f{i}")), e)
            })
            .collect()
    }

    fn cfg(max_count: u64) -> EngineConfig {
        EngineConfig {
            local_root: "/nonexistent".into(),
            remote_path: "/".into(),
            db_path: "/nonexistent/db".into(),
            plan: PlanOptions::default(),
            transfers: 1,
            listing_concurrency: 1,
            max_delete_percent: 50,
            max_delete_count: max_count,
            trash: Default::default(),
        }
    }

    fn trash_remote(i: u64) -> Op {
        Op::DeleteRemote {
            kind: Kind::File,
            path: p(&format!("f{i}")),
            id: i + 1,
        }
    }

    #[test]
    fn nothing_to_do_is_converged_and_in_sync_only_when_all_was_seen() {
        let empty = PassPlan::new(
            &LocalView::default(),
            &RemoteView::default(),
            &Tree::new(),
            None,
            PlanOptions::default(),
            Vec::new(),
            Vec::new(),
            false,
        );
        assert!(empty.converged() && empty.in_sync(), "{empty:?}");
        let blind = PassPlan::new(
            &LocalView::default(),
            &RemoteView::default(),
            &Tree::new(),
            None,
            PlanOptions::default(),
            vec!["remote: d".into()],
            Vec::new(),
            false,
        );
        assert!(blind.converged() && !blind.in_sync(), "{blind:?}");
    }

    #[test]
    fn the_guard_counts_this_plan_with_the_window_and_keeps_its_verdict() {
        let synced = synced_files(4);
        let (local, remote) = (LocalView::default(), RemoteView::default());
        let mut pass = PassPlan {
            ops: vec![trash_remote(0), trash_remote(1)],
            ..PassPlan::default()
        };
        // Two deletes under a limit of 3: fine, and counted.
        let (d, verdict) = pass.guard(
            &cfg(3),
            (&synced, &local, &remote),
            None,
            &DeleteWindow::default(),
            false,
        );
        assert!(verdict.is_ok());
        assert_eq!((d.remote_files, d.tracked_files), (2, 4));
        assert_eq!(pass.deletes.map(|d| d.remote_files), Some(2));
        assert_eq!(pass.stop, None);
        // Two more in the last hour: over the limit; the value says so.
        let window = DeleteWindow {
            items: vec![(0, 0, 2)],
        };
        let (_, verdict) = pass.guard(&cfg(3), (&synced, &local, &remote), None, &window, false);
        assert!(
            matches!(verdict, Err(EngineError::MassDelete { count: 4, .. })),
            "{verdict:?}"
        );
        assert!(
            pass.stop.as_deref().is_some_and(|s| s.contains("4")),
            "{pass:?}"
        );
        assert_eq!(pass.deletes.map(|d| d.remote_files), Some(4));
        // Allowed: no stop.
        let mut pass = PassPlan {
            ops: vec![trash_remote(0), trash_remote(1)],
            ..PassPlan::default()
        };
        let (_, verdict) = pass.guard(&cfg(3), (&synced, &local, &remote), None, &window, true);
        assert!(verdict.is_ok() && pass.stop.is_none());
    }

    #[test]
    fn the_plan_reads_as_ops_then_what_waits_was_unseen_or_held_back() {
        let pass = PassPlan {
            ops: vec![trash_remote(0)],
            waiting: vec![(p("w.txt"), "its folder is not on the host yet".into())],
            unseen: vec!["remote: d".into()],
            skipped: vec![
                ("e.txt".into(), "empty".into()),
                ("x.log".into(), IGNORED_REMOTE.into()),
                ("y.log".into(), IGNORED_REMOTE.into()),
            ],
            deletes: Some(plan::DeleteCount {
                local_files: 0,
                remote_files: 1,
                tracked_files: 4,
            }),
            ..PassPlan::default()
        };
        let text = pass.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], trash_remote(0).to_string());
        assert_eq!(
            &lines[1..],
            [
                "waits for a later round: w.txt (its folder is not on the host yet)",
                "not looked at (nothing there is deleted): remote: d",
                "skipped: e.txt (empty)",
                "left alone on the host by the ignore rules: 2",
                "deletes (with the last hour's): 0 files here, 1 on the host, of 4 tracked",
            ]
        );
        assert_eq!(PassPlan::default().to_string(), "");
    }
}
