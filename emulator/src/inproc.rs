//! [`InProcess`]: the emulated host without HTTP, for simulations that make
//! hundreds of thousands of calls. Each method is one endpoint as a typed
//! call: the same parameter cleaning as a form body (trimmed, tags
//! stripped, empty meaning absent), then the same [`crate::rules`] and
//! [`crate::store`] as the HTTP handlers, so both answer alike.
//!
//! Owns: turning typed arguments into what a request would carry. Must never
//! hold a rule of the host (those are in `rules` and `store`); must never
//! authenticate (no tokens in-process) or decide faults (the caller does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use md5::{Digest, Md5};

use crate::api::ApiError;
use crate::rules::{self, FolderRef};
use crate::store::{self, FileRow, FolderRow};
use crate::{AppState, Config, Error};

/// Where in-process calls come from (the HTTP handlers use the peer's address).
const IP: &str = "127.0.0.1";

/// An emulated host answering typed calls in-process. See the module docs.
#[derive(Debug, Clone)]
pub struct InProcess {
    st: Arc<AppState>,
}

/// A form value as the HTTP handlers read it: trimmed, tags stripped, and
/// absent when empty.
fn param(v: &str) -> Option<String> {
    Some(store::clean_value(v)).filter(|v| !v.is_empty())
}

fn id(v: u64, not_found: &str) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| ApiError::Msg(not_found.to_string()))
}

fn dest(v: Option<u64>) -> FolderRef {
    match v {
        None => FolderRef::Root,
        Some(v) => i64::try_from(v).map_or(FolderRef::Invalid, FolderRef::Id),
    }
}

impl InProcess {
    /// Opens (or creates) the host's state in `config.data_dir`.
    pub fn open(config: Config) -> Result<Self, Error> {
        let store = store::Store::open(&config.data_dir)?;
        Self::with_store(config, store)
    }

    /// A host whose metadata is in memory only ([`store::Store::open_volatile`]).
    pub fn volatile(config: Config) -> Result<Self, Error> {
        let store = store::Store::open_volatile(&config.data_dir)?;
        Self::with_store(config, store)
    }

    fn with_store(config: Config, store: store::Store) -> Result<Self, Error> {
        let public_base = config
            .public_url
            .clone()
            .unwrap_or_else(|| "http://in-process".to_string());
        Ok(InProcess {
            st: Arc::new(AppState::new(config, store, public_base)?),
        })
    }

    /// The settings it was opened with (package limits, clock).
    pub fn config(&self) -> &Config {
        &self.st.config
    }

    /// `/file/info` (trashed files too).
    pub fn file_info(&self, file: u64) -> Result<FileRow, ApiError> {
        rules::any_file(&self.st, id(file, rules::FILE_NOT_FOUND)?)
    }

    /// `/file/edit` with a new name.
    pub fn file_rename(&self, file: u64, name: &str) -> Result<FileRow, ApiError> {
        let name = param(name);
        rules::file_edit(
            &self.st,
            id(file, rules::FILE_NOT_FOUND)?,
            name.as_deref(),
            None,
            None,
        )
    }

    /// `/file/delete`.
    pub fn file_delete(&self, file: u64) -> Result<FileRow, ApiError> {
        rules::file_delete(&self.st, id(file, rules::FILE_NOT_FOUND)?)
    }

    /// `/file/move` (`None` = the root).
    pub fn file_move(&self, file: u64, to: Option<u64>) -> Result<FileRow, ApiError> {
        rules::file_move(&self.st, id(file, rules::FILE_NOT_FOUND)?, dest(to))
    }

    /// `/file/copy`: the original and the copy.
    pub fn file_copy(&self, file: u64, to: Option<u64>) -> Result<(FileRow, FileRow), ApiError> {
        rules::file_copy(&self.st, id(file, rules::FILE_NOT_FOUND)?, dest(to), IP)
    }

