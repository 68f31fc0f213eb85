//! "Create a folder, and adopt it if the answer was lost": the one helper
//! the engine (new remote folders), the snapshot (a missing remote root) and
//! `dcsync remote mkdir` use. `folder/create` does no uniqueness check, so a
//! create repeated after a lost answer makes a second folder of the name;
//! instead, the parent is listed and a folder of that name the caller did
//! not know before is taken as the one the lost call made.
//!
//! Owns: the look after a lost `folder/create` answer. Must never create a
//! folder twice on its own, and never take a folder the caller already knew
//! for the new one.

use super::host::Host;
use super::{ApiError, FolderId, FolderOptions, RemoteFolder};

/// How [`create_folder`] ended, when it did not fail.
#[derive(Debug)]
pub enum Made {
    /// The host answered: this folder was made.
    Created(RemoteFolder),
    /// The answer was lost and a new folder of the name is in the parent:
    /// that one (the oldest, when there are several).
    Found(RemoteFolder),
    /// The answer was lost and no new folder of the name is in the parent:
    /// nothing was made (the error is the one behind the lost answer). The
    /// caller may try again.
    NotMade(ApiError),
}

/// Creates `name` in `parent`. When the answer is lost, lists `parent` and
/// adopts a folder of that name for which `known` is false (folders the
/// caller saw before, or tracks). Errors: the create's own (nothing was
/// made), or `OutcomeUnknown` when the look itself failed (a folder may have
/// been made: the caller must look again before creating).
pub async fn create_folder(
    host: &dyn Host,
    name: &str,
    parent: Option<FolderId>,
    opts: &FolderOptions,
    known: &(dyn Fn(FolderId) -> bool + Sync),
) -> Result<Made, ApiError> {
    let source = match host.folder_create(name, parent, opts).await {
        Ok(f) => return Ok(Made::Created(f)),
        Err(ApiError::OutcomeUnknown { source, .. }) => source,
        Err(e) => return Err(e),
    };
    let listing = match host.folder_listing(parent).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(
                name,
                "the look for a folder whose create answer was lost failed: {e}"
            );
            return Err(ApiError::OutcomeUnknown {
                endpoint: "folder/create",
                source,
            });
        }
    };
    Ok(listing
        .folders
        .into_iter()
        .filter(|f| f.name == name && !known(f.id))
        .min_by_key(|f| f.id)
        .map_or(Made::NotMade(*source), Made::Found))
}
