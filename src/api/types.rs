//! Typed values of the File Upload API v2, decoded tolerantly.
//!
//! Owns the mapping from the host's JSON objects (whose field names and value
//! types vary between endpoints and servers) to stable Rust types. It never
//! performs I/O and never interprets what a value means for sync.

use super::de::{opt_string, opt_u64};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A remote file id. The content behind an id never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub u64);

/// A remote folder id. The account root has no id (`None` wherever a parent is expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FolderId(pub u64);

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for FolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Status of a remote file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Listed and usable.
    Active,
    /// Deleted through the API; recoverable by the user on the site.
    Trash,
    /// Storage gone.
    Deleted,
    /// A value this client does not know; treated as not active.
    Other(String),
}

impl FileStatus {
    /// The status a host sends (`active`, `trash`, `deleted`; absent = active).
    pub fn parse(s: Option<&str>) -> FileStatus {
        match s.map(str::trim) {
            None | Some("") | Some("active") => FileStatus::Active,
            Some("trash") => FileStatus::Trash,
            Some("deleted") => FileStatus::Deleted,
            Some(other) => FileStatus::Other(other.to_owned()),
        }
    }
}

/// A file as listed by `/folder/listing` or described by `/file/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    pub id: FileId,
    pub name: String,
    pub size: u64,
    /// `None` means the account root (or, for a trashed file, detached).
    pub folder_id: Option<FolderId>,
    pub status: FileStatus,
    pub short_url: Option<String>,
    pub file_type: Option<String>,
    pub url: Option<String>,
    pub uploaded_date: Option<String>,
}

/// Wire form of a file object: listing uses `status`, info uses `file_status`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawFile {
    #[serde(default, deserialize_with = "opt_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    filename: Option<String>,
    #[serde(default, rename = "fileSize", deserialize_with = "opt_u64")]
    file_size: Option<u64>,
    #[serde(default, rename = "folderId", deserialize_with = "opt_u64")]
    folder_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    file_status: Option<String>,
    #[serde(default, rename = "shortUrl", deserialize_with = "opt_string")]
    short_url: Option<String>,
    #[serde(default, rename = "fileType", deserialize_with = "opt_string")]
    file_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    url_file: Option<String>,
    #[serde(default, rename = "uploadedDate", deserialize_with = "opt_string")]
    uploaded_date: Option<String>,
}

impl RawFile {
    pub(crate) fn into_file(self) -> Result<RemoteFile, String> {
        let id = self.id.ok_or("file object without an id")?;
        let name = self
            .filename
            .ok_or_else(|| format!("file {id} without a filename"))?;
        // `file_status` (info) is more specific than `status` (listing).
        let status = FileStatus::parse(self.file_status.as_deref().or(self.status.as_deref()));
        Ok(RemoteFile {
            id: FileId(id),
            name,
            size: self.file_size.unwrap_or(0),
            folder_id: self.folder_id.filter(|&f| f != 0).map(FolderId),
            status,
            short_url: self.short_url,
            file_type: self.file_type,
            url: self.url_file,
            uploaded_date: self.uploaded_date,
        })
    }
}

/// A folder as listed or described by `/folder/info`. Folders have no status:
/// a trashed folder looks exactly like a live one (see API-NOTES.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFolder {
    pub id: FolderId,
    pub name: String,
    /// `None` means the account root.
    pub parent_id: Option<FolderId>,
    pub total_size: Option<u64>,
    pub is_public: Option<u64>,
    pub file_count: Option<u64>,
    pub child_folder_count: Option<u64>,
    pub url: Option<String>,
    pub date_added: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawFolder {
    #[serde(default, deserialize_with = "opt_u64")]
    id: Option<u64>,
    #[serde(default, rename = "folderName", deserialize_with = "opt_string")]
    folder_name: Option<String>,
    #[serde(default, rename = "parentId", deserialize_with = "opt_u64")]
    parent_id: Option<u64>,
    #[serde(default, rename = "totalSize", deserialize_with = "opt_u64")]
    total_size: Option<u64>,
    #[serde(default, rename = "isPublic", deserialize_with = "opt_u64")]
    is_public: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    file_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    child_folder_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    url_folder: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    date_added: Option<String>,
}

impl RawFolder {
    pub(crate) fn into_folder(self) -> Result<RemoteFolder, String> {
        let id = self.id.ok_or("folder object without an id")?;
        let name = self
            .folder_name
            .ok_or_else(|| format!("folder {id} without a folderName"))?;
        Ok(RemoteFolder {
            id: FolderId(id),
            name,
            parent_id: self.parent_id.filter(|&p| p != 0).map(FolderId),
            total_size: self.total_size,
            is_public: self.is_public,
            file_count: self.file_count,
            child_folder_count: self.child_folder_count,
            url: self.url_folder,
            date_added: self.date_added,
        })
    }
}

/// The content of one folder. The host has no pagination: this is all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub folders: Vec<RemoteFolder>,
    /// Only active files are listed by the host; others are filtered here too.
    pub files: Vec<RemoteFile>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawListing {
    #[serde(default)]
    pub(crate) folders: Option<Vec<RawFolder>>,
    #[serde(default)]
    pub(crate) files: Option<Vec<RawFile>>,
}

