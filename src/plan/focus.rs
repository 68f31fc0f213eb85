//! What a focused pass may plan: the scopes around a set of changed paths,
//! the cut of the Remote tree the planner gets for them, and whether a plan
//! stays inside them.
//!
//! Pure, like the rest of the planner. The engine reads the same scopes
//! from the disk (`scan::scan_scoped`) and the state DB
//! (`StateDb::load_synced_scoped`), so that the three trees are cut alike.

use super::{Op, Plan};
use crate::model::*;

/// What a focused pass looks at: for each changed path, the subtree of the
/// nearest folder (itself or an ancestor) the cached tree has; for a path
/// directly in the synced folder, that folder's direct children. For each
/// of `folders` (remote folders whose listing changed, seen by the daemon's
/// polls), that folder's direct children. With the folder id to list again
/// (`root_id` for the synced folder itself: `None` is the account root).
/// `None` means a full pass is needed (the cache has unknown parts, or a
/// change sits where no scope covers it).
pub fn scopes_for(
    cached: &RemoteView,
    paths: &[RelPath],
    folders: &[RelPath],
    root_id: Option<u64>,
) -> Option<Vec<(Scope, Option<u64>)>> {
    if !cached.unknown.is_empty() || (paths.is_empty() && folders.is_empty()) {
        return None;
    }
    let mut deep: Vec<(RelPath, u64)> = Vec::new();
    let mut shallow_root = false;
    for p in paths {
        let mut cur = Some(p.clone());
        loop {
            let c = cur?;
            if c.is_root() {
                // Only a direct child of the synced folder is covered by
                // its one-level listing.
                if p.depth() != 1 {
                    return None;
                }
                shallow_root = true;
                break;
            }
            if let Some(e) = cached.entries.get(&c).filter(|e| e.kind == Kind::Dir) {
                deep.push((c, e.id));
                break;
            }
            cur = c.parent();
        }
    }
    let mut shallow: Vec<(RelPath, u64)> = Vec::new();
    for f in folders {
        if f.is_root() {
            shallow_root = true;
            continue;
        }
        // A folder the cache does not have: only a full pass knows where
        // it is.
        let e = cached.entries.get(f).filter(|e| e.kind == Kind::Dir)?;
        shallow.push((f.clone(), e.id));
    }
    deep.sort();
    deep.dedup();
    shallow.sort();
    shallow.dedup();
    // Keep only the outermost folders.
    let mut out: Vec<(Scope, Option<u64>)> = Vec::new();
    for (p, id) in deep {
        if !out.iter().any(|(o, _)| p.starts_with(&o.base)) {
            out.push((
                Scope {
                    base: p,
                    deep: true,
                },
                Some(id),
            ));
        }
    }
    // A folder's own level is inside any deep scope at it or above it.
    for (p, id) in shallow {
        if !out.iter().any(|(o, _)| o.deep && p.starts_with(&o.base)) {
            out.push((
                Scope {
                    base: p,
                    deep: false,
                },
                Some(id),
            ));
        }
    }
    if shallow_root {
        out.push((
            Scope {
                base: RelPath::root(),
                deep: false,
            },
            root_id,
        ));
    }
    (!out.is_empty()).then_some(out)
}

/// Whether every path an op touches lies inside a scope. In a one-level
/// scope only file ops count: a folder op there needs what lies below it.
/// With `creates`, making and recording a folder count too (a window of a
/// first sync: the folder is filled by later windows; nothing below it is
/// deleted or moved).
pub fn op_inside(op: &Op, scopes: &[Scope], creates: bool) -> bool {
    let file_op = match op {
        Op::Upload { .. } | Op::RemoteCopy { .. } | Op::Download { .. } | Op::Reconcile { .. } => {
            true
        }
        Op::MoveRemote { kind, .. }
        | Op::MoveLocal { kind, .. }
        | Op::DeleteRemote { kind, .. }
        | Op::DeleteLocal { kind, .. } => *kind == Kind::File,
        Op::CreateRemoteDir { .. } | Op::CreateLocalDir { .. } | Op::RecordDir { .. } => creates,
        _ => false,
    };
    let inside = |p: &RelPath| scopes.iter().any(|s| s.contains(p) && (s.deep || file_op));
    let mut paths = vec![op.path()];
    match op {
        Op::MoveRemote { from, synced, .. } => {
            paths.push(from);
            paths.push(synced);
        }
        Op::MoveLocal { from, .. } | Op::RecordMove { from, .. } => paths.push(from),
        _ => {}
    }
    paths.into_iter().all(inside)
}

/// The part of `view` that `scopes` look at, for the planner of a focused
/// pass: cut like the local side and Synced, with the unknown subtrees that
/// reach into it.
pub fn restrict_remote(view: &RemoteView, scopes: &[Scope]) -> RemoteView {
    RemoteView {
        entries: restrict(&view.entries, scopes),
        unknown: view
            .unknown
            .iter()
            .filter(|u| in_scopes(scopes, u) || scopes.iter().any(|s| s.base.starts_with(u)))
            .cloned()
            .collect(),
        ignored: view.ignored.clone(),
        holds_more: view.holds_more.clone(),
    }
}

/// Keeps `plan` only if every op stays inside `scopes` (`creates` as in
/// [`op_inside`]); otherwise empties
/// it and returns `false`. A plan is a whole (a folder's move and what
/// happens below it belong together), so a part of it is never run.
pub fn confine(plan: &mut Plan, scopes: &[Scope], creates: bool) -> bool {
    if plan.ops.iter().all(|op| op_inside(op, scopes, creates)) {
        return true;
    }
    plan.ops.clear();
    false
}
