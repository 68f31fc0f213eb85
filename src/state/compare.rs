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

/// No key: the walk's rows come in no useful order (folders as threads
/// take them), and inserting them into a B-tree keyed by path missed the
/// page cache on a quarter of the rows at a million files; appended here
/// and sorted once by the merge's `ORDER BY` (SQLite's external sorter).
/// A walk sees each path once.
const LOCAL_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS local_now (
    path     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
)";

const REMOTE_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS remote_now (
    path   TEXT PRIMARY KEY NOT NULL,
    kind   TEXT NOT NULL,
    id     INTEGER NOT NULL,
    parent INTEGER,
    name   TEXT NOT NULL,
    size   INTEGER NOT NULL
) WITHOUT ROWID";

/// The Synced rows in path order, as the merge reads them for each side:
/// path, kind, then the fields compared (local: inode, size, mtime; host:
/// id, parent folder, size, name).
const SYNCED_LOCAL: &str =
    "SELECT path, kind, ino, local_size, mtime_ns, '' FROM synced ORDER BY path";
const NOW_LOCAL: &str =
    "SELECT path, kind, ino, size, mtime_ns, '' FROM temp.local_now ORDER BY path";
const SYNCED_REMOTE: &str =
    "SELECT path, kind, remote_id, remote_parent, size, remote_name FROM synced ORDER BY path";
const NOW_REMOTE: &str =
    "SELECT path, kind, id, parent, size, name FROM temp.remote_now ORDER BY path";

/// One row of either table in the merge (buffers reused row to row).
#[derive(Default)]
struct Cur {
    path: String,
    /// 0 file, 1 folder, 2 anything else.
    kind: u8,
    /// Local: inode. Host: id.
    n1: i64,
    /// Local: size. Host: parent folder id.
    n2: Option<i64>,
    /// Local: mtime. Host: size.
    n3: i64,
    /// Host: name (empty for the local side).
    name: String,
}

fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reads the next row of `rows` into `c`; `false` at the end.
fn advance(rows: &mut rusqlite::Rows<'_>, c: &mut Cur) -> rusqlite::Result<bool> {
    let Some(r) = rows.next()? else {
        return Ok(false);
    };
    c.path.clear();
    c.path.push_str(text(r, 0)?);
    c.kind = match text(r, 1)? {
        "file" => 0,
        "dir" => 1,
        _ => 2,
    };
    c.n1 = r.get(2)?;
    c.n2 = r.get(3)?;
    c.n3 = r.get(4)?;
    c.name.clear();
    c.name.push_str(text(r, 5)?);
    Ok(true)
}

/// Whether the entry `now` at a Synced path is not as Synced (`s`) agreed.
fn not_as_agreed(side: NowSide, s: &Cur, now: &Cur) -> bool {
    let file = s.kind == 0;
    match side {
        // Kind, inode; files: size and mtime (the scan's fast check).
        NowSide::Local => {
            now.kind != s.kind || now.n1 != s.n1 || (file && (now.n2 != s.n2 || now.n3 != s.n3))
        }
        // Kind, id, parent folder, name; files: size.
        NowSide::Remote => {
            now.kind != s.kind
                || now.n1 != s.n1
                || now.n2 != s.n2
                || now.name != s.name
                || (file && now.n3 != s.n3)
        }
    }
}

/// The Synced entries below a folder (the root: all), in path order, as
/// the folder comparison reads them (the columns of [`SYNCED_LOCAL`]).
const SYNCED_BELOW: &str = "SELECT path, kind, ino, local_size, mtime_ns, '' FROM synced
    WHERE path >= ?1 AND path < ?2 ORDER BY path";
const SYNCED_BELOW_ROOT: &str =
    "SELECT path, kind, ino, local_size, mtime_ns, '' FROM synced WHERE path >= ?1 ORDER BY path";

/// A local entry as a row of the merge (its path is not needed).
fn local_cur(e: &LocalEntry) -> Cur {
    Cur {
        kind: match e.kind {
            Kind::File => 0,
            Kind::Dir => 1,
        },
        n1: e.meta.ino as i64,
        n2: Some(e.meta.size as i64),
        n3: e.meta.mtime_ns,
        ..Cur::default()
    }
}

