//! The seam between the sync engine and a host: [`Host`] is every call the
//! engine, the executor, recovery and the snapshot make, with one real
//! implementation (the HTTP [`Client`]) and the simulator's (a client wrapped
//! so that faults, crashes and other users can act at every call, in
//! `tests/sim`). Code above this seam takes `&dyn Host` and never names
//! `Client`, so the simulation runs the production engine, not a model.
//!
//! Owns: the list of host operations the engine may use. Must never add
//! behaviour of its own: the methods mean exactly what the `Client` methods
//! of the same name mean (retries, error classes, "outcome unknown").

use std::path::Path;

use futures_util::future::BoxFuture;

use super::{
    ApiError, Client, CopyResult, Downloaded, Expected, FileId, FolderId, FolderOptions, Listing,
    Package, Progress, RemoteFile, RemoteFolder, UploadedFile,
};

/// The host calls the engine makes. See the module docs.
pub trait Host: Send + Sync {
    fn account_package(&self) -> BoxFuture<'_, Result<Package, ApiError>>;
    fn file_info(&self, id: FileId) -> BoxFuture<'_, Result<RemoteFile, ApiError>>;
    fn file_rename<'a>(
        &'a self,
        id: FileId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFile, ApiError>>;
    fn file_delete(&self, id: FileId) -> BoxFuture<'_, Result<(), ApiError>>;
    fn file_move(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFile, ApiError>>;
    fn file_copy(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<CopyResult, ApiError>>;
    fn folder_create<'a>(
        &'a self,
        name: &'a str,
        parent: Option<FolderId>,
        opts: &'a FolderOptions,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>>;
    fn folder_listing(&self, parent: Option<FolderId>) -> BoxFuture<'_, Result<Listing, ApiError>>;
    fn folder_info(&self, id: FolderId) -> BoxFuture<'_, Result<RemoteFolder, ApiError>>;
    fn folder_rename<'a>(
        &'a self,
        id: FolderId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>>;
    fn folder_delete(&self, id: FolderId) -> BoxFuture<'_, Result<(), ApiError>>;
    fn folder_move(
        &self,
        id: FolderId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFolder, ApiError>>;
    fn upload_file<'a>(
        &'a self,
        path: &'a Path,
        name: &'a str,
        folder: Option<FolderId>,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<UploadedFile, ApiError>>;
    fn download_file<'a>(
        &'a self,
        id: FileId,
        dest: &'a Path,
        expected: &'a Expected,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<Downloaded, ApiError>>;
}

impl Host for Client {
    fn account_package(&self) -> BoxFuture<'_, Result<Package, ApiError>> {
        Box::pin(Client::account_package(self))
    }
    fn file_info(&self, id: FileId) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        Box::pin(Client::file_info(self, id))
    }
    fn file_rename<'a>(
        &'a self,
        id: FileId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFile, ApiError>> {
        Box::pin(Client::file_rename(self, id, new_name))
    }
    fn file_delete(&self, id: FileId) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(Client::file_delete(self, id))
    }
    fn file_move(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFile, ApiError>> {
        Box::pin(Client::file_move(self, id, to))
    }
    fn file_copy(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<CopyResult, ApiError>> {
        Box::pin(Client::file_copy(self, id, to))
    }
    fn folder_create<'a>(
        &'a self,
        name: &'a str,
        parent: Option<FolderId>,
        opts: &'a FolderOptions,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        Box::pin(Client::folder_create(self, name, parent, opts))
    }
    fn folder_listing(&self, parent: Option<FolderId>) -> BoxFuture<'_, Result<Listing, ApiError>> {
        Box::pin(Client::folder_listing(self, parent))
    }
    fn folder_info(&self, id: FolderId) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        Box::pin(Client::folder_info(self, id))
    }
    fn folder_rename<'a>(
        &'a self,
        id: FolderId,
        new_name: &'a str,
    ) -> BoxFuture<'a, Result<RemoteFolder, ApiError>> {
        Box::pin(Client::folder_rename(self, id, new_name))
    }
    fn folder_delete(&self, id: FolderId) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(Client::folder_delete(self, id))
    }
    fn folder_move(
        &self,
        id: FolderId,
        to: Option<FolderId>,
    ) -> BoxFuture<'_, Result<RemoteFolder, ApiError>> {
        Box::pin(Client::folder_move(self, id, to))
    }
    fn upload_file<'a>(
        &'a self,
        path: &'a Path,
        name: &'a str,
        folder: Option<FolderId>,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<UploadedFile, ApiError>> {
        Box::pin(Client::upload_file(self, path, name, folder, progress))
    }
    fn download_file<'a>(
        &'a self,
        id: FileId,
        dest: &'a Path,
        expected: &'a Expected,
        progress: Option<Progress>,
    ) -> BoxFuture<'a, Result<Downloaded, ApiError>> {
        Box::pin(Client::download_file(self, id, dest, expected, progress))
    }
}
