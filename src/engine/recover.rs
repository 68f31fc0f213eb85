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
use crate::api::names::is_upload_variant;
use crate::api::{ApiError, Client, FileId, FolderId, RemoteFolder};
use crate::clock::{self, Clock};
use crate::model::*;
use crate::plan::Op;
use crate::state::{Change, StateDb};
use std::collections::HashSet;
use std::path::Path;

/// What the journal stores for a remote-changing op.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Intent {
    pub op: Op,
    /// The remote folder the op worked in (for uploads, copies, creates).
    pub parent: Option<u64>,
}

pub(crate) async fn run(
    client: &Client,
    db: &mut StateDb,
    root: &Path,
    clock: &dyn Clock,
) -> Result<(), EngineError> {
    let pending = db.journal_pending()?;
    if pending.is_empty() {
        return Ok(());
    }
    let tracked: HashSet<u64> = db.load_synced()?.values().map(|e| e.remote_id).collect();
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
                let changes = recover_upload(
                    client,
                    root,
                    &tracked,
                    intent.parent,
                    path,
                    local,
                    *replaces,
                )
                .await?;
                match changes {
                    Some(c) => db.journal_done(id, &c, &now)?,
                    None => db.journal_abandon(id, &now)?,
                }
            }
            _ => db.journal_abandon(id, &now)?,
        }
    }
    Ok(())
}

/// Finds uploads of `path` that reached the host but were never recorded.
/// Adopts one when the local file is unchanged; trashes the others.
async fn recover_upload(
    client: &Client,
    root: &Path,
    tracked: &HashSet<u64>,
    parent: Option<u64>,
    path: &RelPath,
    local: &LocalEntry,
    replaces: Option<u64>,
) -> Result<Option<Vec<Change>>, EngineError> {
    let listing = client.folder_listing(parent.map(FolderId)).await?;
    let mut candidates: Vec<_> = listing
        .files
        .into_iter()
        .filter(|f| {
            !tracked.contains(&f.id.0)
                && f.size == local.meta.size
                && is_upload_variant(&f.name, path.name())
        })
        .collect();
    candidates.sort_by_key(|f| f.id);
    if candidates.is_empty() {
        return Ok(None);
    }
    let unchanged = std::fs::symlink_metadata(root.join(path.as_str()))
        .map(|m| super::exec::meta_of(&m))
        .is_ok_and(|m| {
            m.ino == local.meta.ino
                && m.size == local.meta.size
                && m.mtime_ns == local.meta.mtime_ns
        });
    let adopt = if unchanged {
        candidates.first().cloned()
    } else {
        None
    };
    for stray in candidates.iter().skip(usize::from(adopt.is_some())) {
        tracing::info!(%path, file = %stray.id, "trashing an unrecorded upload left by an interrupted run");
        trash_ok(client.file_delete(stray.id).await)?;
    }
    let Some(f) = adopt else {
        return Ok(None);
    };
    if let Some(old) = replaces {
        trash_ok(client.file_delete(FileId(old)).await)?;
    }
    if f.name != path.name() {
        client.file_rename(f.id, path.name()).await?;
    }
    tracing::info!(%path, file = %f.id, "adopted an upload that reached the host before an interruption");
    Ok(Some(vec![Change::Put(
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
            remote_id: f.id.0,
            remote_parent: parent,
            remote_name: path.name().to_owned(),
            size: f.size,
        },
    )]))
}

fn trash_ok(r: Result<(), ApiError>) -> Result<(), EngineError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A folder named `name` in `parent` that Synced does not track: the one a
/// create whose answer was lost made.
pub(crate) async fn find_new_folder(
    client: &Client,
    tracked: HashSet<u64>,
    parent: Option<u64>,
    name: &str,
) -> Result<Option<RemoteFolder>, ApiError> {
    let listing = client.folder_listing(parent.map(FolderId)).await?;
    Ok(listing
        .folders
        .into_iter()
        .find(|f| f.name == name && !tracked.contains(&f.id.0)))
}