    /// `/file/upload` of the file at `path`, sent as `name`.
    pub fn file_upload(
        &self,
        path: &Path,
        name: &str,
        folder: Option<u64>,
    ) -> Result<FileRow, ApiError> {
        let temp = Temp(self.st.store.temp_path());
        let bytes = std::fs::read(path).map_err(Error::from)?;
        std::fs::write(&temp.0, &bytes).map_err(Error::from)?;
        let md5 = hex::encode(Md5::digest(&bytes));
        rules::file_upload(
            &self.st,
            folder.map(|f| dest(Some(f))),
            &rules::Upload {
                temp: &temp.0,
                name,
                content_type: Some("application/octet-stream"),
                size: bytes.len() as u64,
                md5: &md5,
            },
            IP,
        )
    }

    /// A download of an active file: its row and where its content is
    /// (`/file/download`, then the GET of its link).
    pub fn file_download(&self, file: u64) -> Result<(FileRow, PathBuf), ApiError> {
        let f = rules::active_file(&self.st, id(file, rules::FILE_NOT_FOUND)?)?;
        self.st
            .store
            .file_touch_download(f.id, &self.st.now_str())?;
        let blob = self.st.store.blob_path(f.id);
        Ok((f, blob))
    }

    /// `/folder/create`.
    pub fn folder_create(
        &self,
        name: &str,
        parent: Option<u64>,
        is_public: Option<u8>,
        access_password: Option<&str>,
    ) -> Result<FolderRow, ApiError> {
        let Some(name) = param(name) else {
            return Err(ApiError::Msg(
                "Please provide the folder_name param.".into(),
            ));
        };
        let is_public = is_public.map(|p| p.to_string());
        let password = access_password.and_then(param);
        rules::folder_create(
            &self.st,
            parent.map(|p| dest(Some(p))),
            &name,
            is_public.as_deref(),
            password.as_deref(),
        )
    }

    /// `/folder/listing` (`None` = the root).
    pub fn folder_listing(
        &self,
        parent: Option<u64>,
    ) -> Result<(Vec<FolderRow>, Vec<FileRow>), ApiError> {
        let parent = match parent {
            // The handlers read `0` as the root too.
            None | Some(0) => None,
            Some(p) => Some(id(p, rules::FOLDER_NOT_FOUND)?),
        };
        rules::folder_listing(&self.st, parent)
    }

    /// `/folder/info`.
    pub fn folder_info(&self, folder: u64) -> Result<FolderRow, ApiError> {
        rules::folder(&self.st, id(folder, rules::FOLDER_NOT_FOUND)?)
    }

    /// `/folder/edit` with a new name.
    pub fn folder_rename(&self, folder: u64, name: &str) -> Result<FolderRow, ApiError> {
        let name = param(name);
        rules::folder_edit(
            &self.st,
            id(folder, rules::FOLDER_NOT_FOUND)?,
            name.as_deref(),
            None,
            None,
            None,
        )
    }

    /// `/folder/delete`.
    pub fn folder_delete(&self, folder: u64) -> Result<(), ApiError> {
        rules::folder_delete(&self.st, id(folder, rules::FOLDER_NOT_FOUND)?)
    }

    /// What the website's "restore" does for a folder in the trash (no API
    /// call does this; see [`store::Store::folder_restore`]).
    pub fn folder_restore(&self, folder: u64, to: Option<u64>) -> Result<(), Error> {
        let id = |v: u64| i64::try_from(v).map_err(|_| Error::Config(format!("no folder {v}")));
        let to = to.map(id).transpose()?;
        self.st.store.folder_restore(id(folder)?, to)
    }

    /// `/folder/move` (`None` = the root).
    pub fn folder_move(&self, folder: u64, to: Option<u64>) -> Result<FolderRow, ApiError> {
        rules::folder_move(&self.st, id(folder, rules::FOLDER_NOT_FOUND)?, dest(to))
    }
}

/// A partial upload, removed on drop unless the store moved it away.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
