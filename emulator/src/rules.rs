//! Each endpoint's effect on the account, typed: the checks a request meets
//! once its parameters are read and its token is accepted, in the real
//! server's order, and the store calls that follow.
//!
//! Owns: which file or folder a call may touch (active vs trashed, existing
//! destinations, unknown parents meaning the root), the upload refusals
//! (zero bytes, package limits, storage), and the error messages of those
//! checks. Shared by the HTTP handlers (`api`) and the in-process host
//! ([`crate::InProcess`]) that dcsync's simulation drives, so the two cannot
//! drift. Must never read a request or shape an answer (that is `api`), run
//! SQL (that is `store`), or decide faults.

use std::path::Path;

use crate::AppState;
use crate::api::ApiError;
use crate::store::{self, FileRow, FolderRow, NewFile};

pub const FILE_NOT_FOUND: &str = "Could not find file based on file_id.";
pub const FOLDER_NOT_FOUND: &str = "Could not find folder based on folder_id.";
pub const MOVE_DEST_NOT_FOUND: &str =
    "Could not find the destination folder id defined by new_parent_folder_id.";
pub const COPY_DEST_NOT_FOUND: &str =
    "Could not find the destination folder id defined by copy_to_folder_id.";
const INTO_ITSELF: &str = "Can not move a folder into itself or one of its sub-folders.";

fn msg(m: impl Into<String>) -> ApiError {
    ApiError::Msg(m.into())
}

/// A folder parameter as sent: `null` (the root), a number, or anything
/// else (which no folder has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRef {
    Root,
    Id(i64),
    Invalid,
}

impl FolderRef {
    pub fn parse(v: &str) -> FolderRef {
        if v.eq_ignore_ascii_case("null") {
            FolderRef::Root
        } else {
            v.parse::<i64>().map_or(FolderRef::Invalid, FolderRef::Id)
        }
    }
}

/// A file that is not in the trash.
pub fn active_file(st: &AppState, id: i64) -> Result<FileRow, ApiError> {
    match st.store.file_get(id)? {
        Some(f) if f.status == "active" => Ok(f),
        _ => Err(msg(FILE_NOT_FOUND)),
    }
}

/// A file, trashed or not (`/file/info` answers for both).
pub fn any_file(st: &AppState, id: i64) -> Result<FileRow, ApiError> {
    st.store.file_get(id)?.ok_or_else(|| msg(FILE_NOT_FOUND))
}

/// A folder (trashed folders look like live ones: see API-NOTES.md).
pub fn folder(st: &AppState, id: i64) -> Result<FolderRow, ApiError> {
    st.store
        .folder_get(id)?
        .ok_or_else(|| msg(FOLDER_NOT_FOUND))
}

/// An optional folder for uploads and new folders: none, the root, or a
/// folder that does not exist all mean the root.
pub fn folder_or_root(st: &AppState, v: Option<FolderRef>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(FolderRef::Id(id)) if id > 0 && st.store.folder_exists(id)? => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// A move or copy destination: the root or an existing folder.
fn destination(st: &AppState, v: FolderRef, not_found: &str) -> Result<Option<i64>, ApiError> {
    match v {
        FolderRef::Root => Ok(None),
        FolderRef::Id(id) if st.store.folder_exists(id)? => Ok(Some(id)),
        _ => Err(msg(not_found)),
    }
}

/// Refuse when storing `size` more bytes would exceed the account's storage.
pub fn check_storage(st: &AppState, size: u64) -> Result<(), ApiError> {
    let max = st.config.max_storage_bytes;
    if max > 0 {
        let used = u64::try_from(st.store.active_bytes()?).unwrap_or(0);
        if used.saturating_add(size) > max {
            return Err(msg(
                "You have reached the maximum permitted storage space for your account, please delete some files and try again.",
            ));
        }
    }
    Ok(())
}

/// `/file/edit`: a new name (no uniqueness check; cut to the column width),
/// MIME type and folder (`null` moves to the root, an unknown folder is
/// ignored: a guess).
pub fn file_edit(
    st: &AppState,
    id: i64,
    filename: Option<&str>,
    file_type: Option<&str>,
    folder: Option<FolderRef>,
) -> Result<FileRow, ApiError> {
    let f = active_file(st, id)?;
    let filename = filename.map(|n| store::truncate_bytes(n, 255));
    let folder = match folder {
        Some(FolderRef::Root) => Some(None),
        Some(FolderRef::Id(id)) if st.store.folder_exists(id)? => Some(Some(id)),
        _ => None,
    };
    st.store
        .file_update(f.id, filename.as_deref(), file_type, folder)?;
    any_file(st, id)
}

/// `/file/delete`: into the host's trash, detached from its folder.
pub fn file_delete(st: &AppState, id: i64) -> Result<FileRow, ApiError> {
    let f = active_file(st, id)?;
    st.store.file_trash(f.id)?;
    any_file(st, id)
}

/// `/file/move` (no uniqueness check).
pub fn file_move(st: &AppState, id: i64, dest: FolderRef) -> Result<FileRow, ApiError> {
    let f = active_file(st, id)?;
    let dest = destination(st, dest, MOVE_DEST_NOT_FOUND)?;
    st.store.file_update(f.id, None, None, Some(dest))?;
    any_file(st, id)
}

/// `/file/copy`: the original and the copy (same name, no uniqueness check).
pub fn file_copy(
    st: &AppState,
    id: i64,
    dest: FolderRef,
    ip: &str,
) -> Result<(FileRow, FileRow), ApiError> {
    let f = active_file(st, id)?;
    let dest = destination(st, dest, COPY_DEST_NOT_FOUND)?;
    check_storage(st, u64::try_from(f.size).unwrap_or(0))?;
    let new = st.store.file_copy(&f, dest, ip, &st.now_str())?;
    Ok((f, new))
}

/// An uploaded file as received: its content in a temporary file of the
/// store (moved into the blob store when kept), the name and type sent.
#[derive(Debug)]
pub struct Upload<'a> {
    pub temp: &'a Path,
    pub name: &'a str,
    pub content_type: Option<&'a str>,
    pub size: u64,
    pub md5: &'a str,
}

