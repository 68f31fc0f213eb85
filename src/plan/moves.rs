//! Where each Synced entry is now on each side, and the moves that follow.
//!
//! Identity is by path first: whatever of the same kind sits at a Synced
//! path *is* that entry (possibly changed: editors save by rename, a remote
//! edit is a new file id at the path). Only when the path is empty is the
//! entry looked for elsewhere, by inode locally and by id remotely. So a
//! swap of two names is two content changes, and a move is always a move
//! to a path Synced does not know.
//!
//! Conflicting moves resolve in favour of the local side; a remote move
//! into a folder the local side moved away is moved back. This keeps every
//! round valid and lets crossing moves terminate without loss.

use super::{Ctx, Fate, Op, local_changed};
use crate::model::*;
use std::collections::HashMap;

pub(crate) fn compute_fates(cx: &mut Ctx<'_>) {
    // Local entries that are not their path's Synced entry (the path is
    // new, or Synced has another kind there), by inode: move targets.
    let not_synced_here = |p: &RelPath, kind: Kind| cx.synced.get(p).is_none_or(|s| s.kind != kind);
    let mut by_ino: HashMap<(u64, u64), Vec<&RelPath>> = HashMap::new();
    for (p, l) in &cx.local.entries {
        if not_synced_here(p, l.kind) {
            by_ino.entry((l.meta.dev, l.meta.ino)).or_default().push(p);
        }
    }
    // How many Synced entries claim each inode (hard links, inode reuse).
    let mut claims: HashMap<(u64, u64), u32> = HashMap::new();
    for s in cx.synced.values() {
        *claims.entry((s.local.dev, s.local.ino)).or_default() += 1;
    }
    let mut by_id: HashMap<(Kind, u64), &RelPath> = HashMap::new();
    for (p, r) in &cx.remote.entries {
        by_id.insert((r.kind, r.id), p);
    }

    for (sp, s) in cx.synced {
        if sp.is_root() {
            continue;
        }
        let lf = if cx.local.is_unknown(sp) {
            Fate::Unknown
        } else if let Some(l) = cx.local.entries.get(sp).filter(|l| l.kind == s.kind) {
            Fate::Same {
                changed: local_changed(s, l),
            }
        } else {
            let key = (s.local.dev, s.local.ino);
            let found = by_ino
                .get(&key)
                .filter(|v| v.len() == 1 && claims.get(&key) == Some(&1))
                .map(|v| v[0])
                .filter(|p| cx.local.entries.get(*p).is_some_and(|l| l.kind == s.kind));
            match found {
                Some(to) => Fate::Moved {
                    to: to.clone(),
                    changed: cx
                        .local
                        .entries
                        .get(to)
                        .is_some_and(|l| local_changed(s, l)),
                },
                None => Fate::Deleted,
            }
        };
        let rf = if cx.remote.is_unknown(sp) {
            Fate::Unknown
        } else if let Some(r) = cx.remote.entries.get(sp).filter(|r| r.kind == s.kind) {
            Fate::Same {
                changed: r.id != s.remote_id,
            }
        } else {
            match by_id.get(&(s.kind, s.remote_id)) {
                Some(to) if not_synced_here(to, s.kind) && !cx.remote.is_unknown(to) => {
                    Fate::Moved {
                        to: (*to).clone(),
                        changed: false,
                    }
                }
                Some(_) => Fate::Deleted, // moved onto another Synced path: a swap
                None => Fate::Deleted,
            }
        };
        if let Fate::Moved { to, .. } = &lf {
            cx.local_move_targets.insert(to.clone());
        }
        if let Fate::Moved { to, .. } = &rf {
            cx.remote_move_targets.insert(to.clone());
        }
        cx.lfate.insert(sp, lf);
        cx.rfate.insert(sp, rf);
    }
}

