//! What a focused pass cannot see from inside its scopes: host entries that
//! crossed a scope's edge since the last pass. The planner finds moves by
//! id only among the entries it is given, so without this a file the host
//! moved *into* a scope from outside would be downloaded again (and its
//! old copy trashed locally when that folder's turn came), and one moved
//! *out* of a scope would be taken for deleted on the host and trashed
//! locally, then come down again at its new place.
//!
//! Both are answered here, in bounded cost, without a listing of anything
//! outside the scopes:
//! - an entry listed inside a scope that Synced records at a path outside
//!   every scope (one indexed lookup per entry not synced at its path)
//!   came from outside;
//! - a Synced entry inside a scope that the listing does not show
//!   (anywhere in the scopes, by id) is asked about (`file/info`,
//!   `folder/info`, the top-most ones only, at most [`PROBE_LIMIT`]): one
//!   the host still has in use went somewhere else.
//!
//! Such paths are handed back: the pass leaves them alone (they count as
//! not looked at) and asks for a full pass, which sees both ends.
//!
//! Owns: that judgement. Must never: write to either side or to the state
//! DB, or list a folder.

use super::EngineError;
use crate::api::host::Host;
use crate::api::{FileId, FileStatus, FolderId};
use crate::model::{Kind, RelPath, RemoteView, Scope, SyncedEntry, Tree, under_any};
use crate::state::StateDb;
use std::collections::{BTreeSet, HashSet};

/// Host entries missing from a focused pass's listings that are asked
/// about one by one; with more, they all wait for the full pass.
pub(super) const PROBE_LIMIT: usize = 32;

/// What the listings and Synced alone tell: the paths known to have
/// crossed, and the Synced entries to ask the host about.
pub(super) struct Crossing {
    out: BTreeSet<RelPath>,
    missing: Vec<(RelPath, SyncedEntry)>,
}

/// The paths inside the scopes the pass must leave to a full pass: the
/// entries [`crossing`] found to have come from outside them, and the
/// Synced entries gone from them that the host still has in use (see the
/// module docs). Asking never fails the pass: an entry the host does not
/// answer for waits too.
pub(super) async fn moved_across(
    client: &dyn Host,
    crossing: Crossing,
    remote_root: Option<FolderId>,
) -> BTreeSet<RelPath> {
    let Crossing { mut out, missing } = crossing;
    for (p, s) in missing {
        if !gone_from_pair(client, &s, remote_root).await {
            tracing::debug!(path = %p, "still in use on the host elsewhere");
            out.insert(p);
        }
    }
    out
}

/// The first, local half of [`moved_across`] (the state DB is not held
/// across the host's answers): what the listings and Synced alone tell.
/// `synced` and `view` are the pass's (cut to its scopes or not).
pub(super) fn crossing(
    db: &StateDb,
    scopes: &[Scope],
    synced: &Tree<SyncedEntry>,
    view: &RemoteView,
) -> Result<Crossing, EngineError> {
    let inside = |p: &RelPath| scopes.iter().any(|s| s.contains(p));
    let mut out: BTreeSet<RelPath> = BTreeSet::new();
    let mut listed: HashSet<(Kind, u64)> = HashSet::new();
    for (p, e) in view.entries.iter().filter(|(p, _)| inside(p)) {
        listed.insert((e.kind, e.id));
        if under_any(&out, p)
            || synced
                .get(p)
                .is_some_and(|s| s.kind == e.kind && s.remote_id == e.id)
        {
            continue;
        }
        let recorded = db.synced_paths_of(e.kind, e.id)?;
        if recorded.iter().any(|q| q != p && !inside(q)) {
            tracing::debug!(path = %p, "came from outside the focused pass's folders");
            out.insert(p.clone());
        }
    }
    // Synced entries the listings no longer show, top-most first.
    let mut missing: Vec<(RelPath, SyncedEntry)> = Vec::new();
    let mut gone_tops: BTreeSet<RelPath> = BTreeSet::new();
    for (p, s) in synced.iter().filter(|(p, _)| inside(p)) {
        if view.is_unknown(p)
            || under_any(&out, p)
            || under_any(&gone_tops, p)
            || view.entries.get(p).is_some_and(|e| e.kind == s.kind)
            || listed.contains(&(s.kind, s.remote_id))
        {
            continue;
        }
        gone_tops.insert(p.clone());
        missing.push((p.clone(), s.clone()));
    }
    if missing.len() > PROBE_LIMIT {
        tracing::debug!(
            entries = missing.len(),
            "many entries left the focused pass's folders; a full pass looks"
        );
        out.extend(missing.drain(..).map(|(p, _)| p));
    }
    Ok(Crossing { out, missing })
}

/// Whether the host entry of `s` is gone from the pair: trashed or deleted,
/// or (a folder) detached to the account root, which is outside a pair
/// synced below it. Anything else, an error included, is "maybe not".
async fn gone_from_pair(client: &dyn Host, s: &SyncedEntry, remote_root: Option<FolderId>) -> bool {
    match s.kind {
        Kind::File => match client.file_info(FileId(s.remote_id)).await {
            Ok(f) => f.status != FileStatus::Active,
            Err(e) => e.is_not_found(),
        },
        // A trashed folder keeps its status to itself (API-NOTES.md): it
        // is detached. For a pair at the account root, a detached folder
        // may also be one of its own top-level folders.
        Kind::Dir => match client.folder_info(FolderId(s.remote_id)).await {
            Ok(f) => f.parent_id.is_none() && remote_root.is_some(),
            Err(e) => e.is_not_found(),
        },
    }
}
