//! Comparing a side as it is now with the Synced tree, on disk: the rows of
//! the engine's no-change check (`engine::unchanged`) go into temporary
//! tables of this connection (`temp.local_now`, `temp.remote_now`, in a
//! temporary file, never in memory), and two queries per side list where
//! it differs: Synced entries missing or not as agreed, and entries Synced
//! does not have.
//!
//! Owns only those temporary tables: it never writes the `synced` table or
//! anything else of the database file.

use super::StateDb;
use super::error::StateError;
use crate::model::{Kind, LocalEntry, RelPath, RemoteEntry};
use rusqlite::params;

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NowSide {
    Local,
    Remote,
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
    }
}

const LOCAL_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS local_now (
    path     TEXT PRIMARY KEY NOT NULL,
    kind     TEXT NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
) WITHOUT ROWID";

const REMOTE_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS remote_now (
    path   TEXT PRIMARY KEY NOT NULL,
    kind   TEXT NOT NULL,
    id     INTEGER NOT NULL,
    parent INTEGER,
    name   TEXT NOT NULL,
    size   INTEGER NOT NULL
) WITHOUT ROWID";

/// A Synced entry the local side does not hold as agreed: missing, another
/// kind, another inode, or (files) another size or mtime — the scan's fast
/// check, so a file whose Synced mtime marks it racily clean always differs.
const LOCAL_CHANGED: &str =
    "SELECT s.path FROM synced s LEFT JOIN temp.local_now l ON l.path = s.path
    WHERE s.path <> '' AND (l.path IS NULL OR l.kind <> s.kind OR l.ino <> s.ino
      OR (s.kind = 'file' AND (l.size <> s.local_size OR l.mtime_ns <> s.mtime_ns)))
    LIMIT ?1";

/// A local entry Synced does not have; empty files are held back by every
/// pass (the host cannot store them) and plan nothing.
const LOCAL_NEW: &str = "SELECT l.path FROM temp.local_now l
    WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = l.path)
      AND NOT (l.kind = 'file' AND l.size = 0)
    LIMIT ?1";

/// A Synced entry the host does not hold as agreed: missing at its path,
/// another kind, id, parent folder or name, or (files) another size.
const REMOTE_CHANGED: &str =
    "SELECT s.path FROM synced s LEFT JOIN temp.remote_now r ON r.path = s.path
    WHERE s.path <> '' AND (r.path IS NULL OR r.kind <> s.kind OR r.id <> s.remote_id
      OR r.parent IS NOT s.remote_parent OR r.name <> s.remote_name
      OR (s.kind = 'file' AND r.size <> s.size))
    LIMIT ?1";

/// A host entry Synced does not have (at its path).
const REMOTE_NEW: &str = "SELECT r.path FROM temp.remote_now r
    WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = r.path)
    LIMIT ?1";

impl StateDb {
    /// Starts a comparison of `side`: its temporary table, empty.
    pub fn now_begin(&mut self, side: NowSide) -> Result<(), StateError> {
        let (create, clear) = match side {
            NowSide::Local => (LOCAL_TABLE, "DELETE FROM temp.local_now"),
            NowSide::Remote => (REMOTE_TABLE, "DELETE FROM temp.remote_now"),
        };
        // The rows go to a temporary file, whatever the build's default;
        // no rollback journal for them (a failed comparison is dropped).
        self.conn
            .execute_batch(&format!(
                "PRAGMA temp_store = FILE; PRAGMA temp.journal_mode = OFF; {create}; {clear};"
            ))
            .map_err(|e| StateError::sqlite("create a temporary table", &self.path, e))
    }