/// What the comparisons of local folders found so far.
#[derive(Debug, Default)]
pub struct LocalDifferences {
    /// Paths where the local side differs from Synced (a Synced entry
    /// missing or not as agreed, or an entry Synced does not have), in the
    /// order found.
    pub paths: Vec<RelPath>,
    /// Empty local files Synced does not have (held back by every pass, as
    /// the host cannot store them): not differences.
    pub held_back: Vec<RelPath>,
}

/// The page cache of the temporary tables, KiB (per connection; the
/// check uses two).
const TEMP_CACHE_KIB: i64 = 4096;

impl StateDb {
    /// Starts a comparison of `side`: its temporary table, empty.
    pub fn now_begin(&mut self, side: NowSide) -> Result<(), StateError> {
        let (create, clear) = match side {
            NowSide::Local => (LOCAL_TABLE, "DELETE FROM temp.local_now"),
            NowSide::Remote => (REMOTE_TABLE, "DELETE FROM temp.remote_now"),
        };
        // The rows go to a temporary file, whatever the build's default;
        // no rollback journal for them (a failed comparison is dropped).
        // The temporary database's page cache is 0 unless set once it
        // exists (SQLite then keeps a handful of pages: at a million rows
        // its root page was read back from the file once per five rows).
        self.conn
            .execute_batch(&format!(
                "PRAGMA temp_store = FILE; PRAGMA temp.journal_mode = OFF; {create};
                 PRAGMA temp.cache_size = -{TEMP_CACHE_KIB}; {clear};"
            ))
            .map_err(|e| StateError::sqlite("create a temporary table", &self.path, e))
    }

