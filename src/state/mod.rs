//! The SQLite state database of one sync pair.
//!
//! # What it owns
//! - the database file itself: where it lives ([`db_path_for`], [`pair_key`]),
//!   its permissions (owner only), its pragmas and its schema migrations
//!   (`migrations/NNNN_name.sql`, applied in order, keyed by `user_version`);
//! - the **Synced tree**, the last state both sides agreed on
//!   ([`StateDb::load_synced`], [`StateDb::apply`] with [`Change`]s);
//! - the **op journal**: intents written before a remote call, marked done
//!   together with their Synced changes in one transaction
//!   ([`StateDb::journal_begin`], [`StateDb::journal_done`]);
//! - sync status: free-form `meta` values, skipped paths per side, kept
//!   conflicts, and the counts `dcsync status` shows;
//! - its own size: WAL checkpoints and vacuum policy (`maintain.rs`).
//!
//! # What it never does
//! No network, no scanning, no planning, no clock reads (callers pass "now"
//! strings so time stays injectable). It never touches the files being
//! synced, so it can never delete a user file; the only file it writes is its
//! own database (plus SQLite's `-wal`/`-shm` companions). A database written
//! by a newer dcsync is refused and left untouched.
//!
//! # Rules kept here
//! - Every write is one transaction: a batch of [`Change`]s is applied whole
//!   or not at all; `journal_done` marks the op done and applies its changes
//!   atomically, so Synced never runs ahead of (or behind) the journal.
//! - `journal_begin` is durable (fsynced) before it returns; other commits use
//!   `synchronous=NORMAL` (WAL), which survives a process crash and, on power
//!   loss, can only lose the latest commits, never corrupt the file.

mod compare;
mod error;
mod journal;
mod maintain;
mod schema;
mod status;
mod synced;
#[cfg(test)]
mod tests;

pub use compare::Differences;
pub use error::StateError;
pub use maintain::{DbSize, Maintenance};
pub use status::{ConflictEntry, Side, SkippedEntry, StatusCounts};
pub use synced::Change;

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another connection's lock before failing
/// with a retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection (see `StateDb::open_with`).
const STATEMENT_CACHE: usize = 128;

/// An open state database. Not `Sync`: one owner (the engine's DB task).
pub struct StateDb {
    /// The connection; statements are cached on it (`prepare_cached`).
    conn: Connection,
    /// The database file, for error messages.
    path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where the database of the pair with key `pair_key` lives:
/// `state_dir/pairs/<pair_key>.db`.
pub fn db_path_for(state_dir: &Path, pair_key: &str) -> PathBuf {
    state_dir.join("pairs").join(format!("{pair_key}.db"))
}

/// A short stable key for one sync pair (first 16 hex digits of a SHA-256 of
/// the local root, the API URL and the remote path), so each pair gets its own
/// database. Callers pass canonical values: any difference in spelling gives
/// a different key (and so a fresh, empty database).
pub fn pair_key(local_root: &Path, api_url: &str, remote_path: &str) -> String {
    let mut h = Sha256::new();
    // Length-prefixed so no two different triples hash the same input.
    for part in [
        local_root.as_os_str().as_encoded_bytes(),
        api_url.as_bytes(),
        remote_path.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    hex::encode(&digest[..8])
}

impl StateDb {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    ///
    /// Creates the parent directory (mode 0700) and the file (mode 0600) if
    /// missing. Refuses with [`StateError::TooNew`] a database written by a
    /// newer dcsync, without writing to it.
    pub fn open(path: &Path) -> Result<StateDb, StateError> {
        Self::open_with(path, schema::MIGRATIONS)
    }

    /// [`StateDb::open`] with an explicit migration list (tests use longer ones).
    pub(crate) fn open_with(
        path: &Path,
        migrations: &[schema::Migration],
    ) -> Result<StateDb, StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)
                .map_err(|e| StateError::io("create the state directory", parent, e))?;
        }
        if !path.exists() {
            create_private_file(path)
                .map_err(|e| StateError::io("create the database file", path, e))?;
        }
        let mut conn =
            Connection::open(path).map_err(|e| StateError::sqlite("open the database", path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| StateError::sqlite("set the busy timeout", path, e))?;
        // More cached statements than rusqlite's default of 16: a pass uses
        // about 30, and a cache that small re-prepares most of them each time.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Before anything writes: a newer database stays untouched.
        schema::check_not_too_new(&conn, path, migrations)?;
        make_private(path)
            .map_err(|e| StateError::io("restrict the database file's permissions", path, e))?;

        maintain::size_policy(&conn, path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite("switch to WAL mode", path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(db = %path.display(), mode, "state DB: WAL mode unavailable on this file system");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| StateError::sqlite("set synchronous=NORMAL", path, e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| StateError::sqlite("enable foreign keys", path, e))?;

        schema::migrate(&mut conn, path, migrations)?;

        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            let companion = PathBuf::from(companion);
            if companion.exists() {
                make_private(&companion).map_err(|e| {
                    StateError::io("restrict the database file's permissions", &companion, e)
                })?;
            }
        }
        Ok(StateDb {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` and its missing parents, owner-only (0700) on unix.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates an empty file readable by its owner only (0600 on unix).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    make_private(path)
}

/// Removes group and other permissions from `path` (unix; no-op elsewhere).
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