pub(crate) fn plan_moves(cx: &mut Ctx<'_>) {
    let synced = cx.synced;
    for (sp, s) in synced {
        let lf = cx.lfate.get(sp).cloned();
        let rf = cx.rfate.get(sp).cloned();
        let (Some(lf), Some(rf)) = (lf, rf) else {
            continue;
        };
        let lmoved = matches!(lf, Fate::Moved { .. });
        let rmoved = matches!(rf, Fate::Moved { .. });
        if !lmoved && !rmoved {
            continue;
        }
        if cx.busy.iter().any(|b| sp.starts_with(b)) || cx.covered.iter().any(|c| sp.starts_with(c))
        {
            continue; // an ancestor's move carries it
        }
        let planned_before = cx.ops.len();
        let mut busy = vec![sp.clone()];
        if let Fate::Moved { to, .. } = &lf {
            busy.push(to.clone());
        }
        if let Fate::Moved { to, .. } = &rf {
            busy.push(to.clone());
        }
        match (&lf, &rf) {
            (Fate::Unknown, _) | (_, Fate::Unknown) => cx.defer(sp, "moved, other side unknown"),
            (Fate::Moved { to: lt, .. }, Fate::Moved { to: rt, .. }) if lt == rt => {
                cx.ops.push(Op::RecordMove {
                    from: sp.clone(),
                    to: lt.clone(),
                    remote_parent: cx.remote.entries.get(rt).and_then(|r| r.parent),
                });
            }
            (Fate::Moved { .. }, Fate::Same { changed: true }) => {
                // Moved here, replaced by a new version (a new id) there:
                // moving the host's new version would carry it over the
                // moved one (which then looked replaced and went to the
                // local trash; simulation, seed 125868). Both are kept:
                // forgotten, the moved one goes up as new and the new one
                // comes down at the old path.
                cx.ops.push(Op::Forget { path: sp.clone() });
            }
            (Fate::Moved { to: lt, .. }, Fate::Same { .. } | Fate::Moved { .. }) => {
                let cur = match &rf {
                    Fate::Moved { to, .. } => to.clone(),
                    _ => sp.clone(),
                };
                let id = cx.remote.entries.get(&cur).map_or(s.remote_id, |r| r.id);
                move_remote(cx, sp, s.kind, id, &cur, lt);
            }
            (Fate::Same { .. }, Fate::Moved { to: rt, .. }) => {
                move_local(cx, sp, s, rt);
            }
            (Fate::Moved { .. }, Fate::Deleted) | (Fate::Deleted, Fate::Moved { .. }) => {
                // Moved on one side, deleted on the other: keep the moved
                // one. Forgetting makes it new on its side next round.
                cx.ops.push(Op::Forget { path: sp.clone() });
            }
            _ => {}
        }
        // Only a planned move reserves its subtrees; a waiting one leaves
        // its children free to move out on their own.
        match cx.ops.get(planned_before..).unwrap_or_default() {
            [Op::Forget { .. }] => cx.covered.push(sp.clone()),
            [] => {}
            _ => cx.busy.extend(busy),
        }
    }
}

/// Plans moving remote `id` (now at `cur`) to `to`, where the local side has it.
fn move_remote(cx: &mut Ctx<'_>, sp: &RelPath, kind: Kind, id: u64, cur: &RelPath, to: &RelPath) {
    if !cx.can_change_remote() {
        // Download-only: the local move is undone by the remote state next
        // round once Synced forgets the entry.
        cx.ops.push(Op::Forget { path: sp.clone() });
        return;
    }
    let parent = to.parent().unwrap_or_default();
    let parent_ok = is_dir(&cx.remote.entries, &parent);
    if to.starts_with(cur) {
        cx.ops.push(Op::Forget { path: sp.clone() });
        return;
    }
    if cx.remote.entries.contains_key(to) || cx.remote.is_unknown(to) {
        // Something else is already there: handle as delete + create.
        cx.ops.push(Op::Forget { path: sp.clone() });
        return;
    }
    if !parent_ok {
        cx.defer(sp, "remote destination folder not there yet");
        return;
    }
    cx.ops.push(Op::MoveRemote {
        kind,
        id,
        synced: sp.clone(),
        from: cur.clone(),
        to: to.clone(),
    });
}

