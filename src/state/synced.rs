//! The Synced tree: table `synced`, one row per path.
//!
//! Subtree statements match whole path components: the subtree of `a` is `a`
//! itself plus every path in the range `["a/", "a0")` (`'0'` is the byte after
//! `'/'`), so `ab` and `a.txt` are never part of it. The root (`""`) is the
//! whole tree.

use super::StateDb;
use super::error::StateError;
use crate::model::{Hashes, Kind, LocalMeta, RelPath, SyncedEntry, Tree};
use rusqlite::{Connection, params};
use std::path::Path;

/// One change to the Synced tree; a batch is applied in order, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Inserts or replaces the entry at the path.
    Put(RelPath, SyncedEntry),
    /// Removes the entry at the path and everything below it (the root
    /// removes the whole tree). Absent paths are not an error.
    RemoveTree(RelPath),
    /// Renames the entry at `from` and all its descendants to the same paths
    /// below `to`; entries already at a destination path are replaced. Only
    /// paths change: follow with a `Put` of `to` to record its new remote
    /// name or parent.
    MoveTree { from: RelPath, to: RelPath },
    /// dcsync made (or moved) the host entry of this kind and id; no
    /// listing has shown it there yet (see [`StateDb::unlisted`]).
    Made(Kind, u64),
}

const COLUMNS: &str = "path, kind, dev, ino, size, local_size, mtime_ns, sha256, md5, remote_id, remote_parent, remote_name";

const SUBTREE: &str = "(path = ?1 OR (path >= (?1 || '/') AND path < (?1 || '0')))";

/// A row as stored, before validation.
struct RawRow {
    path: String,
    kind: String,
    dev: i64,
    ino: i64,
    size: i64,
    local_size: i64,
    mtime_ns: i64,
    sha256: Option<String>,
    md5: Option<String>,
    remote_id: i64,
    remote_parent: Option<i64>,
    remote_name: String,
}

impl RawRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            path: r.get(0)?,
            kind: r.get(1)?,
            dev: r.get(2)?,
            ino: r.get(3)?,
            size: r.get(4)?,
            local_size: r.get(5)?,
            mtime_ns: r.get(6)?,
            sha256: r.get(7)?,
            md5: r.get(8)?,
            remote_id: r.get(9)?,
            remote_parent: r.get(10)?,
            remote_name: r.get(11)?,
        })
    }

    /// Validates the row; `db` names the file in a [`StateError::Corrupt`].
    fn into_entry(self, db: &Path) -> Result<(RelPath, SyncedEntry), StateError> {
        let path = RelPath::new(&self.path).ok_or_else(|| {
            StateError::corrupt(
                db,
                format!("invalid path {:?} in the Synced tree", self.path),
            )
        })?;
        let kind = match self.kind.as_str() {
            "file" => Kind::File,
            "dir" => Kind::Dir,
            other => {
                return Err(StateError::corrupt(
                    db,
                    format!("unknown kind {other:?} at {path} in the Synced tree"),
                ));
            }
        };
        // u64 values are stored as their i64 bit pattern (`as` round-trips).
        let entry = SyncedEntry {
            kind,
            local: LocalMeta {
                dev: self.dev as u64,
                ino: self.ino as u64,
                size: self.local_size as u64,
                mtime_ns: self.mtime_ns,
            },
            hashes: Hashes {
                sha256: digest(db, &path, self.sha256)?,
                md5: digest(db, &path, self.md5)?,
            },
            remote_id: self.remote_id as u64,
            remote_parent: self.remote_parent.map(|p| p as u64),
            remote_name: self.remote_name,
            size: self.size as u64,
        };
        Ok((path, entry))
    }
}

/// A stored hash (hex) as a digest; anything else is damage.
fn digest<const N: usize>(
    db: &Path,
    path: &RelPath,
    hex: Option<String>,
) -> Result<Option<crate::model::Digest<N>>, StateError> {
    match hex {
        // Earlier versions stored "" when the host reported no hash.
        None => Ok(None),
        Some(h) if h.is_empty() => Ok(None),
        Some(h) => crate::model::Digest::from_hex(&h).map(Some).ok_or_else(|| {
            StateError::corrupt(
                db,
                format!(
                    "hash {h:?} of {path} in the Synced tree is not {} hex digits",
                    2 * N
                ),
            )
        }),
    }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
    }
}