    /// Adds local entries (in one transaction). The check compares local
    /// folders one by one instead ([`Self::local_folder_differences`]);
    /// the tests compare that with this table's merge.
    #[cfg(test)]
    pub fn now_add_local(&mut self, rows: &[(RelPath, LocalEntry)]) -> Result<(), StateError> {
        let err = |e| StateError::sqlite("fill a temporary table", &self.path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO temp.local_now (path, kind, ino, size, mtime_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
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
    ///
    /// A merge of the two tables read in path order (both are keyed by
    /// path): linear in the rows, where joins seeking one table per row of
    /// the other cost a B-tree descent each (a fifth of a no-change pass's
    /// CPU at a million files). Local empty files Synced does not have are
    /// held back by every pass (the host cannot store them): not a
    /// difference. The root row is never one.
    pub fn now_differences(
        &self,
        side: NowSide,
        limit: usize,
    ) -> Result<Option<Vec<RelPath>>, StateError> {
        let err = |e| StateError::sqlite("compare with the Synced tree", &self.path, e);
        let (synced_sql, now_sql) = match side {
            NowSide::Local => (SYNCED_LOCAL, NOW_LOCAL),
            NowSide::Remote => (SYNCED_REMOTE, NOW_REMOTE),
        };
        let mut synced_st = self.conn.prepare_cached(synced_sql).map_err(err)?;
        let mut now_st = self.conn.prepare_cached(now_sql).map_err(err)?;
        let mut synced_rows = synced_st.query([]).map_err(err)?;
        let mut now_rows = now_st.query([]).map_err(err)?;
        let (mut s, mut n) = (Cur::default(), Cur::default());
        let mut more_s = advance(&mut synced_rows, &mut s).map_err(err)?;
        let mut more_n = advance(&mut now_rows, &mut n).map_err(err)?;
        let mut out: Vec<RelPath> = Vec::new();
        loop {
            let order = match (more_s, more_n) {
                (false, false) => break,
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (true, true) => s.path.as_str().cmp(n.path.as_str()),
            };
            let differs = match order {
                // Synced only: missing on this side.
                std::cmp::Ordering::Less => !s.path.is_empty(),
                std::cmp::Ordering::Equal => !s.path.is_empty() && not_as_agreed(side, &s, &n),
                // Not in Synced: new (an empty local file is held back).
                std::cmp::Ordering::Greater => {
                    !(side == NowSide::Local && n.kind == 0 && n.n2 == Some(0))
                }
            };
            if differs {
                let p = if order == std::cmp::Ordering::Greater {
                    &n.path
                } else {
                    &s.path
                };
                out.push(RelPath::new(p).unwrap_or_else(RelPath::root));
                if out.len() > limit {
                    return Ok(None);
                }
            }
            if order != std::cmp::Ordering::Greater {
                more_s = advance(&mut synced_rows, &mut s).map_err(err)?;
            }
            if order != std::cmp::Ordering::Less {
                more_n = advance(&mut now_rows, &mut n).map_err(err)?;
            }
        }
        Ok(Some(out))
    }

    /// Compares one local folder, `dir`, with the Synced tree: `entries`
    /// are the whole of what it holds now (the walk's, in path order, each
    /// a child of `dir`). Adds to `found` every child that differs, and
    /// every Synced entry deeper down whose folder is not a local folder
    /// now (missing, a file, or left out): no listing will compare those.
    /// The Synced entries below a child that is a local folder are that
    /// folder's own comparison's, so the walk must compare every folder it
    /// lists; together, the comparisons of all folders find what
    /// [`Self::now_differences`] finds for the local side.
    ///
    /// Reads Synced in path order from `dir` on, seeking past each local
    /// subfolder's entries: about one step per child plus one seek per
    /// subfolder. Stops adding once `found` holds more than `limit` paths.
    pub fn local_folder_differences(
        &self,
        dir: &RelPath,
        entries: &[(RelPath, LocalEntry)],
        limit: usize,
        found: &mut LocalDifferences,
    ) -> Result<(), StateError> {
        let err = |e| StateError::sqlite("compare with the Synced tree", &self.path, e);
        let prefix = if dir.is_root() {
            String::new()
        } else {
            format!("{}/", dir.as_str())
        };
        // Every path in [`a/b/`, `a/b0`) starts with `a/b/` (`0` follows `/`).
        let end = (!dir.is_root()).then(|| format!("{}0", dir.as_str()));
        let mut st = self
            .conn
            .prepare_cached(if end.is_some() {
                SYNCED_BELOW
            } else {
                SYNCED_BELOW_ROOT
            })
            .map_err(err)?;
        let local_dir = |child: &str| {
            let path = format!("{prefix}{child}");
            entries
                .binary_search_by(|(p, _)| p.as_str().cmp(&path))
                .is_ok_and(|i| entries[i].1.kind == Kind::Dir)
        };
        let new = |p: &RelPath, e: &LocalEntry, found: &mut LocalDifferences| {
            if e.kind == Kind::File && e.meta.size == 0 {
                found.held_back.push(p.clone());
            } else {
                found.paths.push(p.clone());
            }
        };
        let mut local = entries.iter().peekable();
        let mut s = Cur::default();
        let mut from = prefix.clone();
        // The child whose Synced entries below are all missing (not a local folder).
        let mut gone = String::new();
        'seek: loop {
            let mut rows = match &end {
                Some(end) => st.query(params![from, end]),
                None => st.query(params![from]),
            }
            .map_err(err)?;
            while advance(&mut rows, &mut s).map_err(err)? {
                if found.paths.len() > limit {
                    return Ok(());
                }
                let Some(rest) = s.path.get(prefix.len()..).filter(|r| !r.is_empty()) else {
                    continue; // the root row
                };
                if let Some(i) = rest.find('/') {
                    let child = &rest[..i];
                    if child != gone {
                        if local_dir(child) {
                            // Below a local folder: its own comparison's.
                            from = format!("{prefix}{child}0");
                            continue 'seek;
                        }
                        gone = child.to_owned();
                    }
                    found.paths.extend(RelPath::new(&s.path));
                    continue;
                }
                while let Some((p, e)) = local.next_if(|(p, _)| p.as_str() < s.path.as_str()) {
                    new(p, e, found);
                }
                match local.next_if(|(p, _)| p.as_str() == s.path) {
                    Some((p, e)) => {
                        if not_as_agreed(NowSide::Local, &s, &local_cur(e)) {
                            found.paths.push(p.clone());
                        }
                    }
                    None => found.paths.extend(RelPath::new(&s.path)),
                }
            }
            break;
        }
        for (p, e) in local {
            new(p, e, found);
        }
        Ok(())
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
    #[cfg(test)]
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

#[cfg(test)]
mod tests {
    //! The merge against the joins it replaced (kept here as the oracle).
    use super::*;
    use crate::model::{LocalMeta, RemoteEntry, SyncedEntry};

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

    /// What the joins listed: both queries of a side, sorted.
    fn by_joins(db: &StateDb, side: NowSide) -> Vec<String> {
        let (changed, new) = match side {
            NowSide::Local => (LOCAL_CHANGED, LOCAL_NEW),
            NowSide::Remote => (REMOTE_CHANGED, REMOTE_NEW),
        };
        let mut out = Vec::new();
        for sql in [changed, new] {
            let mut st = db.conn.prepare(sql).unwrap();
            let rows = st.query_map([i64::MAX], |r| r.get::<_, String>(0)).unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out.sort();
        out
    }

    /// The temporary tables get a page cache of their own (SQLite's is
    /// 0 for them unless set, and the rows then went through the file).
    #[test]
    fn the_temporary_tables_have_a_page_cache() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut db = StateDb::open(&dir.path().join("c.db")).unwrap();
        for side in [NowSide::Local, NowSide::Remote] {
            db.now_begin(side).unwrap();
            let kib: i64 = db
                .conn
                .query_row("PRAGMA temp.cache_size", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kib, -TEMP_CACHE_KIB, "{side:?}");
        }
    }

    /// Random Synced trees and sides (shared paths with every field
    /// changed or not, paths on one side only, empty files, names that
    /// sort around `/`): the merge lists exactly what the joins listed.
    #[test]
    fn the_merge_finds_what_the_joins_found() {
        let names = [
            "a", "a.b", "a/b", "a/b/c", "a-", "a0", "b", "é", "z/y", "a/a",
        ];
        let dir = tempfile::TempDir::new().unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        for round in 0..300 {
            let mut db = StateDb::open(&dir.path().join(format!("{round}.db"))).unwrap();
            // Every field drawn from two values on its own, so each one
            // alone is sometimes the only difference.
            let kind = |r: u64| if r == 0 { Kind::File } else { Kind::Dir };
            let mut changes = Vec::new();
            let mut local = Vec::new();
            let mut remote = Vec::new();
            for name in names {
                let path = RelPath::new(name).unwrap();
                if next(3) > 0 {
                    let e = SyncedEntry {
                        kind: kind(next(2)),
                        local: LocalMeta {
                            dev: 1,
                            ino: next(2),
                            size: next(2),
                            mtime_ns: next(2) as i64,
                        },
                        hashes: Default::default(),
                        remote_id: next(2),
                        remote_parent: (next(2) == 0).then_some(7),
                        remote_name: format!("n{}", next(2)),
                        size: next(2),
                    };
                    changes.push(crate::state::Change::Put(path.clone(), e));
                }
                if next(4) > 0 {
                    let meta = LocalMeta {
                        dev: 1,
                        ino: next(2),
                        size: next(2),
                        mtime_ns: next(2) as i64,
                    };
                    let e = crate::model::LocalEntry {
                        kind: kind(next(2)),
                        meta,
                        hashes: Default::default(),
                    };
                    local.push((path.clone(), e));
                }
                if next(4) > 0 {
                    let e = RemoteEntry {
                        kind: kind(next(2)),
                        id: next(2),
                        parent: (next(2) == 0).then_some(7),
                        size: next(2),
                    };
                    remote.push((path, e, format!("n{}", next(2))));
                }
            }
            db.apply(&changes).unwrap();
            for side in [NowSide::Local, NowSide::Remote] {
                db.now_begin(side).unwrap();
            }
            db.now_add_local(&local).unwrap();
            db.now_add_remote(&remote).unwrap();
            for side in [NowSide::Local, NowSide::Remote] {
                let merged: Vec<String> = db
                    .now_differences(side, usize::MAX - 1)
                    .unwrap()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect();
                assert_eq!(merged, by_joins(&db, side), "round {round}, {side:?}");
                let all = merged.len();
                if all > 0 {
                    assert_eq!(db.now_differences(side, all - 1).unwrap(), None);
                    assert_eq!(
                        db.now_differences(side, all).unwrap().map(|v| v.len()),
                        Some(all)
                    );
                }
                db.now_end(side).unwrap();
            }
        }
    }

    /// Random Synced trees (any shape, even entries without their folder)
    /// and random local trees (as a walk sees them: every entry's folder is
    /// a local folder), compared folder by folder as the walk hands them
    /// over: together the comparisons list exactly what the joins list for
    /// the local side, and hold back the same empty files.
    #[test]
    fn the_folder_comparisons_find_what_the_joins_found() {
        let names = [
            "a", "a.b", "a/b", "a/b/c", "a/b/c/e", "a/b.c", "a.b/x", "a-", "a0", "a0/q", "b", "é",
            "z", "z/y", "a/a",
        ];
        let dir = tempfile::TempDir::new().unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        let kind = |r: u64| if r == 0 { Kind::File } else { Kind::Dir };
        for round in 0..400 {
            let mut db = StateDb::open(&dir.path().join(format!("{round}.db"))).unwrap();
            let mut changes = Vec::new();
            let mut local: crate::model::Tree<LocalEntry> = Default::default();
            for name in names {
                let path = RelPath::new(name).unwrap();
                if next(4) > 0 {
                    let e = SyncedEntry {
                        kind: kind(next(2)),
                        local: LocalMeta {
                            dev: 1,
                            ino: next(2),
                            size: next(2),
                            mtime_ns: next(2) as i64,
                        },
                        hashes: Default::default(),
                        remote_id: 1,
                        remote_parent: None,
                        remote_name: String::new(),
                        size: 0,
                    };
                    changes.push(crate::state::Change::Put(path.clone(), e));
                }
                if next(5) > 0 {
                    let meta = LocalMeta {
                        dev: 1,
                        ino: next(2),
                        size: next(2),
                        mtime_ns: next(2) as i64,
                    };
                    let e = LocalEntry {
                        kind: kind(next(2)),
                        meta,
                        hashes: Default::default(),
                    };
                    local.insert(path, e);
                }
            }
            // What a walk can see: entries whose folders are all local folders.
            let walkable = |p: &RelPath| {
                let mut up = p.parent();
                while let Some(d) = up.filter(|d| !d.is_root()) {
                    if local.get(&d).is_none_or(|e| e.kind != Kind::Dir) {
                        return false;
                    }
                    up = d.parent();
                }
                true
            };
            let local: Vec<(RelPath, LocalEntry)> = local
                .iter()
                .filter(|(p, _)| walkable(p))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect();
            db.apply(&changes).unwrap();
            db.now_begin(NowSide::Local).unwrap();
            db.now_add_local(&local).unwrap();
            let folders = std::iter::once(RelPath::root()).chain(
                local
                    .iter()
                    .filter(|(_, e)| e.kind == Kind::Dir)
                    .map(|(p, _)| p.clone()),
            );
            let compare = |limit: usize| {
                let mut found = LocalDifferences::default();
                for d in folders.clone() {
                    let children: Vec<(RelPath, LocalEntry)> = local
                        .iter()
                        .filter(|(p, _)| p.parent().as_ref() == Some(&d))
                        .cloned()
                        .collect();
                    db.local_folder_differences(&d, &children, limit, &mut found)
                        .unwrap();
                }
                found
            };
            let found = compare(usize::MAX - 1);
            let mut paths: Vec<String> =
                found.paths.iter().map(|p| p.as_str().to_owned()).collect();
            paths.sort();
            assert_eq!(
                paths,
                by_joins(&db, NowSide::Local),
                "round {round}: {local:?}"
            );
            let mut held = found.held_back.clone();
            held.sort();
            assert_eq!(held, db.now_held_back_empty().unwrap(), "round {round}");
            let all = paths.len();
            if all > 0 {
                assert!(compare(all - 1).paths.len() > all - 1, "round {round}");
            }
            db.now_end(NowSide::Local).unwrap();
        }
    }
}
