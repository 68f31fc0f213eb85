//! The first sync of a big tree, in windows (#13): when Synced is empty and
//! the two sides hold more than a window's worth of entries, the pass does
//! not build all three trees at once (about 1.3 KB a file: 1.3 GB for the
//! initial upload of a million files). It first *surveys* both sides in
//! memory that follows the number of folders (a local walk that only counts,
//! and a listing of every remote folder that keeps the folders), then runs
//! one focused pass per *window* — a group of folders whose subtrees hold at
//! most [`WINDOW_ENTRIES`] entries together — and ends with an ordinary
//! pass (the quick check: in sync, or narrowed to what changed meanwhile).
//!
//! A folder too big for one window is split: first a window over its own
//! level (its files, and its subfolders made or recorded on the other side,
//! empty), then windows over its subfolders. Only creates and records are
//! planned at a split folder's level beyond file ops (`plan::focus::confine`
//! with `creates`): with Synced empty nothing can be deleted or moved, and a
//! folder made there is filled by the windows after it.
//!
//! Why this cannot lose anything: every window is a focused pass with its
//! safety checks (mass-delete guard, `engine::across` for what moved over
//! its edges, the executor's "what is at the path now" checks). A window
//! that does not end in sync — an error, something unseen or waiting, work
//! outside its folders, a folder not where the survey saw it — ends the
//! windows; the last pass then looks at everything (the quick check, which
//! gives way to a full pass as it always does). Never
//! used for a dry run, for the account root (its listing shows trashed
//! folders, which only a full pass tells apart), or once Synced holds
//! anything — unless a first sync's windows were interrupted ([`IN_PROGRESS`]
//! still set: killed, a safety stop, a window that gave way and a last pass
//! that did not end in sync). Then the next pass whose quick check does not
//! narrow it resumes in windows, over a partly recorded Synced: each window
//! is still a guarded focused pass (the mass-delete share is of everything
//! tracked, deletes add up over the guard's window), and the windows already
//! done plan nothing again.
//!
//! Owns the survey, the split into windows and their loop. Never plans or
//! acts itself: each window is an ordinary focused pass of the engine.

use super::unchanged;
use super::{EngineError, SyncReport};
use crate::api::FolderId;
use crate::api::host::Host;
use crate::model::{Kind, RelPath, RemoteView};
use crate::scan::{self, IgnoreRules};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

/// The meta key set (to when they started) while a first sync's windows
/// have not yet ended in sync: the next pass resumes in windows unless its
/// quick check finds little to do.
pub const IN_PROGRESS: &str = "first_sync_windows";

/// Entries (local and remote together) one window looks at: about 13 MB of
/// a pass's trees and plan (1.3 KB an entry, docs/BENCHMARKS.md).
pub const WINDOW_ENTRIES: usize = 10_000;

/// One focused pass of a windowed first sync: deep scopes at `paths`
/// (folders on both sides by then), one-level scopes at `folders` (a split
/// folder's own level; the synced folder itself is the root path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub paths: Vec<RelPath>,
    pub folders: Vec<RelPath>,
    /// Entries the survey counted in it.
    pub entries: u64,
}

/// What the survey found: the remote folders (a focused pass's cached
/// tree) and the windows to run.
#[derive(Debug, Clone)]
pub struct Planned {
    pub view: RemoteView,
    pub windows: Vec<Window>,
}

/// The windows for a tree whose folders hold `direct` entries each (a
/// folder's own entries, files and subfolders, both sides added up; every
/// folder a key, the synced folder as the root path), at most `limit` in
/// a window where the tree allows it (a folder's own level is one window
/// whatever its size). Empty when the whole tree fits in one window.
/// Parents' levels come before their subfolders' windows.
pub fn windows(direct: &BTreeMap<RelPath, u64>, limit: u64) -> Vec<Window> {
    // Subtree sizes, deepest first.
    let mut subtree: BTreeMap<&RelPath, u64> = direct.iter().map(|(p, n)| (p, *n)).collect();
    let mut by_depth: Vec<&RelPath> = direct.keys().collect();
    by_depth.sort_by_key(|p| std::cmp::Reverse(p.depth()));
    let mut children: BTreeMap<RelPath, Vec<&RelPath>> = BTreeMap::new();
    for p in by_depth {
        let Some(parent) = p.parent() else { continue };
        let n = subtree.get(p).copied().unwrap_or(0);
        if let Some(s) = subtree.get_mut(&parent) {
            *s += n;
        }
        children.entry(parent).or_default().push(p);
    }
    let root = RelPath::root();
    if subtree.get(&root).copied().unwrap_or(0) <= limit {
        return Vec::new();
    }
    let mut out = Vec::new();
    split(&root, &subtree, &children, direct, limit, &mut out);
    out
}

