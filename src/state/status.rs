//! Sync status: `meta` values, skipped paths, kept conflicts and the counts
//! `dcsync status` shows.

use super::StateDb;
use super::error::StateError;
use crate::model::RelPath;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The side that reported a skipped path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Local,
    Remote,
}

impl Side {
    /// `local` or `remote` (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Remote => "remote",
        }
    }

    fn parse(s: &str, db: &Path) -> Result<Side, StateError> {
        match s {
            "local" => Ok(Side::Local),
            "remote" => Ok(Side::Remote),
            other => Err(StateError::corrupt(
                db,
                format!("unknown side {other:?} in skipped paths"),
            )),
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path that is not synced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    pub path: RelPath,
    /// The side where the path exists.
    pub side: Side,
    pub reason: String,
    /// When it was first reported with this reason (caller's time string).
    pub since: String,
}

/// A conflict resolved by keeping both versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictEntry {
    pub id: i64,
    /// The contested path.
    pub path: RelPath,
    /// Where the other version was kept.
    pub copy_path: RelPath,
    /// Which side the kept copy's content came from.
    pub copy_from: Side,
    pub created_at: String,
}

/// The counts `dcsync status` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StatusCounts {
    /// Files in the Synced tree.
    pub files: u64,
    /// Folders in the Synced tree.
    pub folders: u64,
    /// Total size of the Synced files.
    pub bytes: u64,
    /// Open journal intents.
    pub pending_ops: u64,
    /// Skipped paths (both sides).
    pub skipped: u64,
    /// Kept conflicts.
    pub conflicts: u64,
}

fn rel(db: &Path, s: String, table: &str) -> Result<RelPath, StateError> {
    RelPath::new(&s)
        .ok_or_else(|| StateError::corrupt(db, format!("invalid path {s:?} in {table}")))
}

impl StateDb {
    /// Sets a status value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute([key, value]))
            .map_err(|e| StateError::sqlite("write a status value", &self.path, e))?;
        Ok(())
    }

    /// A status value, if set.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StateError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| StateError::sqlite("read a status value", &self.path, e))
    }

    /// Replaces the whole skipped set of `side` by `entries` (path, reason).
    /// An entry already skipped for the same reason keeps its `since`; new or
    /// changed ones get `now`.
    pub fn set_skipped(
        &mut self,
        side: Side,
        entries: &[(RelPath, String)],
        now: &str,
    ) -> Result<(), StateError> {
        self.set_skipped_where(side, entries, now, |_| true)
    }

    /// Like [`StateDb::set_skipped`] for the part of the tree a focused pass
    /// looked at: only the old entries whose path `replace` accepts go;
    /// the others stay.
    pub fn set_skipped_where(
        &mut self,
        side: Side,
        entries: &[(RelPath, String)],
        now: &str,
        replace: impl Fn(&str) -> bool,
    ) -> Result<(), StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("record skipped paths", db, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut old: HashMap<String, (String, String)> = HashMap::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT path, reason, since FROM skipped WHERE side = ?1")
                .map_err(err)?;
            let rows = stmt
                .query_map([side.as_str()], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                .map_err(err)?;
            for row in rows {
                let (path, v) = row.map_err(err)?;
                old.insert(path, v);
            }
            let mut del = tx
                .prepare_cached("DELETE FROM skipped WHERE side = ?1 AND path = ?2")
                .map_err(err)?;
            for path in old.keys().filter(|p| replace(p)) {
                del.execute([side.as_str(), path.as_str()]).map_err(err)?;
            }
            let mut ins = tx
                .prepare_cached("INSERT OR REPLACE INTO skipped (path, side, reason, since) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            for (path, reason) in entries {
                let since = match old.get(path.as_str()) {
                    Some((r, since)) if r == reason => since.as_str(),
                    _ => now,
                };
                ins.execute(params![path.as_str(), side.as_str(), reason, since])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every skipped path, ordered by path then side.
    pub fn skipped(&self) -> Result<Vec<SkippedEntry>, StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("read skipped paths", db, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, side, reason, since FROM skipped ORDER BY path, side")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (path, side, reason, since) = row.map_err(err)?;
            out.push(SkippedEntry {
                path: rel(db, path, "skipped paths")?,
                side: Side::parse(&side, db)?,
                reason,
                since,
            });
        }
        Ok(out)
    }

    /// Records a conflict kept as `path` plus `copy_path`; returns its id.
    pub fn add_conflict(
        &mut self,
        path: &RelPath,
        copy_path: &RelPath,
        copy_from: Side,
        now: &str,
    ) -> Result<i64, StateError> {
        self.conn
            .prepare_cached(
                "INSERT INTO conflicts (path, copy_path, copy_from, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.insert([path.as_str(), copy_path.as_str(), copy_from.as_str(), now])
            })
            .map_err(|e| StateError::sqlite("record a conflict", &self.path, e))
    }

    /// Forgets conflict `id` (the user resolved it); whether it existed.
    pub fn remove_conflict(&mut self, id: i64) -> Result<bool, StateError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM conflicts WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(|e| StateError::sqlite("remove a conflict", &self.path, e))?;
        Ok(n > 0)
    }

    /// Every kept conflict, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictEntry>, StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("read conflicts", db, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, path, copy_path, created_at, copy_from FROM conflicts ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, path, copy_path, created_at, from) = row.map_err(err)?;
            out.push(ConflictEntry {
                id,
                path: rel(db, path, "conflicts")?,
                copy_path: rel(db, copy_path, "conflicts")?,
                copy_from: if from == "remote" {
                    Side::Remote
                } else {
                    Side::Local
                },
                created_at,
            });
        }
        Ok(out)
    }

    /// The counts `dcsync status` shows, read in one statement.
    pub fn status_counts(&self) -> Result<StatusCounts, StateError> {
        let (files, folders, bytes, pending_ops, skipped, conflicts): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = self
            .conn
            .prepare_cached(
                "SELECT \
                   (SELECT count(*) FROM synced WHERE kind = 'file'), \
                   (SELECT count(*) FROM synced WHERE kind = 'dir'), \
                   (SELECT coalesce(sum(size), 0) FROM synced WHERE kind = 'file'), \
                   (SELECT count(*) FROM journal WHERE state = 'intent'), \
                   (SELECT count(*) FROM skipped), \
                   (SELECT count(*) FROM conflicts)",
            )
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
            })
            .map_err(|e| StateError::sqlite("count the sync status", &self.path, e))?;
        Ok(StatusCounts {
            files: files as u64,
            folders: folders as u64,
            bytes: bytes as u64,
            pending_ops: pending_ops as u64,
            skipped: skipped as u64,
            conflicts: conflicts as u64,
        })
    }
}