/// Inserts or replaces one row.
fn put(conn: &Connection, path: &RelPath, e: &SyncedEntry) -> rusqlite::Result<()> {
    // A host file is at one path: another Synced entry of the same file id
    // is stale (left by an interrupted move, say). Kept, it would claim the
    // file too, and the plan would take the file's being here for a move
    // "onto another Synced path", that is a delete there. Forgetting it
    // only makes what is at its path new on each side.
    if e.kind == Kind::File {
        conn.prepare_cached(
            "DELETE FROM synced WHERE remote_id = ?1 AND kind = 'file' AND path != ?2",
        )?
        .execute(params![e.remote_id as i64, path.as_str()])?;
    }
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO synced ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    stmt.execute(params![
        path.as_str(),
        kind_str(e.kind),
        e.local.dev as i64,
        e.local.ino as i64,
        e.size as i64,
        e.local.size as i64,
        e.local.mtime_ns,
        e.hashes.sha256.map(|h| h.to_hex()),
        e.hashes.md5.map(|h| h.to_hex()),
        e.remote_id as i64,
        e.remote_parent.map(|p| p as i64),
        e.remote_name,
    ])?;
    Ok(())
}

/// Removes the subtree at `path` (the whole tree for the root).
fn remove_tree(conn: &Connection, path: &RelPath) -> rusqlite::Result<()> {
    if path.is_root() {
        conn.prepare_cached("DELETE FROM synced")?.execute([])?;
    } else {
        conn.prepare_cached(&format!("DELETE FROM synced WHERE {SUBTREE}"))?
            .execute([path.as_str()])?;
    }
    Ok(())
}

/// Reads the rows of the subtree at `path`.
fn read_tree(conn: &Connection, path: &RelPath) -> rusqlite::Result<Vec<RawRow>> {
    if path.is_root() {
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM synced"))?;
        let rows = stmt.query_map([], RawRow::from_row)?;
        rows.collect()
    } else {
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM synced WHERE {SUBTREE}"))?;
        let rows = stmt.query_map([path.as_str()], RawRow::from_row)?;
        rows.collect()
    }
}

/// Applies `changes` in order on `conn` (the caller holds the transaction).
pub(crate) fn apply_changes(
    conn: &Connection,
    db: &Path,
    changes: &[Change],
) -> Result<(), StateError> {
    let err = |e| StateError::sqlite("apply Synced changes", db, e);
    for change in changes {
        match change {
            Change::Put(path, entry) => put(conn, path, entry).map_err(err)?,
            Change::RemoveTree(path) => remove_tree(conn, path).map_err(err)?,
            Change::Made(kind, id) => {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO unlisted (kind, remote_id) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(rusqlite::params![kind_str(*kind), *id as i64]))
                .map_err(err)?;
            }
            Change::MoveTree { from, to } => {
                if from == to {
                    continue;
                }
                // Read, delete, re-insert: well defined even when `to` lies
                // inside `from` or destination rows exist.
                let rows = read_tree(conn, from).map_err(err)?;
                remove_tree(conn, from).map_err(err)?;
                for row in rows {
                    let (old, entry) = row.into_entry(db)?;
                    let new = old.rebase(from, to).ok_or_else(|| {
                        StateError::corrupt(
                            db,
                            format!("{old} was selected below {from} but is not below it"),
                        )
                    })?;
                    put(conn, &new, &entry).map_err(err)?;
                }
            }
        }
    }
    Ok(())
}

impl StateDb {
    /// The whole Synced tree.
    pub fn load_synced(&self) -> Result<Tree<SyncedEntry>, StateError> {
        let mut tree = Tree::new();
        let sql = format!("SELECT {COLUMNS} FROM synced");
        self.read_rows("load the Synced tree", &sql, [], &mut tree, |_| true)?;
        Ok(tree)
    }

    /// The part of the Synced tree that `scopes` look at (see
    /// [`crate::model::Scope`]): each scope's spine, then its content by
    /// one range read (deep) or the base's direct children (shallow).
    pub fn load_synced_scoped(
        &self,
        scopes: &[crate::model::Scope],
    ) -> Result<Tree<SyncedEntry>, StateError> {
        let mut tree = Tree::new();
        for scope in scopes {
            for p in scope.spine() {
                if let Some(e) = self.get_synced(&p)? {
                    tree.insert(p, e);
                }
            }
            let filter = match (scope.base.is_root(), scope.deep) {
                (true, true) => "path <> '' AND ?1 = ''",
                (true, false) => "instr(path, '/') = 0 AND path <> '' AND ?1 = ''",
                (false, _) => "path >= (?1 || '/') AND path < (?1 || '0')",
            };
            let sql = format!("SELECT {COLUMNS} FROM synced WHERE {filter}");
            self.read_rows(
                "load part of the Synced tree",
                &sql,
                [scope.base.as_str()],
                &mut tree,
                |p| scope.contains(p),
            )?;
        }
        Ok(tree)
    }

