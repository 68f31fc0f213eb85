//! Errors of the state database.
//!
//! Every message names what failed, the database file, and what the user can
//! do about it. Only [`StateError::Corrupt`] suggests deleting the database
//! (which makes the next run resync from scratch); nothing else ever does.

use rusqlite::ErrorCode;
use std::path::PathBuf;

/// An error of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite refused or failed an operation.
    #[error(
        "state database {path}: could not {what}: {source}; \
         check that the disk is not full and the file is writable \
         (and that no other dcsync uses it), then retry"
    )]
    Sqlite {
        /// What was being done ("open", "apply Synced changes", ...).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A file-system call around the database failed (directory, permissions).
    #[error(
        "state database {path}: could not {what}: {source}; \
         check that the state directory exists, is writable by this user and \
         the disk is not full"
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database was written by a newer dcsync; it was left untouched.
    #[error(
        "state database {path} has schema version {found}, but this dcsync \
         only knows versions up to {supported}; upgrade dcsync to use it \
         (the database was left untouched)"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The database file is damaged or holds values dcsync never writes.
    #[error(
        "state database {path} is corrupt ({detail}); stop dcsync and delete \
         it to resync from scratch"
    )]
    Corrupt { path: PathBuf, detail: String },

    /// A journal entry was finished twice or never begun: a bug in the caller.
    #[error(
        "state database {path}: journal entry {id} is {found}, not an open \
         intent; nothing was changed (this is a bug in dcsync, please report it)"
    )]
    NotPending {
        path: PathBuf,
        id: i64,
        /// `done`, `abandoned` or `missing`.
        found: String,
    },
}

impl StateError {
    /// Whether retrying the same call later may succeed (the database was
    /// busy or locked by another connection).
    pub fn is_retryable(&self) -> bool {
        match self {
            StateError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// Wraps a SQLite error; a damaged file becomes [`StateError::Corrupt`].
    pub(crate) fn sqlite(
        what: &'static str,
        path: &std::path::Path,
        source: rusqlite::Error,
    ) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StateError::Corrupt {
                path: path.to_owned(),
                detail: format!("{what}: {source}"),
            },
            _ => StateError::Sqlite {
                what,
                path: path.to_owned(),
                source,
            },
        }
    }

    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StateError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, detail: impl Into<String>) -> Self {
        StateError::Corrupt {
            path: path.to_owned(),
            detail: detail.into(),
        }
    }
}
