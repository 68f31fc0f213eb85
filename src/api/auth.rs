//! Credentials and the access token shared between processes.
//!
//! Every successful `/authorize` logs out every other token of the account, so
//! all dcsync processes of one account on one machine share a single token
//! through a small file (owner-only) guarded by an advisory lock. A process
//! re-authorizes only when its token is rejected, and only after checking under
//! the lock that no other process already did. This module never logs or
//! formats a secret: `Secret`'s `Debug` and `Display` print `***`.

use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A string that must never appear in logs, errors or `Debug` output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for sending to the host only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the client proves who it is to `/authorize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The two 64-character API keys from the account settings.
    Keys { key1: Secret, key2: Secret },
    /// For hosts configured for username/password authorization.
    Password { username: String, password: Secret },
}

impl Credentials {
    /// The form fields `/authorize` takes.
    pub(crate) fn form(&self) -> Vec<(&'static str, String)> {
        match self {
            Credentials::Keys { key1, key2 } => vec![
                ("key1", key1.expose().to_owned()),
                ("key2", key2.expose().to_owned()),
            ],
            Credentials::Password { username, password } => vec![
                ("username", username.clone()),
                ("password", password.expose().to_owned()),
            ],
        }
    }

    /// A stable, non-reversible name for the account on a host, used to name
    /// the shared token file. Never contains a secret.
    pub fn account_key(&self, api_url: &str) -> String {
        let mut h = Sha256::new();
        h.update(api_url.trim_end_matches('/').as_bytes());
        h.update([0]);
        match self {
            Credentials::Keys { key1, .. } => {
                h.update(b"key1:");
                h.update(key1.expose().as_bytes());
            }
            Credentials::Password { username, .. } => {
                h.update(b"user:");
                h.update(username.as_bytes());
            }
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// An access token and the account it belongs to.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Token {
    pub access_token: String,
    pub account_id: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"***")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Where the shared token lives. `Memory` keeps it in this process only
/// (tests, or when no cache directory is available).
#[derive(Debug, Clone)]
pub enum TokenStore {
    Memory,
    File { path: PathBuf },
}

impl TokenStore {
    /// The default shared location under the platform cache directory.
    pub fn default_for(account_key: &str) -> TokenStore {
        match directories::ProjectDirs::from("", "", "dcsync") {
            Some(dirs) => TokenStore::File {
                path: dirs
                    .cache_dir()
                    .join("tokens")
                    .join(format!("{account_key}.json")),
            },
            None => TokenStore::Memory,
        }
    }

    /// A store in a given directory (tests, or `state_dir` from the config).
    pub fn in_dir(dir: &Path, account_key: &str) -> TokenStore {
        TokenStore::File {
            path: dir.join(format!("{account_key}.json")),
        }
    }

    /// Reads the shared token, if any. A corrupt file counts as no token.
    pub(crate) fn load(&self) -> Option<Token> {
        match self {
            TokenStore::Memory => None,
            TokenStore::File { path } => {
                let bytes = std::fs::read(path).ok()?;
                serde_json::from_slice(&bytes).ok()
            }
        }
    }

    /// Writes the shared token atomically with owner-only permissions.
    pub(crate) fn save(&self, token: &Token) -> std::io::Result<()> {
        let TokenStore::File { path } = self else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = open_private(&tmp)?;
            f.write_all(&serde_json::to_vec(token).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// Forgets the shared token (after `disable_access_token`).
    pub(crate) fn clear(&self) -> std::io::Result<()> {
        match self {
            TokenStore::Memory => Ok(()),
            TokenStore::File { path } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Takes the cross-process lock that serializes re-authorization.
    /// Blocking: call from `spawn_blocking`.
    pub(crate) fn lock(&self) -> std::io::Result<Option<std::fs::File>> {
        let TokenStore::File { path } = self else {
            return Ok(None);
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let f = open_private_keep(&path.with_extension("lock"))?;
        f.lock()?;
        Ok(Some(f))
    }
}

/// Creates a directory (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Creates or truncates a file readable and writable by its owner only.
pub fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

fn open_private_keep(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Credentials::Keys {
            key1: Secret::new("k".repeat(64)),
            key2: Secret::new("s".repeat(64)),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("kkkk") && !d.contains("ssss"), "{d}");
        let p = Credentials::Password {
            username: "admin".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{p:?}").contains("hunter2"));
        let t = Token {
            access_token: "tok123".into(),
            account_id: "1".into(),
        };
        assert!(!format!("{t:?}").contains("tok123"));
        assert!(!c.account_key("http://h/api/v2/").contains("kkkk"));
    }

    #[test]
    fn token_file_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(&dir.path().join("t"), "acct");
        assert!(store.load().is_none());
        let t = Token {
            access_token: "abc".into(),
            account_id: "9".into(),
        };
        store.save(&t).unwrap();
        assert_eq!(store.load(), Some(t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let TokenStore::File { path } = &store else {
                unreachable!()
            };
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "token file must be owner-only");
        }
        store.clear().unwrap();
        assert!(store.load().is_none());
    }
}