    /// Up to `limit` files recorded below folder `path` (at any depth), in
    /// path order.
    pub fn files_below(
        &self,
        path: &RelPath,
        limit: usize,
    ) -> Result<Tree<SyncedEntry>, StateError> {
        let mut tree = Tree::new();
        let sql = format!(
            "SELECT {COLUMNS} FROM synced WHERE path >= (?1 || '/') AND path < (?1 || '0') \
             AND kind = 'file' ORDER BY path LIMIT ?2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_rows(
            "read files below a folder",
            &sql,
            rusqlite::params![path.as_str(), limit],
            &mut tree,
            |_| true,
        )?;
        Ok(tree)
    }

    /// Adds the rows `sql` selects (the [`COLUMNS`]) that `keep` accepts.
    fn read_rows(
        &self,
        what: &'static str,
        sql: &str,
        args: impl rusqlite::Params,
        tree: &mut Tree<SyncedEntry>,
        keep: impl Fn(&RelPath) -> bool,
    ) -> Result<(), StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite(what, db, e);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let mut rows = stmt.query(args).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let (path, entry) = RawRow::from_row(row).map_err(err)?.into_entry(db)?;
            if keep(&path) {
                tree.insert(path, entry);
            }
        }
        Ok(())
    }

    /// The number of files in the Synced tree.
    /// The Synced files and their bytes.
    pub fn synced_totals(&self) -> Result<(u64, u64), StateError> {
        let (n, bytes): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(size), 0) FROM synced WHERE kind = 'file'",
            )
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| StateError::sqlite("count the Synced bytes", &self.path, e))?;
        Ok((n as u64, bytes as u64))
    }

    pub fn synced_files(&self) -> Result<u64, StateError> {
        self.count(
            "count the Synced files",
            "SELECT count(*) FROM synced WHERE kind = 'file'",
        )
    }

    /// The number of entries in the Synced tree.
    /// Host entries (kind, id) dcsync made or moved that no listing has
    /// shown there yet.
    pub fn unlisted(&self) -> Result<std::collections::HashSet<(Kind, u64)>, StateError> {
        let err = |e| StateError::sqlite("read the unlisted entries", &self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, remote_id FROM unlisted")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?
            .collect::<Result<Vec<(String, i64)>, _>>()
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (if k == "dir" { Kind::Dir } else { Kind::File }, v as u64))
            .collect())
    }

    /// A listing showed these entries (or they are no longer tracked).
    pub fn drop_unlisted(&mut self, ids: &[(Kind, u64)]) -> Result<(), StateError> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = |e| StateError::sqlite("update the unlisted entries", &path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM unlisted WHERE kind = ?1 AND remote_id = ?2")
                .map_err(err)?;
            for (kind, id) in ids {
                stmt.execute(rusqlite::params![kind_str(*kind), *id as i64])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    pub fn synced_len(&self) -> Result<u64, StateError> {
        self.count("count the Synced tree", "SELECT count(*) FROM synced")
    }

    fn count(&self, what: &'static str, sql: &str) -> Result<u64, StateError> {
        let n: i64 = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| StateError::sqlite(what, &self.path, e))?;
        Ok(n as u64)
    }

    /// The Synced entry at `path`, if any.
    pub fn get_synced(&self, path: &RelPath) -> Result<Option<SyncedEntry>, StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("read a Synced entry", db, e);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM synced WHERE path = ?1"))
            .map_err(err)?;
        let mut rows = stmt.query([path.as_str()]).map_err(err)?;
        match rows.next().map_err(err)? {
            Some(row) => Ok(Some(RawRow::from_row(row).map_err(err)?.into_entry(db)?.1)),
            None => Ok(None),
        }
    }

    /// The paths Synced records for the host entry of this kind and id
    /// (one for a file; a folder's id may be recorded twice only by a
    /// stale row). Indexed (`synced_remote_id`): for the focused pass's
    /// look at entries that came from outside its scopes.
    pub fn synced_paths_of(&self, kind: Kind, id: u64) -> Result<Vec<RelPath>, StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("look up a host id in the Synced tree", db, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM synced WHERE remote_id = ?1 AND kind = ?2")
            .map_err(err)?;
        let rows = stmt
            .query_map(params![id as i64, kind_str(kind)], |r| {
                r.get::<_, String>(0)
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            // A path that is no longer valid is no place to look at.
            if let Some(p) = RelPath::new(&r.map_err(err)?) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Applies a batch of changes atomically: all of them or none.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), StateError> {
        let db = &self.path;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StateError::sqlite("start a transaction", db, e))?;
        apply_changes(&tx, db, changes)?;
        tx.commit()
            .map_err(|e| StateError::sqlite("commit Synced changes", db, e))
    }
}
