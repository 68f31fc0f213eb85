//! Crash recovery: resolves journal intents that were written but never
//! completed, against a fresh listing, before anything else runs.
//!
//! An upload or server-side copy that reached the host but whose answer
//! (or whose recording) was lost would otherwise look like a new remote
//! file next round and be downloaded as a duplicate. Recovery adopts such
//! a file when the local file is unchanged, and trashes stray copies
//! otherwise. Every other intent (moves, deletes, folder creation) is
//! simply closed: the next plan sees the real state and does the right
//! thing, because those ops converge by themselves.

use super::EngineError;
use crate::api::host::Host;
use crate::api::names::is_upload_variant;
use crate::api::{ApiError, FileId, FileStatus, FolderId};
use crate::clock::{self, Clock};
use crate::model::*;
use crate::plan::Op;
use crate::state::{Change, StateDb};
use std::collections::HashSet;
use std::path::Path;

/// What the journal stores for a remote-changing op.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Intent {
    pub op: Op,
    /// The remote folder the op worked in (for uploads, copies, creates).
    pub parent: Option<u64>,
    /// The file an upload or copy made, recorded as soon as its answer
    /// arrived: recovery then knows for certain which file is ours.
    #[serde(default)]
    pub placed: Option<u64>,
    /// A file the op made that must not stay (the host stored something
    /// else than was meant) and that could not be trashed yet.
    #[serde(default)]
    pub discard: Option<u64>,
    /// For a remote move: the folder the entry was in before it.
    #[serde(default)]
    pub moved_from: Option<MovedFrom>,
}

/// The folder a remote move took its entry from (`None`: the account root).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct MovedFrom {
    pub parent: Option<u64>,
}

/// What [`run`] leaves for the pass.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// The Synced entries it forgot (an interrupted replacement whose old
    /// version is in the host's trash): the check for a trashed remote root
    /// still looks at them, as a root trashed meanwhile put that old
    /// version there too.
    pub forgot: Vec<(RelPath, SyncedEntry)>,
    /// Paths of intents still open ([`Recovered::Unsure`]): the pass plans
    /// nothing there (they count as unknown on the remote side) until the
    /// intent is settled. Their Synced entries may still describe a version
    /// the interrupted op itself trashed, which the planner would take for
    /// a remote delete (sim seed 103672: the local `.dcsyncignore` went to
    /// the local trash).
    pub held: Vec<RelPath>,
}