/// The windows of a folder too big for one: its own level, then its
/// subfolders (grouped while they fit, split when one alone is too big).
fn split(
    folder: &RelPath,
    subtree: &BTreeMap<&RelPath, u64>,
    children: &BTreeMap<RelPath, Vec<&RelPath>>,
    direct: &BTreeMap<RelPath, u64>,
    limit: u64,
    out: &mut Vec<Window>,
) {
    out.push(Window {
        paths: Vec::new(),
        folders: vec![folder.clone()],
        entries: direct.get(folder).copied().unwrap_or(0),
    });
    let mut group = Window::default();
    let mut kids: Vec<&RelPath> = children.get(folder).cloned().unwrap_or_default();
    kids.sort();
    for c in kids {
        let n = subtree.get(c).copied().unwrap_or(0);
        if n > limit {
            split(c, subtree, children, direct, limit, out);
            continue;
        }
        if group.entries + n > limit && !group.paths.is_empty() {
            out.push(std::mem::take(&mut group));
        }
        group.paths.push(c.clone());
        group.entries += n;
    }
    if !group.paths.is_empty() {
        out.push(group);
    }
}

/// Counts both sides' entries per folder, keeping the remote folders only;
/// `None` when the tree fits in one window or the survey cannot tell (a
/// folder not looked at, a listing that failed, two entries of one name,
/// a name that cannot be local): then the full pass runs as without
/// windows.
pub(super) async fn survey(
    client: &dyn Host,
    root: &Path,
    remote_root: FolderId,
    rules: &IgnoreRules,
    concurrency: usize,
    limit: usize,
) -> Result<Option<Planned>, EngineError> {
    let local = {
        let (root, rules) = (root.to_path_buf(), rules.clone());
        tokio::task::spawn_blocking(move || local_counts(&root, &rules))
    };
    let remote = unchanged::folders(client, remote_root, rules, concurrency).await;
    let local = local.await.map_err(|e| EngineError::Io {
        path: root.to_path_buf(),
        source: std::io::Error::other(format!("the local survey failed: {e}")),
    })??;
    let (Some(mut direct), Ok((view, remote))) = (local, remote) else {
        return Ok(None);
    };
    for (p, n) in remote {
        *direct.entry(p).or_insert(0) += n;
    }
    let windows = windows(&direct, limit as u64);
    tracing::debug!(
        folders = direct.len(),
        windows = windows.len(),
        "surveyed the first sync"
    );
    Ok((!windows.is_empty()).then_some(Planned { view, windows }))
}

/// Entries per local folder (every folder a key); `None` when something
/// could not be looked at.
fn local_counts(
    root: &Path,
    rules: &IgnoreRules,
) -> Result<Option<BTreeMap<RelPath, u64>>, EngineError> {
    let counts: Mutex<BTreeMap<RelPath, u64>> = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let sink = |l: scan::Listed<'_>| {
        let batch = std::mem::take(l.entries);
        let Ok(mut c) = counts.lock() else { return };
        for (p, e) in batch {
            if e.kind == Kind::Dir {
                c.entry(p.clone()).or_insert(0);
            }
            if let Some(parent) = p.parent() {
                *c.entry(parent).or_insert(0) += 1;
            }
        }
    };
    let walked = scan::scan_stream(root, rules, &stop, &sink)?;
    if !walked.unknown.is_empty() {
        return Ok(None);
    }
    let mut counts = counts.into_inner().unwrap_or_default();
    counts.entry(RelPath::root()).or_insert(0);
    Ok(Some(counts))
}