/// Plans moving the local entry at `sp` to `to`, where the remote has it.
fn move_local(cx: &mut Ctx<'_>, sp: &RelPath, s: &SyncedEntry, to: &RelPath) {
    let Some(l) = cx.local.entries.get(sp) else {
        return;
    };
    if !cx.can_change_local() {
        // Upload-only: put the remote entry back where local has it.
        revert_remote(cx, sp, s, to);
        return;
    }
    let parent = to.parent().unwrap_or_default();
    let parent_ok = is_dir(&cx.local.entries, &parent);
    if cx.local.entries.contains_key(to) || cx.local.is_unknown(to) {
        cx.ops.push(Op::Forget { path: sp.clone() });
        return;
    }
    if !parent_ok {
        // A non-folder in the way will not turn into the folder by waiting.
        let mut blocked = false;
        let mut cur = Some(parent.clone());
        while let Some(c) = cur {
            blocked |= cx
                .local
                .entries
                .get(&c)
                .is_some_and(|e| e.kind != Kind::Dir);
            cur = c.parent();
        }
        if blocked || gone_locally(cx, &parent) {
            // The remote moved it into a folder the local side moved away
            // or deleted: local wins, move it back.
            revert_remote(cx, sp, s, to);
        } else {
            // A folder new on the remote: created locally first.
            cx.defer(sp, "local destination folder not there yet");
        }
        return;
    }
    cx.ops.push(Op::MoveLocal {
        kind: s.kind,
        from: sp.clone(),
        to: to.clone(),
        expect: l.meta,
        remote_parent: cx.remote.entries.get(to).and_then(|r| r.parent),
    });
}

/// Moves the remote entry now at `cur` back to its Synced path `sp`.
fn revert_remote(cx: &mut Ctx<'_>, sp: &RelPath, s: &SyncedEntry, cur: &RelPath) {
    let parent = sp.parent().unwrap_or_default();
    let parent_ok = is_dir(&cx.remote.entries, &parent);
    let id = cx.remote.entries.get(cur).map_or(s.remote_id, |r| r.id);
    if parent_ok && !cx.remote.entries.contains_key(sp) && !sp.starts_with(cur) {
        cx.ops.push(Op::MoveRemote {
            kind: s.kind,
            id,
            synced: sp.clone(),
            from: cur.clone(),
            to: sp.clone(),
        });
    } else {
        cx.ops.push(Op::Forget { path: sp.clone() });
    }
}

/// Whether `p` or one of its ancestors is a Synced folder (at its Synced
/// path, or where the remote moved it) that the local side moved away or
/// deleted.
fn gone_locally(cx: &Ctx<'_>, p: &RelPath) -> bool {
    let mut cur = Some(p.clone());
    while let Some(c) = cur {
        if c.is_root() {
            return false;
        }
        let moved_away =
            |sp: &RelPath| matches!(cx.lfate.get(sp), Some(Fate::Moved { .. } | Fate::Deleted));
        if cx.synced.contains_key(&c) && moved_away(&c) {
            return true;
        }
        // `c` may be where the remote moved a Synced folder to.
        let remote_origin = cx
            .rfate
            .iter()
            .find(|(_, f)| matches!(f, Fate::Moved { to, .. } if *to == c))
            .map(|(sp, _)| *sp);
        if remote_origin.is_some_and(moved_away) {
            return true;
        }
        cur = c.parent();
    }
    false
}

/// Whether `p` is the root or a folder in `tree`.
fn is_dir<E: HasKind>(tree: &Tree<E>, p: &RelPath) -> bool {
    p.is_root() || tree.get(p).is_some_and(|e| e.kind() == Kind::Dir)
}

/// Entries of the Local and Remote trees.
trait HasKind {
    fn kind(&self) -> Kind;
}
impl HasKind for LocalEntry {
    fn kind(&self) -> Kind {
        self.kind
    }
}
impl HasKind for RemoteEntry {
    fn kind(&self) -> Kind {
        self.kind
    }
}