    /// Adds local entries (in one transaction).
    pub fn now_add_local(&mut self, rows: &[(RelPath, LocalEntry)]) -> Result<(), StateError> {
        let err = |e| StateError::sqlite("fill a temporary table", &self.path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO temp.local_now (path, kind, ino, size, mtime_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (p, e) in rows {
                st.execute(params![
                    p.as_str(),
                    kind_str(e.kind),
                    e.meta.ino as i64,
                    e.meta.size as i64,
                    e.meta.mtime_ns
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Adds remote entries with the names the host lists them by (in one
    /// transaction). Returns `false` when a path was there already (two
    /// entries of one name, or a folder listed twice): such a side is not
    /// as Synced recorded it.
    pub fn now_add_remote(
        &mut self,
        rows: &[(RelPath, RemoteEntry, String)],
    ) -> Result<bool, StateError> {
        let err = |e| StateError::sqlite("fill a temporary table", &self.path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut unique = true;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO temp.remote_now (path, kind, id, parent, name, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for (p, e, name) in rows {
                let n = st
                    .execute(params![
                        p.as_str(),
                        kind_str(e.kind),
                        e.id as i64,
                        e.parent.map(|p| p as i64),
                        name,
                        e.size as i64
                    ])
                    .map_err(err)?;
                unique &= n == 1;
            }
        }
        tx.commit().map_err(err)?;
        Ok(unique)
    }

    /// The paths where `side` as added differs from the Synced tree (a
    /// Synced entry missing or not as agreed, or an entry Synced does not
    /// have), in path order; `None` when there are more than `limit`.
    /// Empty: every Synced entry is there as agreed, and nothing else.
    pub fn now_differences(
        &self,
        side: NowSide,
        limit: usize,
    ) -> Result<Option<Vec<RelPath>>, StateError> {
        let err = |e| StateError::sqlite("compare with the Synced tree", &self.path, e);
        let (changed, new) = match side {
            NowSide::Local => (LOCAL_CHANGED, LOCAL_NEW),
            NowSide::Remote => (REMOTE_CHANGED, REMOTE_NEW),
        };
        let mut out: Vec<RelPath> = Vec::new();
        for sql in [changed, new] {
            let mut st = self.conn.prepare_cached(sql).map_err(err)?;
            let mut rows = st.query([(limit + 1) as i64]).map_err(err)?;
            while let Some(r) = rows.next().map_err(err)? {
                let p: String = r.get(0).map_err(err)?;
                out.push(RelPath::new(&p).unwrap_or_else(RelPath::root));
                if out.len() > limit {
                    return Ok(None);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(Some(out))
    }

    /// Settles the unlisted entries (`StateDb::unlisted`) the host side as
    /// added shows, anywhere in the tree, and those no longer tracked (as a
    /// full pass does); returns how many stay (made by dcsync, tracked, and
    /// not listed).
    pub fn now_settle_unlisted(&mut self) -> Result<u64, StateError> {
        let err = |e| StateError::sqlite("update the unlisted entries", &self.path, e);
        let left: i64 = self
            .conn
            .query_row("SELECT count(*) FROM unlisted", [], |r| r.get(0))
            .map_err(err)?;
        if left == 0 {
            return Ok(0);
        }
        self.conn
            .execute_batch(
                "CREATE INDEX IF NOT EXISTS temp.remote_now_id ON remote_now (id);
                 DELETE FROM unlisted
                   WHERE EXISTS (SELECT 1 FROM temp.remote_now r
                                  WHERE r.id = unlisted.remote_id AND r.kind = unlisted.kind)
                      OR NOT EXISTS (SELECT 1 FROM synced s
                                  WHERE s.remote_id = unlisted.remote_id AND s.kind = unlisted.kind);",
            )
            .map_err(err)?;
        let left: i64 = self
            .conn
            .query_row("SELECT count(*) FROM unlisted", [], |r| r.get(0))
            .map_err(err)?;
        Ok(left as u64)
    }

    /// The empty local files Synced does not have (held back by every pass).
    pub fn now_held_back_empty(&self) -> Result<Vec<RelPath>, StateError> {
        let err = |e| StateError::sqlite("compare with the Synced tree", &self.path, e);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT l.path FROM temp.local_now l WHERE l.kind = 'file' AND l.size = 0
                   AND NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = l.path) ORDER BY l.path",
            )
            .map_err(err)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        let mut out = Vec::new();
        for p in rows {
            out.extend(RelPath::new(&p.map_err(err)?));
        }
        Ok(out)
    }

    /// Ends a comparison: the temporary table goes (and its file shrinks).
    pub fn now_end(&mut self, side: NowSide) -> Result<(), StateError> {
        let table = match side {
            NowSide::Local => "temp.local_now",
            NowSide::Remote => "temp.remote_now",
        };
        self.conn
            .execute_batch(&format!("DROP TABLE IF EXISTS {table}"))
            .map_err(|e| StateError::sqlite("drop a temporary table", &self.path, e))
    }
}
