//! Schema migrations, keyed by SQLite's `user_version`.
//!
//! `MIGRATIONS[i]` upgrades a database from version `i` to `i + 1`. Each
//! pending migration runs in one transaction together with its
//! `PRAGMA user_version = N`, so a crash leaves the database at the old or the
//! new version, never in between. A database newer than [`MIGRATIONS`] knows
//! is refused before anything is written to it.

use super::error::StateError;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// One schema upgrade: its file name (for logs) and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order; the schema version is the list's length.
/// Never edit or reorder a released entry: append a new file.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_init.sql",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        name: "0002_conflict_sides.sql",
        sql: include_str!("../../migrations/0002_conflict_sides.sql"),
    },
    Migration {
        name: "0003_unlisted.sql",
        sql: include_str!("../../migrations/0003_unlisted.sql"),
    },
];

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection, path: &Path) -> Result<u32, StateError> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| StateError::sqlite("read the schema version", path, e))?;
    u32::try_from(v)
        .map_err(|_| StateError::corrupt(path, format!("schema version {v} is negative")))
}

/// Refuses a database newer than `migrations` knows, without writing to it.
pub(crate) fn check_not_too_new(
    conn: &Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<u32, StateError> {
    let found = user_version(conn, path)?;
    let supported = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    if found > supported {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    Ok(found)
}

/// Applies every pending migration of `migrations`, each in its own
/// transaction. The version is re-read under the write lock so two processes
/// opening the same new database do not both migrate it.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<(), StateError> {
    for (i, m) in migrations.iter().enumerate() {
        let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StateError::sqlite("start a schema migration", path, e))?;
        let current = check_not_too_new(&tx, path, migrations)?;
        if current >= version {
            continue; // dropping `tx` rolls back the empty transaction
        }
        tracing::info!(db = %path.display(), migration = m.name, version, "applying state DB migration");
        tx.execute_batch(m.sql)
            .map_err(|e| StateError::sqlite("apply a schema migration", path, e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| StateError::sqlite("record the schema version", path, e))?;
        tx.commit()
            .map_err(|e| StateError::sqlite("commit a schema migration", path, e))?;
    }
    Ok(())
}
