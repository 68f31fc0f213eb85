//! The simulator's side of the `dcsync::api::Host` seam: the real HTTP client
//! against a real (in-process) emulator, so the host's rules are the
//! emulator's own, with the world able to act around every call: other users
//! change things while the engine waits, calls fail before or after the host
//! did the work, and the process "crashes" (the call never returns and the
//! runner drops the whole pass).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use dcsync::api::host::Host;
use dcsync::api::{
    ApiError, CopyResult, Downloaded, Expected, FileId, FolderId, FolderOptions, Listing, Package,
    Progress, RemoteFile, RemoteFolder, UploadedFile,
};
use futures_util::future::BoxFuture;

use crate::world::Shared;

/// What the world decided before a call.
pub enum Before {
    Go,
    Fail(ApiError),
    Crash,
}

/// What the world decided after a call.
pub enum After {
    Keep,
    /// The host did the work; the answer never arrives.
    LoseAnswer,
    Crash,
}

pub struct SimHost {
    pub inner: Arc<dyn Host>,
    pub shared: Arc<Shared>,
    /// One engine call at a time: what the users do around a call then
    /// happens between the host's answers, never during one (a user who
    /// checks a name and then uses it does so without a race).
    pub one_at_a_time: tokio::sync::Mutex<()>,
}

/// Whether a repeat of the call could do the work twice (the client then
/// reports a lost answer as "outcome unknown").
fn is_unsafe(call: &str) -> bool {
    matches!(
        call,
        "file/upload"
            | "file/edit"
            | "file/delete"
            | "file/move"
            | "file/copy"
            | "folder/create"
            | "folder/edit"
            | "folder/move"
    )
}

pub fn lost(call: &'static str) -> ApiError {
    let transport = ApiError::Transport {
        endpoint: call,
        detail: "simulated: connection reset after the request was sent".into(),
        not_sent: false,
    };
    if is_unsafe(call) {
        ApiError::OutcomeUnknown {
            endpoint: call,
            source: Box::new(transport),
        }
    } else {
        transport
    }
}

impl SimHost {
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: &'static str,
        what: String,
        fut: impl Future<Output = Result<T, ApiError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, ApiError>> {
        self.around_delete(call, what, None, fut)
    }

    /// `around`; for a `folder/delete`, `trashing` is the folder, looked at
    /// right before the host acts (see `Shared::before_folder_delete`).
    fn around_delete<'a, T: Send + 'a>(
        &'a self,
        call: &'static str,
        what: String,
        trashing: Option<FolderId>,
        fut: impl Future<Output = Result<T, ApiError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, ApiError>> {
        Box::pin(async move {
            let _turn = self.one_at_a_time.lock().await;
            self.shared
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.shared.feed_events().await;
            match self.shared.before(call, &what).await {
                Before::Go => {}
                Before::Fail(e) => return Err(e),
                Before::Crash => {
                    self.shared.crash();
                    std::future::pending::<()>().await;
                }
            }
            if let Some(folder) = trashing {
                self.shared.before_folder_delete(folder).await;
            }
            let r = fut.await;
            match self.shared.after(call, &what, r.is_ok()).await {
                After::Keep => r,
                After::LoseAnswer => Err(lost(call)),
                After::Crash => {
                    self.shared.crash();
                    std::future::pending::<()>().await;
                    r
                }
            }
        })
    }
}

/// A folder id for the trace (`root` for the account root).
fn fid(f: Option<FolderId>) -> String {
    f.map_or("root".into(), |f| format!("folder {}", f.0))
}

impl Host for SimHost {
    fn account_package(&self) -> BoxFuture<'_, Result<Package, ApiError>> {
        self.around(
            "account/package",
            "account/package".into(),
            self.inner.account_package(),
        )
    }
    fn file_info(&self, id: FileId) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        self.around(
            "file/info",
            format!("file/info file {}", id.0),
            self.inner.file_info(id),
        )
    }
    fn file_rename<'a>(
        &'a self,
        id: FileId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFile, ApiError>> {
        self.around(
            "file/edit",
            format!("file/edit file {} name {new_name}", id.0),
            self.inner.file_rename(id, new_name),
        )
    }
    fn file_delete(&self, id: FileId) -> BoxFuture<'_, Result<(), ApiError>> {
        self.around(
            "file/delete",
            format!("file/delete file {}", id.0),
            self.inner.file_delete(id),
        )
    }
    fn file_move(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        self.around(
            "file/move",
            format!("file/move file {} to {}", id.0, fid(to)),
            self.inner.file_move(id, to),
        )
    }
    fn file_copy(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<CopyResult, ApiError>> {
        self.around(
            "file/copy",
            format!("file/copy file {} to {}", id.0, fid(to)),
            self.inner.file_copy(id, to),
        )
    }
    fn folder_create<'a>(
        &'a self,
        name: &'a str,
        parent: Option<FolderId>,
        opts: &'a FolderOptions,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        self.around(
            "folder/create",
            format!("folder/create {name} in {}", fid(parent)),
            self.inner.folder_create(name, parent, opts),
        )
    }
    fn folder_listing(&self, parent: Option<FolderId>) -> BoxFuture<'_, Result<Listing, ApiError>> {
        Box::pin(async move {
            let r = self
                .around(
                    "folder/listing",
                    format!("folder/listing {}", fid(parent)),
                    self.inner.folder_listing(parent),
                )
                .await;
            if let (Ok(l), Some(p)) = (&r, parent) {
                self.shared.seen_by_engine(p, l).await;
            }
            r
        })
    }
    fn folder_info(&self, id: FolderId) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        self.around(
            "folder/info",
            format!("folder/info folder {}", id.0),
            self.inner.folder_info(id),
        )
    }
    fn folder_rename<'a>(
        &'a self,
        id: FolderId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        self.around(
            "folder/edit",
            format!("folder/edit folder {} name {new_name}", id.0),
            self.inner.folder_rename(id, new_name),
        )
    }
    fn folder_delete(&self, id: FolderId) -> BoxFuture<'_, Result<(), ApiError>> {
        self.around_delete(
            "folder/delete",
            format!("folder/delete folder {}", id.0),
            Some(id),
            self.inner.folder_delete(id),
        )
    }
    fn folder_move(
        &self,
        id: FolderId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        self.around(
            "folder/move",
            format!("folder/move folder {} to {}", id.0, fid(to)),
            self.inner.folder_move(id, to),
        )
    }
    fn upload_file<'a>(
        &'a self,
        path: &'a Path,
        name: &'a str,
        folder: Option<FolderId>,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<UploadedFile, ApiError>> {
        self.around(
            "file/upload",
            format!("file/upload {name} to {}", fid(folder)),
            self.inner.upload_file(path, name, folder, progress),
        )
    }
    fn download_file<'a>(
        &'a self,
        id: FileId,
        dest: &'a Path,
        expected: &'a Expected,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<Downloaded, ApiError>> {
        self.around(
            "download",
            format!("download file {}", id.0),
            self.inner.download_file(id, dest, expected, progress),
        )
    }
}