/// `/file/upload` once a file was received: the refusals, then the stored
/// file (renamed `name (2).ext` when an active file has its name).
pub fn file_upload(
    st: &AppState,
    folder: Option<FolderRef>,
    up: &Upload<'_>,
    ip: &str,
) -> Result<FileRow, ApiError> {
    if up.size == 0 {
        return Err(msg("Filesize received was zero."));
    }
    // Account restrictions (messages are guesses; kept as error envelopes).
    if !st.config.can_upload {
        return Err(msg("Your account level does not permit uploading files."));
    }
    if up.size > st.config.max_upload_size {
        return Err(msg(format!(
            "The file is too large. Max size is {} bytes.",
            st.config.max_upload_size
        )));
    }
    check_storage(st, up.size)?;
    let folder = folder_or_root(st, folder)?;
    let name = store::clean_upload_name(up.name);
    let file_type = up
        .content_type
        .filter(|t| !t.is_empty())
        .map_or_else(|| store::mime_of(&name).to_string(), str::to_string);
    let new = NewFile {
        folder_id: folder,
        name,
        file_type,
        size: i64::try_from(up.size).unwrap_or(i64::MAX),
        md5: up.md5.to_string(),
        uploaded_ip: ip.to_string(),
        now: st.now_str(),
    };
    Ok(st.store.file_insert_uploaded(&new, up.temp)?)
}

/// `/folder/create`: an unknown parent puts the folder in the root (a
/// guess, like uploads). No uniqueness check.
pub fn folder_create(
    st: &AppState,
    parent: Option<FolderRef>,
    name: &str,
    is_public: Option<&str>,
    access_password: Option<&str>,
) -> Result<FolderRow, ApiError> {
    let parent = folder_or_root(st, parent)?;
    let id = st.store.folder_create(
        parent,
        &store::truncate_bytes(name, 255),
        is_public.unwrap_or("0"),
        access_password,
        &st.now_str(),
    )?;
    folder(st, id)
}

/// `/folder/listing`: the folders and active files in `parent` (`None` =
/// the root, which also lists trashed folders: see API-NOTES.md).
pub fn folder_listing(
    st: &AppState,
    parent: Option<i64>,
) -> Result<(Vec<FolderRow>, Vec<FileRow>), ApiError> {
    let parent = match parent {
        Some(id) => Some(folder(st, id)?.id),
        None => None,
    };
    Ok(st.store.listing(parent)?)
}

/// `/folder/edit`: name, visibility and password; `parent` `null` moves to
/// the root, an existing folder moves there (without touching
/// `date_updated`), anything else is ignored (a guess).
pub fn folder_edit(
    st: &AppState,
    id: i64,
    name: Option<&str>,
    is_public: Option<&str>,
    access_password: Option<&str>,
    parent: Option<FolderRef>,
) -> Result<FolderRow, ApiError> {
    let f = folder(st, id)?;
    let name = name.map(|n| store::truncate_bytes(n, 255));
    st.store
        .folder_update(f.id, name.as_deref(), is_public, access_password)?;
    let dest = match parent {
        Some(FolderRef::Root) => Some(None),
        Some(FolderRef::Id(pid)) if st.store.folder_exists(pid)? => Some(Some(pid)),
        _ => None,
    };
    if let Some(dest) = dest
        && st.store.folder_move(f.id, dest, None)?.is_err()
    {
        return Err(msg(INTO_ITSELF));
    }
    folder(st, id)
}

/// `/folder/delete`: the folder and everything below it into the trash.
pub fn folder_delete(st: &AppState, id: i64) -> Result<(), ApiError> {
    let f = folder(st, id)?;
    st.store.folder_delete(f.id)?;
    Ok(())
}

/// `/folder/move`. The real server's answer to a move into the folder
/// itself or one of its descendants is unknown; the emulator refuses it.
pub fn folder_move(st: &AppState, id: i64, dest: FolderRef) -> Result<FolderRow, ApiError> {
    let f = folder(st, id)?;
    let dest = destination(st, dest, MOVE_DEST_NOT_FOUND)?;
    if st
        .store
        .folder_move(f.id, dest, Some(&st.now_str()))?
        .is_err()
    {
        return Err(msg(INTO_ITSELF));
    }
    folder(st, id)
}
