//! Remote paths: turning `/a/b/c`, `id:N`, `file:N` or `folder:N` into the
//! host's ids by walking folder listings.
//!
//! The host allows several files or folders of the same name in one folder,
//! so a path can be ambiguous; this module says so (listing the candidates'
//! ids) instead of guessing. It only reads from the host, never changes it.

use crate::api::{ApiError, Client, FileId, FolderId, RemoteFile, RemoteFolder};

/// What a remote path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Root,
    Folder(RemoteFolder),
    File(RemoteFile),
}

impl Entry {
    /// The folder id to use as a parent (`None` = root), if this is a folder.
    pub fn as_parent(&self) -> Option<Option<FolderId>> {
        match self {
            Entry::Root => Some(None),
            Entry::Folder(f) => Some(Some(f.id)),
            Entry::File(_) => None,
        }
    }
}

/// What kind of entry a command expects at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Any,
    File,
    Folder,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("remote path {path:?} does not exist")]
    NotFound { path: String },
    #[error(
        "remote path {path:?} is ambiguous: it matches {} entries ({}); name the one you mean exactly as given",
        .candidates.len(),
        .candidates.join(", ")
    )]
    Ambiguous {
        path: String,
        candidates: Vec<String>,
    },
    #[error("remote path {path:?} is a file, not a folder")]
    NotAFolder { path: String },
    #[error("remote path {path:?} is a folder, not a file")]
    NotAFile { path: String },
    #[error("remote path {path:?} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl RemoteError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RemoteError::Api(e) if e.is_retryable())
    }
}

/// A parsed remote path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePath {
    /// Components below the account root; empty = the root.
    Path(Vec<String>),
    /// `id:N`: a file or folder id, decided by what exists and what is wanted.
    Id(u64),
    FileId(u64),
    FolderId(u64),
}

impl RemotePath {
    pub fn parse(s: &str) -> Result<RemotePath, RemoteError> {
        let invalid = |reason: &str| RemoteError::Invalid {
            path: s.to_owned(),
            reason: reason.to_owned(),
        };
        for (prefix, make) in [
            ("id:", RemotePath::Id as fn(u64) -> RemotePath),
            ("file:", RemotePath::FileId),
            ("folder:", RemotePath::FolderId),
        ] {
            if let Some(n) = s.strip_prefix(prefix) {
                return n
                    .trim()
                    .parse::<u64>()
                    .map(make)
                    .map_err(|_| invalid("the id after the colon must be a number"));
            }
        }
        let mut parts = Vec::new();
        for c in s.split('/') {
            match c {
                "" | "." => {}
                ".." => return Err(invalid("`..` is not supported in remote paths")),
                c => parts.push(c.to_owned()),
            }
        }
        Ok(RemotePath::Path(parts))
    }
}

/// Splits `a/b/c` into (`a/b`, `c`). Root has no name.
pub fn split_parent(s: &str) -> Option<(String, String)> {
    let t = s.trim_end_matches('/');
    let (parent, name) = match t.rfind('/') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => ("", t),
    };
    if name.is_empty() || name == "." || name == ".." || name.contains(':') && parent.is_empty() {
        return None;
    }
    Some((
        format!("/{}", parent.trim_start_matches('/')),
        name.to_owned(),
    ))
}

/// Resolves a path string against the host.
pub async fn resolve(client: &Client, path: &str, want: Want) -> Result<Entry, RemoteError> {
    let parsed = RemotePath::parse(path)?;
    let entry = match parsed {
        RemotePath::FileId(n) => Entry::File(active_file(client, path, FileId(n)).await?),
        RemotePath::FolderId(n) => Entry::Folder(folder(client, path, FolderId(n)).await?),
        RemotePath::Id(n) => resolve_id(client, path, n, want).await?,
        RemotePath::Path(parts) => resolve_parts(client, path, &parts).await?,
    };
    check_kind(path, entry, want)
}

fn check_kind(path: &str, entry: Entry, want: Want) -> Result<Entry, RemoteError> {
    match (&entry, want) {
        (Entry::File(_), Want::Folder) => Err(RemoteError::NotAFolder {
            path: path.to_owned(),
        }),
        (Entry::Folder(_) | Entry::Root, Want::File) => Err(RemoteError::NotAFile {
            path: path.to_owned(),
        }),
        _ => Ok(entry),
    }
}