/// What `/file/upload` says about the stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedFile {
    pub id: FileId,
    /// The name the host stored, which may differ from the one sent
    /// (quotes stripped, `name (2).ext` on collision).
    pub name: String,
    pub size: u64,
    /// MD5 of the content as the host computed it (lower-case hex).
    pub md5: String,
    pub short_url: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawUploaded {
    #[serde(default, deserialize_with = "opt_u64")]
    pub(crate) file_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub(crate) size: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) hash: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) short_url: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<serde_json::Value>,
}

/// A download URL from `/file/download`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DownloadLink {
    pub file_id: FileId,
    pub filename: String,
    /// Carries a download token: never log it.
    #[serde(skip)]
    pub url: String,
}

impl fmt::Debug for DownloadLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadLink")
            .field("file_id", &self.file_id)
            .field("filename", &self.filename)
            .field("url", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawDownload {
    #[serde(default, deserialize_with = "opt_u64")]
    pub(crate) file_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) filename: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub(crate) download_url: Option<String>,
}

/// `/account/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub level_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub lastlogindate: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub datecreated: Option<String>,
    #[serde(default, rename = "paidExpiryDate", deserialize_with = "opt_string")]
    pub paid_expiry_date: Option<String>,
}

/// `/account/package`: the limits the account inherits from its package.
/// A limit of `0` means "no limit" on the host; it is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    #[serde(default, deserialize_with = "opt_string")]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_upload_size: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub can_upload: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_storage_bytes: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub concurrent_uploads: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub concurrent_downloads: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_download_filesize_allowed: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_remote_download_urls: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub level_type: Option<String>,
}

impl Package {
    /// Whether uploads are allowed (absent counts as allowed).
    pub fn uploads_allowed(&self) -> bool {
        self.can_upload != Some(0)
    }
    /// Largest single upload in bytes, `None` when unlimited.
    pub fn upload_limit(&self) -> Option<u64> {
        self.max_upload_size.filter(|&n| n > 0)
    }
    /// Storage quota in bytes, `None` when unlimited.
    pub fn storage_limit(&self) -> Option<u64> {
        self.max_storage_bytes.filter(|&n| n > 0)
    }
}

/// Answer of `/file/url_upload_add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlUploadScheduled {
    #[serde(deserialize_with = "opt_u64")]
    pub scheduled_item_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub url: Option<String>,
}

/// The file a URL import produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlUploadFile {
    #[serde(default, deserialize_with = "opt_u64")]
    pub file_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub url: Option<String>,
}

/// Answer of `/file/url_upload_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlUploadStatus {
    #[serde(default, deserialize_with = "opt_u64")]
    pub scheduled_item_id: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub created: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub started: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub finished: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub total_size: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub downloaded_size: Option<u64>,
    #[serde(default, deserialize_with = "super::de::opt_object")]
    pub downloaded_file: Option<UrlUploadFile>,
    #[serde(default, deserialize_with = "opt_string")]
    pub error: Option<String>,
}

/// Answer of `/file/copy`: both files as the host describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyResult {
    pub original: RemoteFile,
    pub copy: RemoteFile,
}

/// Options of `/folder/create` and `/folder/edit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderOptions {
    /// 0 = private, 1 = unlisted, 2 = public in site search.
    pub is_public: Option<u8>,
    /// MD5 hex of an access password (32 characters).
    pub access_password_md5: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_file_uses_status_and_info_file_uses_file_status() {
        let listed: RawFile = serde_json::from_str(
            r#"{"id":"1161","filename":"a.gif","fileSize":"1116","status":"active","folderId":null,"extra":[1,2]}"#,
        )
        .unwrap();
        let f = listed.into_file().unwrap();
        assert_eq!(f.id, FileId(1161));
        assert_eq!(f.size, 1116);
        assert_eq!(f.folder_id, None);
        assert_eq!(f.status, FileStatus::Active);

        let info: RawFile = serde_json::from_str(
            r#"{"id":1162,"filename":"b","fileSize":5,"file_status":"trash","folderId":"12"}"#,
        )
        .unwrap();
        let f = info.into_file().unwrap();
        assert_eq!(f.status, FileStatus::Trash);
        assert_eq!(f.folder_id, Some(FolderId(12)));
    }

    #[test]
    fn folder_with_null_parent_is_in_root() {
        let raw: RawFolder = serde_json::from_str(
            r#"{"id":"123","parentId":null,"folderName":"My Folder 1","totalSize":"868689","total_downloads":5864,"child_folder_count":1,"file_count":0}"#,
        )
        .unwrap();
        let f = raw.into_folder().unwrap();
        assert_eq!(f.parent_id, None);
        assert_eq!(f.child_folder_count, Some(1));
        assert_eq!(f.total_size, Some(868689));
    }

    #[test]
    fn file_without_id_is_an_error() {
        let raw: RawFile = serde_json::from_str(r#"{"filename":"x"}"#).unwrap();
        assert!(raw.into_file().is_err());
    }

    #[test]
    fn download_link_debug_hides_token() {
        let l = DownloadLink {
            file_id: FileId(1),
            filename: "a".into(),
            url: "http://h/x?download_token=secret".into(),
        };
        assert!(!format!("{l:?}").contains("secret"));
    }
}
