//! The in-process host: `dcsync::api::Host` answered by the emulator's own
//! rules and store ([`dcsync_emulator::InProcess`]) without HTTP, so a seed
//! costs a fraction of what it costs through a socket. The answers are what
//! the HTTP client makes of the emulator's: `differential` in `main.rs`
//! runs random call sequences against both and compares them.
//!
//! Owns: mapping the emulator's rows and messages to the client's types and
//! error classes, and the client-side checks the engine relies on (empty
//! uploads refused before sending, downloads checked against what was
//! expected). Must never hold a host rule (those are the emulator's).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use dcsync::api::error::classify_message;
use dcsync::api::host::Host;
use dcsync::api::{
    ApiError, CopyResult, Downloaded, Expected, FileId, FileStatus, FolderId, FolderOptions,
    Listing, Package, Progress, RemoteFile, RemoteFolder, UploadedFile,
};
use dcsync_emulator::InProcess;
use dcsync_emulator::api::ApiError as EmuError;
use dcsync_emulator::store::{FileRow, FolderRow};
use futures_util::future::BoxFuture;
use md5::{Digest, Md5};

pub struct MemHost(pub InProcess);

fn err(endpoint: &'static str, e: EmuError) -> ApiError {
    match e {
        EmuError::Msg(m) => classify_message(endpoint, m),
        EmuError::Internal(e) => ApiError::Server {
            endpoint,
            status: 500,
            snippet: e.to_string(),
        },
    }
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn file(f: FileRow) -> RemoteFile {
    RemoteFile {
        id: FileId(u(f.id)),
        name: f.filename,
        size: u(f.size),
        folder_id: f.folder_id.map(u).filter(|&p| p != 0).map(FolderId),
        status: FileStatus::parse(Some(&f.status)),
        url: Some(format!("http://in-process/{}", f.short_url)),
        short_url: Some(f.short_url),
        file_type: Some(f.file_type),
        uploaded_date: Some(f.uploaded_date),
    }
}

fn folder(f: FolderRow) -> RemoteFolder {
    RemoteFolder {
        id: FolderId(u(f.id)),
        parent_id: f.parent_id.map(u).filter(|&p| p != 0).map(FolderId),
        total_size: Some(u(f.total_size)),
        is_public: f.is_public.parse().ok(),
        file_count: Some(u(f.file_count)),
        child_folder_count: Some(u(f.child_folder_count)),
        url: Some(format!("http://in-process/folder/{}", f.id)),
        date_added: f.date_added,
        name: f.name,
    }
}

/// The bytes of `blob` into `dest` as the client writes a download: a
/// private file, never through a symlink, checked against `expected`.
fn download_into(blob: &Path, dest: &Path, expected: &Expected) -> Result<Downloaded, ApiError> {
    let io = |source| ApiError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(blob).map_err(|e| ApiError::Server {
        endpoint: "download",
        status: 500,
        snippet: e.to_string(),
    })?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(dest)
        .map_err(io)?;
    out.write_all(&bytes).map_err(io)?;
    out.sync_all().map_err(io)?;
    let md5 = hex::encode(Md5::digest(&bytes));
    let size = bytes.len() as u64;
    let what = || format!("download to {}", dest.display());
    if expected.size.is_some_and(|s| s != size) {
        return Err(ApiError::Integrity {
            what: what(),
            detail: format!("{size} bytes, the host said {:?}", expected.size),
        });
    }
    if let Some(want) = &expected.md5
        && !want.eq_ignore_ascii_case(&md5)
    {
        return Err(ApiError::Integrity {
            what: what(),
            detail: format!("MD5 is {md5}, the host said {want}"),
        });
    }
    Ok(Downloaded { size, md5 })
}

impl Host for MemHost {
    fn account_package(&self) -> BoxFuture<'_, Result<Package, ApiError>> {
        let c = self.0.config();
        let p = Package {
            label: Some("Premium Account".into()),
            max_upload_size: Some(c.max_upload_size),
            can_upload: Some(u64::from(c.can_upload)),
            max_storage_bytes: Some(c.max_storage_bytes),
            concurrent_uploads: Some(u64::from(c.concurrent_uploads)),
            concurrent_downloads: Some(0),
            max_download_filesize_allowed: Some(0),
            max_remote_download_urls: Some(50),
            level_type: Some("paid user".into()),
        };
        Box::pin(async move { Ok(p) })
    }
    fn file_info(&self, id: FileId) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        Box::pin(async move {
            self.0
                .file_info(id.0)
                .map(file)
                .map_err(|e| err("file/info", e))
        })
    }
    fn file_rename<'a>(
        &'a self,
        id: FileId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFile, ApiError>> {
        Box::pin(async move {
            self.0
                .file_rename(id.0, new_name)
                .map(file)
                .map_err(|e| err("file/edit", e))
        })
    }
    fn file_delete(&self, id: FileId) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            self.0
                .file_delete(id.0)
                .map(|_| ())
                .map_err(|e| err("file/delete", e))
        })
    }
    fn file_move(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        Box::pin(async move {
            self.0
                .file_move(id.0, to.map(|f| f.0))
                .map(file)
                .map_err(|e| err("file/move", e))
        })
    }
    fn file_copy(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<CopyResult, ApiError>> {
        Box::pin(async move {
            self.0
                .file_copy(id.0, to.map(|f| f.0))
                .map(|(o, c)| CopyResult {
                    original: file(o),
                    copy: file(c),
                })
                .map_err(|e| err("file/copy", e))
        })
    }
    fn folder_create<'a>(
        &'a self,
        name: &'a str,
        parent: Option<FolderId>,
        opts: &'a FolderOptions,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        Box::pin(async move {
            self.0
                .folder_create(
                    name,
                    parent.map(|p| p.0),
                    opts.is_public,
                    opts.access_password_md5.as_deref(),
                )
                .map(folder)
                .map_err(|e| err("folder/create", e))
        })
    }
    fn folder_listing(&self, parent: Option<FolderId>) -> BoxFuture<'_, Result<Listing, ApiError>> {
        Box::pin(async move {
            let (folders, files) = self
                .0
                .folder_listing(parent.map(|p| p.0))
                .map_err(|e| err("folder/listing", e))?;
            Ok(Listing {
                folders: folders.into_iter().map(folder).collect(),
                files: files
                    .into_iter()
                    .map(file)
                    // A listing's file objects carry no upload date.
                    .map(|f| RemoteFile {
                        uploaded_date: None,
                        ..f
                    })
                    .filter(|f| f.status == FileStatus::Active)
                    .collect(),
            })
        })
    }
    fn folder_info(&self, id: FolderId) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        Box::pin(async move {
            self.0
                .folder_info(id.0)
                .map(folder)
                .map_err(|e| err("folder/info", e))
        })
    }
    fn folder_rename<'a>(
        &'a self,
        id: FolderId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        Box::pin(async move {
            self.0
                .folder_rename(id.0, new_name)
                .map(folder)
                .map_err(|e| err("folder/edit", e))
        })
    }
    fn folder_delete(&self, id: FolderId) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            self.0
                .folder_delete(id.0)
                .map_err(|e| err("folder/delete", e))
        })
    }
    fn folder_move(
        &self,
        id: FolderId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        Box::pin(async move {
            self.0
                .folder_move(id.0, to.map(|f| f.0))
                .map(folder)
                .map_err(|e| err("folder/move", e))
        })
    }
    fn upload_file<'a>(
        &'a self,
        path: &'a Path,
        name: &'a str,
        folder: Option<FolderId>,
        _progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<UploadedFile, ApiError>> {
        Box::pin(async move {
            const EP: &str = "file/upload";
            let len = std::fs::metadata(path)
                .map_err(|source| ApiError::Io {
                    path: path.to_path_buf(),
                    source,
                })?
                .len();
            if len == 0 {
                return Err(ApiError::Api {
                    endpoint: EP,
                    message: "the host cannot store empty files (Filesize received was zero.)"
                        .into(),
                });
            }
            let f = self
                .0
                .file_upload(path, name, folder.map(|f| f.0))
                .map_err(|e| err(EP, e))?;
            Ok(UploadedFile {
                id: FileId(u(f.id)),
                name: f.filename,
                size: u(f.size),
                md5: f.md5,
                url: Some(format!("http://in-process/{}", f.short_url)),
                short_url: Some(f.short_url),
            })
        })
    }
    fn download_file<'a>(
        &'a self,
        id: FileId,
        dest: &'a Path,
        expected: &'a Expected,
        _progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<Downloaded, ApiError>> {
        Box::pin(async move {
            let (_, blob) = self
                .0
                .file_download(id.0)
                .map_err(|e| err("file/download", e))?;
            download_into(&blob, dest, expected)
        })
    }
}