/// Resolves the open intents.
pub(crate) async fn run(
    client: &dyn Host,
    db: &mut StateDb,
    root: &Path,
    remote_root: Option<FolderId>,
    clock: &dyn Clock,
) -> Result<Recovery, EngineError> {
    let mut out = Recovery::default();
    let forgot = &mut out.forgot;
    let pending = db.journal_pending()?;
    if pending.is_empty() {
        return Ok(out);
    }
    // Paths an open upload or copy may have changed on the host: their
    // Synced entries say nothing about whether their folder is listed.
    let open: HashSet<RelPath> = pending
        .iter()
        .filter_map(|(_, json)| serde_json::from_str::<Intent>(json).ok())
        .filter_map(|i| match i.op {
            Op::Upload { path, .. } | Op::RemoteCopy { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    let tracked = Tracked::read(db, &open, remote_root)?;
    for (id, json) in pending {
        let now = clock::datetime(clock.now());
        let intent: Intent = match serde_json::from_str(&json) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(id, error = %e, "unreadable journal entry; closing it");
                db.journal_abandon(id, &now)?;
                continue;
            }
        };
        match &intent.op {
            // An upload, or a copy (made from `source`).
            Op::Upload {
                path,
                local,
                replaces,
            }
            | Op::RemoteCopy {
                path,
                local,
                replaces,
                ..
            } => {
                let source = match &intent.op {
                    Op::RemoteCopy { source, .. } => Some(*source),
                    _ => None,
                };
                let stamp = clock::conflict_stamp(clock.now());
                let changes = recover_upload(
                    client,
                    root,
                    &tracked,
                    &intent,
                    path,
                    local,
                    *replaces,
                    source,
                    &stamp,
                    &mut |placed| note_placed(db, id, &intent, placed, &now),
                )
                .await?;
                match changes {
                    Recovered::Done(c) => {
                        remember_forgotten(db, &c, forgot)?;
                        db.journal_done(id, &c, &now)?
                    }
                    Recovered::Abandon => db.journal_abandon(id, &now)?,
                    Recovered::Unsure => out.held.push(path.clone()),
                }
            }
            Op::MoveRemote {
                kind,
                id: entry,
                from,
                to,
                ..
            } => {
                let stamp = clock::conflict_stamp(clock.now());
                // Journal entries from before `moved_from` was kept: as moves.
                let moved = intent
                    .moved_from
                    .as_ref()
                    .is_none_or(|m| m.parent != intent.parent);
                let settled = settle_move(client, *kind, *entry, intent.parent, to, moved, &stamp);
                if let Err(e) = settled.await {
                    if e.is_retryable() {
                        return Err(e.into());
                    }
                    tracing::debug!(path = %to, error = %e, "an interrupted move could not be looked at");
                }
                // The folder it went into may have been trashed (or moved
                // out of the synced tree) by somebody else in the meantime:
                // it goes back where it came from, never along into a trash.
                let from_path = from;
                if let (Some(from), Some(top)) = (&intent.moved_from, remote_root) {
                    let brought = move_back_if_detached(
                        client,
                        *kind,
                        *entry,
                        from_path,
                        from.parent,
                        top,
                        &stamp,
                    );
                    match brought.await {
                        Ok(true) => tracing::info!(
                            path = %from_path,
                            "an interrupted move had gone into a folder trashed meanwhile; moved back"
                        ),
                        Ok(false) => {}
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => {
                            tracing::debug!(path = %to, error = %e, "an interrupted move could not be looked at")
                        }
                    }
                }
                // It may have gone into a folder trashed meanwhile: until a
                // listing shows it, its absence proves no delete
                // (`engine::forget_unlisted`).
                db.journal_done(id, &[Change::Made(*kind, *entry)], &now)?;
            }
            Op::CreateRemoteDir { path, .. } => {
                // Killed between the create and its check: a folder of the
                // same name made at the same moment may stand beside ours.
                // Which of them is empty is read from a listing, and a
                // folder in the host's trash (with the synced folder) is
                // listed without its files: then the next run looks again
                // (sim seed 110117: a pass with the synced folder in the
                // trash trashed a folder).
                if !tracked
                    .folder_shows_its_files(client, intent.parent)
                    .await?
                {
                    tracing::info!(%path, "folders of one name left by an interrupted run: their folder may be in the host's trash; looking again next pass");
                    continue;
                }
                match keep_oldest_namesake(client, path, intent.parent).await {
                    Ok(Some(_)) => {
                        tracing::info!(%path, "settled folders of one name left by an interrupted run")
                    }
                    Ok(None) => {}
                    // Looked at again next time (the intent stays open).
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    Err(e) => {
                        tracing::debug!(%path, error = %e, "folders of one name could not be settled")
                    }
                }
                db.journal_abandon(id, &now)?;
            }
            Op::DeleteRemote {
                kind,
                path,
                id: entry,
                ..
            } => {
                // Our trash went through (its answer lost): record it, or
                // the entry, still tracked, reads as trashed on the host by
                // somebody else and its local copy goes to the local trash
                // (sim seed 104000: the file had come back locally).
                let probes = match (kind, remote_root) {
                    (Kind::Dir, None) => db
                        .files_below(path, 3)?
                        .values()
                        .map(|e| e.remote_id)
                        .collect(),
                    _ => Vec::new(),
                };
                if remote_delete_happened(client, *kind, *entry, remote_root, &probes).await? {
                    tracing::info!(%path, "an interrupted trash on the host went through; recorded");
                    db.journal_done(id, &[Change::RemoveTree(path.clone())], &now)?;
                    if *kind == Kind::Dir && remote_root.is_none() {
                        // Listed in the account root again, without its
                        // files: not a new folder (see `exec::delete_remote`).
                        super::remember_trashed_folder(db, *entry)?;
                    }
                } else {
                    db.journal_abandon(id, &now)?;
                }
            }
            _ => db.journal_abandon(id, &now)?,
        }
    }
    Ok(out)
}

/// Whether the host's entry `id` is in the trash (or gone): a file by its
/// status, a folder by being cut off below the synced folder (a folder
/// trashed on its own leaves it; folders have no status). In the account
/// root, where a trashed folder is listed again looking like any folder, by
/// one of its tracked files (`probes`) read as trashed *with* its folder
/// (a file trashed on its own is detached and says nothing); a folder with
/// no tracked file cannot be told and counts as not trashed.
async fn remote_delete_happened(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    remote_root: Option<FolderId>,
    probes: &[u64],
) -> Result<bool, EngineError> {
    let gone = match kind {
        Kind::File => match client.file_info(FileId(id)).await {
            Ok(f) => f.status != FileStatus::Active,
            Err(e) if e.is_not_found() => true,
            Err(e) => return Err(e.into()),
        },
        Kind::Dir => match remote_root {
            Some(root) => super::cut_off_below(client, FolderId(id), root).await?,
            None => {
                let mut trashed = false;
                for &file in probes {
                    if super::trashed_with_its_folder(client, file).await? == Some(true) {
                        trashed = true;
                        break;
                    }
                }
                trashed
            }
        },
    };
    Ok(gone)
}

/// Records in open intent `id` the file recovery found to be ours, before
/// it renames it: a run killed after that rename then knows the file by
/// id, wherever it is by then (sim seed 101099: another device moved it
/// into a folder during the rename, which landed it beside a namesake, and
/// the next run, searching by name, never found it again). A failure is
/// reported, not fatal (the next run searches again).
fn note_placed(db: &mut StateDb, id: i64, intent: &Intent, placed: u64, now: &str) {
    let noted = Intent {
        placed: Some(placed),
        ..intent.clone()
    };
    let done = serde_json::to_string(&noted)
        .map_err(|e| e.to_string())
        .and_then(|json| db.journal_update(id, &json, now).map_err(|e| e.to_string()));
    if let Err(e) = done {
        tracing::warn!(intent = id, file = placed, error = %e, "could not record which upload is ours; the next run searches again");
    }
}

/// The Synced entries `changes` will remove, as they are now.
fn remember_forgotten(
    db: &StateDb,
    changes: &[Change],
    out: &mut Vec<(RelPath, SyncedEntry)>,
) -> Result<(), EngineError> {
    for c in changes {
        if let Change::RemoveTree(p) = c
            && let Some(e) = db.get_synced(p)?
        {
            out.push((p.clone(), e));
        }
    }
    Ok(())
}

/// A move on the host of entry `id` to `to` (in folder `parent`) that did
/// not finish (an answer lost, a later step refused, the run killed): a
/// move without its rename is completed when the name is free there, and
/// whatever name the entry has now, it must not stand beside another entry
/// of that name (ours steps aside). The next plan sees where it ended up.
/// `moved`: the op changed the entry's folder. A rename in place is never
/// completed here: an entry still under its old name in its old folder is
/// as if nothing happened, and the next plan renames it again (recovery
/// writes to the host only what it must; the synced folder may be in the
/// trash by now — sim seed 121249).
pub(crate) async fn settle_move(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    parent: Option<u64>,
    to: &RelPath,
    moved: bool,
    stamp: &str,
) -> Result<(), ApiError> {
    let (now_parent, mut name) = match kind {
        Kind::File => {
            let f = client.file_info(FileId(id)).await?;
            if f.status != FileStatus::Active {
                return Ok(());
            }
            (f.folder_id.map(|p| p.0), f.name)
        }
        Kind::Dir => {
            let f = client.folder_info(FolderId(id)).await?;
            (f.parent_id.map(|p| p.0), f.name)
        }
    };
    if moved && now_parent == parent && name != to.name() {
        let listing = client.folder_listing(parent.map(FolderId)).await?;
        if !held_by_another(&listing, parent.is_none(), to.name(), kind, id) {
            name = match kind {
                Kind::File => client.file_rename(FileId(id), to.name()).await?.name,
                Kind::Dir => client.folder_rename(FolderId(id), to.name()).await?.name,
            };
        }
    }
    let Some(at) = to.parent().unwrap_or_default().join(&name) else {
        return Ok(());
    };
    step_aside_if_doubled(client, now_parent, &at, kind, id, stamp).await?;
    Ok(())
}

/// How deep a folder chain is followed up to the synced folder before
/// giving up (a cycle or an absurd depth: taken as attached, nothing moves).
const MAX_DEPTH: usize = 512;

/// Whether remote folder `folder` (`None`: the account root) is inside the
/// synced folder `top` (or is it). A folder trashed on the host is detached
/// to the account root, so a trashed folder answers no here, as does one
/// moved out of the synced tree.
pub(crate) async fn inside_synced_tree(
    client: &dyn Host,
    folder: Option<FolderId>,
    top: FolderId,
) -> Result<bool, ApiError> {
    let mut cur = folder;
    for _ in 0..MAX_DEPTH {
        match cur {
            Some(f) if f == top => return Ok(true),
            Some(f) => cur = client.folder_info(f).await?.parent_id,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Whether remote entry `id`, moved by an op that did not finish, is
/// outside the synced tree `top` (its new folder was trashed or moved away
/// meanwhile) and not back in `back`, the folder it came from.
async fn detached(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    back: Option<u64>,
    top: FolderId,
) -> Result<bool, ApiError> {
    let now = match kind {
        Kind::File => {
            let f = client.file_info(FileId(id)).await?;
            if f.status != FileStatus::Active {
                return Ok(false);
            }
            f.folder_id
        }
        Kind::Dir => client.folder_info(FolderId(id)).await?.parent_id,
    };
    Ok(now != back.map(FolderId) && !inside_synced_tree(client, now, top).await?)
}

/// Brings an entry taken out of the synced tree back: to `from` in folder
/// `back` while that folder is inside the synced folder `top`; when it is
/// not (trashed or moved away too, also in the call before the move back:
/// looked at again after it), to the top of the synced folder under the
/// entry's name, where the next pass sees it — never into a trash (sim
/// seed 105415). Without a `top` (a whole-account pair) it goes to `back`.
pub(crate) async fn bring_home(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    from: &RelPath,
    back: Option<u64>,
    top: Option<FolderId>,
    stamp: &str,
) -> Result<(), ApiError> {
    let Some(top) = top else {
        return put_back(client, kind, id, from, back, stamp).await;
    };
    let at_top = || {
        RelPath::root()
            .join(from.name())
            .unwrap_or_else(|| from.clone())
    };
    let (mut to, mut into) = (from.clone(), back);
    for _ in 0..3 {
        if !inside_synced_tree(client, into.map(FolderId), top).await? {
            (to, into) = (at_top(), Some(top.0));
        }
        put_back(client, kind, id, &to, into, stamp).await?;
        if inside_synced_tree(client, into.map(FolderId), top).await? {
            break;
        }
    }
    Ok(())
}

/// Where a remote move or rename of ours left entry `id`.
pub(crate) enum Renamed {
    /// In `parent`, as meant; `Some`: under this conflicted-copy name, as
    /// another entry took the name at the same moment.
    Here(Option<String>),
    /// Not in `parent`: another device moved it (or trashed it) in the call
    /// between our look and our rename; the rename was undone there.
    Elsewhere,
}

/// After dcsync moved or renamed its entry `id` to `path` in `parent`
/// (`old`: its name before): when a fresh listing of `parent` shows it,
/// it must not stand beside another entry of that name
/// (`step_aside_if_doubled`). When it does not, another device moved it in
/// the one call between our look and our rename, which then applied
/// wherever it was (a rename is in place): it gets `old` back there when
/// nothing else holds that name, and whatever name it has then, it never
/// stays beside a namesake. Looks only at listings and `*/info`, never at
/// what an edit answered (a host may leave the folder out of it).
pub(crate) async fn settle_renamed(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    parent: Option<u64>,
    path: &RelPath,
    old: &str,
    stamp: &str,
) -> Result<Renamed, ApiError> {
    let listing = client.folder_listing(parent.map(FolderId)).await?;
    let here = match kind {
        Kind::File => listing.files.iter().any(|f| f.id.0 == id),
        Kind::Dir => listing.folders.iter().any(|f| f.id.0 == id),
    };
    if here {
        return step_aside_in(client, &listing, parent, path, kind, id, stamp)
            .await
            .map(Renamed::Here);
    }
    let (now_in, name) = match kind {
        Kind::File => {
            let f = client.file_info(FileId(id)).await?;
            if f.status != FileStatus::Active {
                return Ok(Renamed::Elsewhere);
            }
            (f.folder_id.map(|p| p.0), f.name)
        }
        Kind::Dir => {
            let f = client.folder_info(FolderId(id)).await?;
            (f.parent_id.map(|p| p.0), f.name)
        }
    };
    if now_in == parent {
        // Listed a moment too early: it is here after all.
        return step_aside_if_doubled(client, parent, path, kind, id, stamp)
            .await
            .map(Renamed::Here);
    }
    let mut now = name.clone();
    if name == path.name() && name != old {
        let there = client.folder_listing(now_in.map(FolderId)).await?;
        if !held_by_another(&there, now_in.is_none(), old, kind, id) {
            now = match kind {
                Kind::File => client.file_rename(FileId(id), old).await?.name,
                Kind::Dir => client.folder_rename(FolderId(id), old).await?.name,
            };
            tracing::info!(%path, name = %now, "another device moved this entry during our rename; the rename was undone where it is now");
        }
    }
    if let Some(at) = RelPath::new(&now) {
        step_aside_if_doubled(client, now_in, &at, kind, id, stamp).await?;
    }
    Ok(Renamed::Elsewhere)
}

/// When entry `id` is `detached`, moves it back to `from`, its path before
/// the move (in remote folder `back`; see `put_back`). Returns whether it
/// moved.
pub(crate) async fn move_back_if_detached(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    from: &RelPath,
    back: Option<u64>,
    top: FolderId,
    stamp: &str,
) -> Result<bool, ApiError> {
    if !detached(client, kind, id, back, top).await? {
        return Ok(false);
    }
    bring_home(client, kind, id, from, back, Some(top), stamp).await?;
    Ok(true)
}

/// Moves entry `id` back to `from` (in remote folder `back`), under its
/// old name; as somebody may have taken that name there meanwhile (the
/// host does no uniqueness check on moves and renames), ours then steps
/// aside to a conflicted-copy name.
pub(crate) async fn put_back(
    client: &dyn Host,
    kind: Kind,
    id: u64,
    from: &RelPath,
    back: Option<u64>,
    stamp: &str,
) -> Result<(), ApiError> {
    let name = match kind {
        Kind::File => client.file_move(FileId(id), back.map(FolderId)).await?.name,
        Kind::Dir => {
            client
                .folder_move(FolderId(id), back.map(FolderId))
                .await?
                .name
        }
    };
    if name != from.name() {
        let listing = client.folder_listing(back.map(FolderId)).await?;
        if !held_by_another(&listing, back.is_none(), from.name(), kind, id) {
            match kind {
                Kind::File => drop(client.file_rename(FileId(id), from.name()).await?),
                Kind::Dir => drop(client.folder_rename(FolderId(id), from.name()).await?),
            }
        } else if let Some(at) = from.parent().unwrap_or_default().join(&name) {
            step_aside_if_doubled(client, back, &at, kind, id, stamp).await?;
            return Ok(());
        }
    }
    step_aside_if_doubled(client, back, from, kind, id, stamp).await?;
    Ok(())
}

/// Folders of `path`'s name in `parent` (`folder/create` does no uniqueness
/// check, so one made by somebody else in the same moment as ours can stand
/// beside it): the oldest is the one; every newer one that is empty goes
/// back to the host's trash (nobody's content goes; the lower id wins, so
/// two dcsync instances racing keep the same one). Returns the oldest when
/// there were several; `None` when there is at most one, or in the account
/// root, whose listing shows trashed folders too.
pub(crate) async fn keep_oldest_namesake(
    client: &dyn Host,
    path: &RelPath,
    parent: Option<u64>,
) -> Result<Option<u64>, ApiError> {
    let Some(pid) = parent else {
        return Ok(None);
    };
    let listing = client.folder_listing(Some(FolderId(pid))).await?;
    keep_oldest_in(client, path, &listing).await
}

/// [`keep_oldest_namesake`] on a listing of `path`'s parent taken after
/// the folder was made (one listing serves every folder made in it).
pub(crate) async fn keep_oldest_in(
    client: &dyn Host,
    path: &RelPath,
    listing: &crate::api::Listing,
) -> Result<Option<u64>, ApiError> {
    let mut same: Vec<u64> = listing
        .folders
        .iter()
        .filter(|f| f.name == path.name())
        .map(|f| f.id.0)
        .collect();
    same.sort_unstable();
    let Some((&oldest, newer)) = same.split_first() else {
        return Ok(None);
    };
    if newer.is_empty() {
        return Ok(None);
    }
    for &id in newer {
        let inside = client.folder_listing(Some(FolderId(id))).await?;
        if inside.files.is_empty() && inside.folders.is_empty() {
            client.folder_delete(FolderId(id)).await?;
            tracing::info!(%path, folder = id, "trashed an empty folder made beside another of the same name");
        }
    }
    Ok(Some(oldest))
}

/// How a file this client made ended up named.
pub(crate) enum Named {
    /// The exact name of its path.
    Exact,
    /// Another version holds the name: ours took this conflicted-copy name.
    Conflict(String),
    /// The host stores the exact name differently (read back): this name.
    Refused(String),
}

/// A file dcsync just put on the host, as the host named it.
#[derive(Clone, Copy)]
pub(crate) struct Stored<'a> {
    pub id: FileId,
    pub name: &'a str,
    /// The host made the name unique in its folder (`file/upload` does,
    /// `file/copy` does not).
    pub unique: bool,
}

/// Gives file `id` (stored as `stored`, in `parent`) the name of `path`:
/// when the name may be taken (the host renamed it, `replaces` is
/// replaced, or the host did no uniqueness check when it named it:
/// `unique` is false for `file/copy`), the folder is listed first, and anything holding the name
/// other than `replaces` (another device's version) makes it a conflict:
/// ours is renamed to a free conflicted-copy name (`stamp`), never given
/// the same name as theirs, and `replaces` is left alone. Otherwise
/// `replaces` goes to the host's trash and the file takes the exact name,
/// read back.
pub(crate) async fn claim_name(
    client: &dyn Host,
    parent: Option<u64>,
    path: &RelPath,
    file: Stored<'_>,
    replaces: Option<u64>,
    stamp: &str,
) -> Result<Named, ApiError> {
    let Stored {
        id,
        name: stored,
        unique,
    } = file;
    if replaces.is_some() || stored != path.name() || !unique {
        let listing = client.folder_listing(parent.map(FolderId)).await?;
        let foreign = listing
            .files
            .iter()
            .any(|f| f.name == path.name() && f.id != id && Some(f.id.0) != replaces);
        if foreign {
            let Some(name) = free_conflict_name(&listing, path.name(), stamp) else {
                return Err(ApiError::Api {
                    endpoint: "file/edit",
                    message: format!("no free conflicted-copy name for {path} on the host"),
                });
            };
            let f = client.file_rename(id, &name).await?;
            return Ok(Named::Conflict(f.name));
        }
    }
    if let Some(old) = replaces {
        match client.file_delete(FileId(old)).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if stored != path.name() {
        let f = client.file_rename(id, path.name()).await?;
        if f.name != path.name() {
            return Ok(Named::Refused(f.name));
        }
        // Where it is now: another device may have moved it meanwhile.
        let now_in = f.folder_id.map(|p| p.0);
        if let Some(name) =
            step_aside_if_doubled(client, now_in, path, Kind::File, id.0, stamp).await?
        {
            return Ok(Named::Conflict(name));
        }
    }
    Ok(Named::Exact)
}

/// Whether `name` in a folder's `listing` is held by an entry other than
/// ours (`kind`, `id`; files and folders have separate ids). In the account
/// root (`in_root`) only files count: its listing shows trashed folders too.
pub(crate) fn held_by_another(
    listing: &crate::api::Listing,
    in_root: bool,
    name: &str,
    kind: Kind,
    id: u64,
) -> bool {
    listing
        .files
        .iter()
        .any(|f| f.name == name && !(kind == Kind::File && f.id.0 == id))
        || (!in_root
            && listing
                .folders
                .iter()
                .any(|f| f.name == name && !(kind == Kind::Dir && f.id.0 == id)))
}

/// The first conflicted-copy name for `name` (`stamp`) that nothing in the
/// folder's `listing` holds.
pub(crate) fn free_conflict_name(
    listing: &crate::api::Listing,
    name: &str,
    stamp: &str,
) -> Option<String> {
    let taken: HashSet<&str> = listing
        .files
        .iter()
        .map(|f| f.name.as_str())
        .chain(listing.folders.iter().map(|f| f.name.as_str()))
        .collect();
    (1..1000)
        .map(|n| crate::plan::conflict_name(name, stamp, n))
        .find(|c| !taken.contains(c.as_str()))
}

/// After dcsync gave its entry `id` the name of `path` in `parent`
/// (`file/edit`, `file/move` and their folder twins do no uniqueness check):
/// when a fresh listing shows another entry of that name too — one that
/// arrived in the one call between our look and our rename — ours steps
/// aside to a conflicted-copy name, so the host never keeps two of one
/// name. The name checked is the one the listing shows for our entry
/// (another device may have renamed it meanwhile), else `path`'s.
/// Returns that name, or `None` when the name is ours alone. (In the
/// account root only files count: its listing shows trashed folders.)
pub(crate) async fn step_aside_if_doubled(
    client: &dyn Host,
    parent: Option<u64>,
    path: &RelPath,
    kind: Kind,
    id: u64,
    stamp: &str,
) -> Result<Option<String>, ApiError> {
    let listing = client.folder_listing(parent.map(FolderId)).await?;
    step_aside_in(client, &listing, parent, path, kind, id, stamp).await
}

/// `step_aside_if_doubled` with `parent`'s fresh `listing` at hand.
async fn step_aside_in(
    client: &dyn Host,
    listing: &crate::api::Listing,
    parent: Option<u64>,
    path: &RelPath,
    kind: Kind,
    id: u64,
    stamp: &str,
) -> Result<Option<String>, ApiError> {
    // The name it has now, as listed: another device may have renamed it
    // in the call between our look and our move (sim seed 112255).
    let listed = match kind {
        Kind::File => listing.files.iter().find(|f| f.id.0 == id).map(|f| &f.name),
        Kind::Dir => listing
            .folders
            .iter()
            .find(|f| f.id.0 == id)
            .map(|f| &f.name),
    };
    let name = listed.map_or(path.name(), String::as_str);
    if !held_by_another(listing, parent.is_none(), name, kind, id) {
        return Ok(None);
    }
    let Some(aside) = free_conflict_name(listing, name, stamp) else {
        return Err(ApiError::Api {
            endpoint: "file/edit",
            message: format!("no free conflicted-copy name for {path} on the host"),
        });
    };
    let now = match kind {
        Kind::File => client.file_rename(FileId(id), &aside).await?.name,
        Kind::Dir => client.folder_rename(FolderId(id), &aside).await?.name,
    };
    tracing::warn!(%path, copy = %now, "another entry took this name on the host at the same moment; ours is kept beside it as a conflicted copy");
    Ok(Some(now))
}

/// An interrupted upload that was to replace version `replaces` is not
/// adopted (the file changed since): when the interrupted run had already
/// trashed the old version, the Synced entry must go too, or the next plan
/// takes the old version's absence for a delete on the host and trashes the
/// local file. Without the entry the local file simply goes up again.
async fn forget_replaced(
    client: &dyn Host,
    path: &RelPath,
    replaces: Option<u64>,
) -> Result<Option<Vec<Change>>, EngineError> {
    let Some(old) = replaces else {
        return Ok(None);
    };
    let gone = match client.file_info(FileId(old)).await {
        Ok(f) => f.status != FileStatus::Active,
        Err(e) if e.is_not_found() => true,
        Err(e) => return Err(e.into()),
    };
    if !gone {
        return Ok(None);
    }
    tracing::info!(%path, "the version an interrupted upload replaced is in the host's trash; the local file goes up again");
    Ok(Some(vec![Change::RemoveTree(path.clone())]))
}

/// At most this many same-size candidates are downloaded and compared
/// when an upload's answer was lost.
const MAX_COMPARED: usize = 5;

/// How many tracked files per folder `Tracked::folder_shows_its_files`
/// looks at.
const PROBES: usize = 3;

/// What recovery made of an interrupted upload or copy.
enum Recovered {
    /// Settled: these changes record it (the intent is closed).
    Done(Vec<Change>),
    /// Nothing of it stays (the intent is closed without changes).
    Abandon,
    /// Nothing of it was found, but the folder it went to may be in the
    /// host's trash, whose listings show no files: the intent stays open
    /// and the next run looks again (sim seed 143212: a copy that arrived
    /// in a synced folder trashed meanwhile was taken for lost, and stood
    /// beside its namesake once the folder was restored).
    Unsure,
}

/// The remote files Synced records: their ids, and one per folder, whose
/// state tells whether that folder's listing can be believed.
struct Tracked {
    ids: HashSet<u64>,
    /// Folder (`None`: the account root) → a few tracked files in it.
    probe: std::collections::BTreeMap<Option<u64>, Vec<u64>>,
    /// The synced host folder (`None`: the account root).
    remote_root: Option<FolderId>,
}

impl Tracked {
    /// `open`: paths of open uploads and copies, whose Synced entries are
    /// no probes: such an entry may name the version the op replaced (and
    /// trashed itself), and is not updated while its path is held (the
    /// remote user may trash that file meanwhile); as the only probe of its
    /// folder it would keep the answer "no" for ever (sim seed 246).
    fn read(
        db: &StateDb,
        open: &HashSet<RelPath>,
        remote_root: Option<FolderId>,
    ) -> Result<Tracked, EngineError> {
        let synced = db.load_synced()?;
        let mut probe = std::collections::BTreeMap::new();
        for (_, e) in synced
            .iter()
            .filter(|(p, e)| e.kind == Kind::File && !open.contains(*p))
        {
            let ids: &mut Vec<u64> = probe.entry(e.remote_parent).or_default();
            if ids.len() < PROBES {
                ids.push(e.remote_id);
            }
        }
        Ok(Tracked {
            ids: synced.values().map(|e| e.remote_id).collect(),
            probe,
            remote_root,
        })
    }

    /// Whether what a search of folder `parent` did not find may be
    /// taken for gone. A trashed folder is listed without its files (they
    /// read as trashed, keeping their folder id), so the listing is doubted
    /// only on evidence that a folder above them is in the trash while it
    /// still hangs below the synced folder (trashed with the synced folder,
    /// or trashed and moved back): a few tracked files of that folder, then
    /// one of each other folder, are looked at, in that order:
    /// - one is live: yes;
    /// - `parent` no longer hangs below the synced folder (trashed on its
    ///   own, or moved out): yes, what went with it left the synced tree for
    ///   good, and waiting would wait for ever (sim seed 100214);
    /// - one is in the trash with a folder still below the synced folder:
    ///   no (sim seeds 143212, 155757, 129418);
    /// - the rest (trashed on their own, detached, or gone) say nothing
    ///   (sim seed 103457): yes.
    ///
    /// Nothing tracked, or the account root synced: yes.
    async fn folder_shows_its_files(
        &self,
        client: &dyn Host,
        parent: Option<u64>,
    ) -> Result<bool, EngineError> {
        let Some(root) = self.remote_root else {
            return Ok(true);
        };
        let own = self.probe.get(&parent).cloned().unwrap_or_default();
        let mut in_trashed_folder = Vec::new();
        if self.any_live(client, &own, &mut in_trashed_folder).await? {
            return Ok(true);
        }
        if let Some(folder) = parent
            && super::cut_off_below(client, FolderId(folder), root).await?
        {
            return Ok(true);
        }
        let elsewhere: Vec<u64> = self
            .probe
            .iter()
            .filter(|(p, _)| **p != parent)
            .filter_map(|(_, ids)| ids.first().copied())
            .take(2 * PROBES)
            .collect();
        if self
            .any_live(client, &elsewhere, &mut in_trashed_folder)
            .await?
        {
            return Ok(true);
        }
        in_trashed_folder.sort_unstable();
        in_trashed_folder.dedup();
        for folder in in_trashed_folder.into_iter().take(PROBES) {
            if !super::cut_off_below(client, FolderId(folder), root).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether one of `files` is live on the host; the folders of those
    /// in the trash with their folder go to `in_trashed_folder`.
    async fn any_live(
        &self,
        client: &dyn Host,
        files: &[u64],
        in_trashed_folder: &mut Vec<u64>,
    ) -> Result<bool, EngineError> {
        for &file in files {
            match client.file_info(FileId(file)).await {
                Ok(f) if f.status == FileStatus::Active => return Ok(true),
                Ok(f) => in_trashed_folder.extend(f.folder_id.map(|p| p.0)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }
}

/// Settles an upload or copy of `path` that was interrupted: adopts the
/// file it made when the local file is unchanged, trashes it when not.
/// Which file is ours is certain: its id was journalled when the answer
/// arrived, or, when the answer was lost, the content of each untracked
/// same-size file named like the upload (or, for a copy, like its source)
/// is compared with what was sent. Files that are not ours (another
/// device's upload of the same name and size) are never touched.
#[allow(clippy::too_many_arguments)]
async fn recover_upload(
    client: &dyn Host,
    root: &Path,
    tracked: &Tracked,
    intent: &Intent,
    path: &RelPath,
    local: &LocalEntry,
    replaces: Option<u64>,
    source: Option<u64>,
    stamp: &str,
    note_placed: &mut (dyn FnMut(u64) + Send),
) -> Result<Recovered, EngineError> {
    let unchanged = std::fs::symlink_metadata(root.join(path.as_str()))
        .map(|m| super::exec::meta_of(&m))
        .is_ok_and(|m| {
            m.ino == local.meta.ino
                && m.size == local.meta.size
                && m.mtime_ns == local.meta.mtime_ns
        });
    if let Some(bad) = intent.discard {
        tracing::info!(%path, file = bad, "trashing an upload that did not arrive intact");
        trash_ok(client.file_delete(FileId(bad)).await)?;
    }
    let ours: Vec<(FileId, String)> = match intent.placed {
        Some(id) => match client.file_info(FileId(id)).await {
            // Somebody moved it out of the folder it went to: their file
            // now (synced where it is), not adopted nor trashed here. Our
            // rename may have reached it there (the run was killed before
            // its check): then it steps aside from a namesake.
            Ok(f)
                if f.status == FileStatus::Active && f.folder_id.map(|p| p.0) != intent.parent =>
            {
                tracing::info!(%path, file = id, "an upload of an interrupted run was moved away on the host meanwhile; left where it is");
                if let Some(at) = RelPath::new(&f.name) {
                    step_aside_if_doubled(
                        client,
                        f.folder_id.map(|p| p.0),
                        &at,
                        Kind::File,
                        id,
                        stamp,
                    )
                    .await?;
                }
                vec![]
            }
            Ok(f) if f.status == FileStatus::Active => vec![(f.id, f.name)],
            // In the host's trash: alone, or with its folder (a restore
            // would bring it back beside whatever took its name since;
            // sim seed 155757).
            Ok(_)
                if !tracked
                    .folder_shows_its_files(client, intent.parent)
                    .await? =>
            {
                tracing::info!(%path, file = id, "an interrupted upload is in the host's trash, maybe with its folder; looking again next pass");
                return Ok(Recovered::Unsure);
            }
            Ok(_) => vec![],
            Err(e) if e.is_not_found() => vec![],
            Err(e) => return Err(e.into()),
        },
        None => {
            let found = find_ours(
                client,
                root,
                &tracked.ids,
                intent.parent,
                path,
                local,
                source,
            )
            .await?;
            if found.is_empty()
                && !tracked
                    .folder_shows_its_files(client, intent.parent)
                    .await?
            {
                tracing::info!(%path, "an interrupted upload was not found, but its folder may be in the host's trash; looking again next pass");
                return Ok(Recovered::Unsure);
            }
            found
        }
    };
    let adopt = if unchanged {
        ours.first().cloned()
    } else {
        None
    };
    for (stray, _) in ours.iter().skip(usize::from(adopt.is_some())) {
        tracing::info!(%path, file = %stray, "trashing an unrecorded upload left by an interrupted run");
        trash_ok(client.file_delete(*stray).await)?;
    }
    let Some((id, stored)) = adopt else {
        return Ok(forget_replaced(client, path, replaces)
            .await?
            .map_or(Recovered::Abandon, Recovered::Done));
    };
    if intent.placed.is_none() {
        note_placed(id.0);
    }
    let name = match claim_name(
        client,
        intent.parent,
        path,
        Stored {
            id,
            name: &stored,
            // Read back after an interrupted run: the name may be ours
            // (a rename the run made), not one the host made unique.
            unique: false,
        },
        replaces,
        stamp,
    )
    .await?
    {
        Named::Exact => path.name().to_owned(),
        Named::Conflict(n) => {
            tracing::warn!(%path, copy = %n, "conflict: another version took this name on the host; kept both, ours as a conflicted copy");
            n
        }
        Named::Refused(_) => {
            trash_ok(client.file_delete(id).await)?;
            return Ok(forget_replaced(client, path, replaces)
                .await?
                .map_or(Recovered::Abandon, Recovered::Done));
        }
    };
    let size = local.meta.size;
    tracing::info!(%path, file = %id, "adopted an upload that reached the host before an interruption");
    Ok(Recovered::Done(vec![
        Change::Put(
            path.clone(),
            SyncedEntry {
                kind: Kind::File,
                // Read by a run that was interrupted: hashed again next scan.
                local: crate::model::LocalMeta {
                    mtime_ns: crate::model::LocalMeta::RACY_MTIME,
                    ..local.meta
                },
                hashes: Hashes {
                    sha256: local.hashes.sha256,
                    md5: None,
                },
                remote_id: id.0,
                remote_parent: intent.parent,
                remote_name: name,
                size,
            },
        ),
        // Its folder may have been trashed before it arrived: not taken for
        // deleted until a listing of the tree shows it (`engine::forget_unlisted`).
        Change::Made(Kind::File, id.0),
    ]))
}

/// The files in `parent` that an upload (or copy) of `path` whose answer
/// was lost made: untracked, of the same size, named like the upload or
/// like the copy's `source`, and with the content that was sent (SHA-256
/// compared after downloading each; without a known hash nothing is ours).
async fn find_ours(
    client: &dyn Host,
    root: &Path,
    tracked: &HashSet<u64>,
    parent: Option<u64>,
    path: &RelPath,
    local: &LocalEntry,
    source: Option<u64>,
) -> Result<Vec<(FileId, String)>, EngineError> {
    let Some(sha) = local.hashes.sha256 else {
        return Ok(vec![]);
    };
    let source_name = match source {
        Some(s) => match client.file_info(FileId(s)).await {
            Ok(f) => Some(f.name),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let listing = client.folder_listing(parent.map(FolderId)).await?;
    let mut candidates: Vec<_> = listing
        .files
        .into_iter()
        .filter(|f| {
            !tracked.contains(&f.id.0)
                && f.size == local.meta.size
                && (is_upload_variant(&f.name, path.name())
                    || source_name
                        .as_deref()
                        .is_some_and(|s| is_upload_variant(&f.name, s)))
        })
        .collect();
    candidates.sort_by_key(|f| f.id);
    let mut ours = Vec::new();
    for f in candidates.into_iter().take(MAX_COMPARED) {
        if same_content(client, root, f.id, f.size, &sha).await? {
            ours.push((f.id, f.name));
        } else {
            tracing::info!(%path, file = %f.id, "a file of the same name and size is not ours (other content); left alone");
        }
    }
    Ok(ours)
}

/// Whether remote file `id` holds exactly the content with SHA-256 `sha`
/// (downloaded into `.dcsync/tmp/` and hashed; the temp file is removed).
async fn same_content(
    client: &dyn Host,
    root: &Path,
    id: FileId,
    size: u64,
    sha: &Sha256,
) -> Result<bool, EngineError> {
    let dir = root.join(super::MARKER).join("tmp");
    std::fs::create_dir_all(&dir).map_err(super::io(&dir))?;
    let n: u64 = rand::random();
    let tmp = dir.join(format!("{n:016x}.dcsync-part"));
    let expected = crate::api::Expected {
        size: Some(size),
        md5: None,
    };
    let got = client.download_file(id, &tmp, &expected, None).await;
    let hashed = match got {
        Ok(_) => crate::scan::sha256_file(&tmp).map(|(h, _)| h),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    if let Err(e) = std::fs::remove_file(&tmp) {
        tracing::debug!(path = %tmp.display(), error = %e, "could not remove a temp file; the next pass does");
    }
    Ok(hashed.map_err(super::io(&tmp))? == *sha)
}

fn trash_ok(r: Result<(), ApiError>) -> Result<(), EngineError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