async fn active_file(client: &Client, path: &str, id: FileId) -> Result<RemoteFile, RemoteError> {
    match client.file_info(id).await {
        Ok(f) if f.status == crate::api::FileStatus::Active => Ok(f),
        Ok(_) => Err(RemoteError::NotFound {
            path: path.to_owned(),
        }),
        Err(e) if e.is_not_found() => Err(RemoteError::NotFound {
            path: path.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn folder(client: &Client, path: &str, id: FolderId) -> Result<RemoteFolder, RemoteError> {
    match client.folder_info(id).await {
        Ok(f) => Ok(f),
        Err(e) if e.is_not_found() => Err(RemoteError::NotFound {
            path: path.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn resolve_id(client: &Client, path: &str, n: u64, want: Want) -> Result<Entry, RemoteError> {
    let as_file = || async { active_file(client, path, FileId(n)).await.map(Entry::File) };
    let as_folder = || async { folder(client, path, FolderId(n)).await.map(Entry::Folder) };
    match want {
        Want::File => as_file().await,
        Want::Folder => as_folder().await,
        Want::Any => {
            let file = as_file().await;
            let dir = as_folder().await;
            match (file, dir) {
                (Ok(f), Err(RemoteError::NotFound { .. })) => Ok(f),
                (Err(RemoteError::NotFound { .. }), Ok(d)) => Ok(d),
                (Ok(_), Ok(_)) => Err(RemoteError::Ambiguous {
                    path: path.to_owned(),
                    candidates: vec![format!("file:{n}"), format!("folder:{n}")],
                }),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
    }
}

async fn resolve_parts(
    client: &Client,
    path: &str,
    parts: &[String],
) -> Result<Entry, RemoteError> {
    let mut current = Entry::Root;
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let Some(parent) = current.as_parent() else {
            return Err(RemoteError::NotAFolder {
                path: format!("/{}", parts[..i].join("/")),
            });
        };
        let listing = client.folder_listing(parent).await?;
        let mut found: Vec<Entry> = listing
            .folders
            .into_iter()
            .filter(|f| &f.name == name)
            .map(Entry::Folder)
            .collect();
        if last {
            found.extend(
                listing
                    .files
                    .into_iter()
                    .filter(|f| &f.name == name)
                    .map(Entry::File),
            );
        }
        current = match found.len() {
            0 => {
                return Err(RemoteError::NotFound {
                    path: path.to_owned(),
                });
            }
            1 => found.remove(0),
            _ => {
                return Err(RemoteError::Ambiguous {
                    path: format!("/{}", parts[..=i].join("/")),
                    candidates: found
                        .iter()
                        .map(|e| match e {
                            Entry::File(f) => format!("file:{}", f.id),
                            Entry::Folder(f) => format!("folder:{}", f.id),
                            Entry::Root => "root".into(),
                        })
                        .collect(),
                });
            }
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_ids() {
        assert_eq!(RemotePath::parse("/").unwrap(), RemotePath::Path(vec![]));
        assert_eq!(RemotePath::parse("").unwrap(), RemotePath::Path(vec![]));
        assert_eq!(
            RemotePath::parse("/a//b/").unwrap(),
            RemotePath::Path(vec!["a".into(), "b".into()])
        );
        assert_eq!(RemotePath::parse("id:12").unwrap(), RemotePath::Id(12));
        assert_eq!(RemotePath::parse("file:3").unwrap(), RemotePath::FileId(3));
        assert_eq!(
            RemotePath::parse("folder:4").unwrap(),
            RemotePath::FolderId(4)
        );
        assert!(RemotePath::parse("id:x").is_err());
        assert!(RemotePath::parse("/a/../b").is_err());
    }

    #[test]
    fn splits_parent_and_name() {
        assert_eq!(split_parent("/a/b"), Some(("/a".into(), "b".into())));
        assert_eq!(split_parent("b"), Some(("/".into(), "b".into())));
        assert_eq!(split_parent("/b/"), Some(("/".into(), "b".into())));
        assert_eq!(split_parent("/"), None);
    }
}