/// Runs the windows of `planned`, each a focused pass through `pass`, and
/// returns what they did together. Ends early (`Ok`) when a window does not
/// end in sync or the next one's folders are not where the cached tree
/// has them; the caller's last pass looks at everything then.
pub(super) async fn run<F, Fut>(planned: Planned, mut pass: F) -> Result<SyncReport, EngineError>
where
    F: FnMut(super::Focus) -> Fut,
    Fut: std::future::Future<Output = Result<SyncReport, EngineError>>,
{
    let mut cache = std::sync::Arc::new(planned.view);
    let mut done = SyncReport::default();
    let total = planned.windows.len();
    for (i, w) in planned.windows.into_iter().enumerate() {
        let is_folder =
            |p: &RelPath| p.is_root() || cache.entries.get(p).is_some_and(|e| e.kind == Kind::Dir);
        if let Some(p) = w.paths.iter().chain(&w.folders).find(|p| !is_folder(p)) {
            tracing::debug!(path = %p, "a window's folder is not on the host as expected; the last pass looks at everything");
            break;
        }
        tracing::debug!(
            window = i + 1,
            of = total,
            entries = w.entries,
            "first sync: next window"
        );
        let r = pass(super::Focus {
            remote: cache.clone(),
            paths: w.paths,
            folders: w.folders,
        })
        .await?;
        let next = r
            .remote_view
            .clone()
            .filter(|_| r.in_sync() && !r.needs_full_pass);
        let mut r = r;
        // What failed is tried again by the last pass, which reports it.
        r.errors.clear();
        r.windows = 1;
        done = r.after(done);
        match next {
            Some(v) => cache = v,
            None => {
                tracing::debug!(
                    window = i + 1,
                    "a window did not end in sync; the last pass looks at everything"
                );
                break;
            }
        }
    }
    done.remote_view = None;
    done.remote_listed = None;
    done.plan = None;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).expect("a test path")
    }

    fn tree(items: &[(&str, u64)]) -> BTreeMap<RelPath, u64> {
        items.iter().map(|(k, n)| (p(k), *n)).collect()
    }

    #[test]
    fn a_tree_that_fits_has_no_windows() {
        let t = tree(&[("", 2), ("a", 5), ("b", 3)]);
        assert_eq!(windows(&t, 10), Vec::new());
        // Over: the synced folder's level, then a and b together.
        assert_eq!(windows(&t, 9).len(), 2, "{:?}", windows(&t, 9));
    }

    #[test]
    fn folders_are_grouped_and_a_big_one_is_split_after_its_parent_level() {
        // root: 3 entries (a, b, c); a: 4; b: 2 (b/x, b/y) + b/x 6 + b/y 6; c: 5.
        let t = tree(&[
            ("", 3),
            ("a", 4),
            ("b", 2),
            ("b/x", 6),
            ("b/y", 6),
            ("c", 5),
        ]);
        let w = windows(&t, 10);
        let shape: Vec<(Vec<&str>, Vec<&str>)> = w
            .iter()
            .map(|w| {
                (
                    w.paths.iter().map(|p| p.as_str()).collect(),
                    w.folders.iter().map(|p| p.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (vec![], vec![""]),
                // b (14) is split where it comes: its level, then x and y
                // (6 + 6 > 10: two windows).
                (vec![], vec!["b"]),
                (vec!["b/x"], vec![]),
                (vec!["b/y"], vec![]),
                // a (4) and c (5) fit together.
                (vec!["a", "c"], vec![]),
            ]
        );
        // Every entry is in exactly one window.
        assert_eq!(w.iter().map(|w| w.entries).sum::<u64>(), 26);
        for w in &w {
            assert!(w.entries <= 10, "{w:?}");
        }
    }

    #[test]
    fn a_folder_bigger_than_a_window_is_one_window_of_its_own_level() {
        let t = tree(&[("", 1), ("big", 50)]);
        let w = windows(&t, 10);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[1].folders, vec![p("big")]);
        assert_eq!(w[1].entries, 50);
    }
}
