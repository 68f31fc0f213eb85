//! Comparing a side as it is now with the Synced tree, one folder at a
//! time: the engine's no-change check (`engine::unchanged`) hands over each
//! local folder the walk lists and each host folder a listing shows, and
//! [`StateDb::local_folder_differences`] / [`StateDb::remote_folder_differences`]
//! read the Synced entries below that folder in path order (seeking past
//! the subfolders that will be compared on their own) and list where the
//! side differs: Synced entries missing or not as agreed, and entries
//! Synced does not have. Nothing is written, no table is built, and
//! nothing is sorted beyond one folder: the comparisons of all folders
//! together find what comparing the whole trees would (the tests check it
//! against joins of the whole trees).
//!
//! Reads the `synced` table only; it never writes anything but the
//! `unlisted` entries a listing settles ([`StateDb::settle_unlisted`]).

use super::StateDb;
use super::error::StateError;
use crate::model::{Kind, LocalEntry, RelPath, RemoteEntry};
use rusqlite::params;

/// The Synced entries below a folder (the root: all), in path order, with
/// the fields a side is compared on: path, kind, then local: inode, size,
/// mtime; host: id, parent folder, size, name.
const LOCAL_BELOW: &str = "SELECT path, kind, ino, local_size, mtime_ns, '' FROM synced
    WHERE path >= ?1 AND path < ?2 ORDER BY path";
const LOCAL_BELOW_ROOT: &str =
    "SELECT path, kind, ino, local_size, mtime_ns, '' FROM synced WHERE path >= ?1 ORDER BY path";
const REMOTE_BELOW: &str =
    "SELECT path, kind, remote_id, remote_parent, size, remote_name FROM synced
    WHERE path >= ?1 AND path < ?2 ORDER BY path";
const REMOTE_BELOW_ROOT: &str =
    "SELECT path, kind, remote_id, remote_parent, size, remote_name FROM synced
    WHERE path >= ?1 ORDER BY path";

/// One Synced row as the comparison reads it (buffers reused row to row).
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

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::File => 0,
        Kind::Dir => 1,
    }
}

/// An entry of one side as the comparison needs it.
trait Now {
    fn path(&self) -> &RelPath;
    fn is_dir(&self) -> bool;
    /// Not a difference when Synced does not have it (an empty local file:
    /// every pass holds those back, the host cannot store them).
    fn held_back(&self) -> bool;
    /// Whether this entry, at a Synced path, is not as Synced (`s`) agreed.
    fn not_as_agreed(&self, s: &Cur) -> bool;
}

/// A local entry: kind, inode; files: size and mtime (the scan's fast
/// check, so a file recorded racily clean, with a mtime no file has,
/// always differs).
impl Now for (RelPath, LocalEntry) {
    fn path(&self) -> &RelPath {
        &self.0
    }
    fn is_dir(&self) -> bool {
        self.1.kind == Kind::Dir
    }
    fn held_back(&self) -> bool {
        self.1.kind == Kind::File && self.1.meta.size == 0
    }
    fn not_as_agreed(&self, s: &Cur) -> bool {
        let e = &self.1;
        kind_code(e.kind) != s.kind
            || e.meta.ino as i64 != s.n1
            || (s.kind == 0 && (Some(e.meta.size as i64) != s.n2 || e.meta.mtime_ns != s.n3))
    }
}

/// A host entry with the name it is listed by: kind, id, parent folder,
/// name; files: size.
impl Now for (RelPath, RemoteEntry, String) {
    fn path(&self) -> &RelPath {
        &self.0
    }
    fn is_dir(&self) -> bool {
        self.1.kind == Kind::Dir
    }
    fn held_back(&self) -> bool {
        false
    }
    fn not_as_agreed(&self, s: &Cur) -> bool {
        let e = &self.1;
        kind_code(e.kind) != s.kind
            || e.id as i64 != s.n1
            || e.parent.map(|p| p as i64) != s.n2
            || self.2 != s.name
            || (s.kind == 0 && e.size as i64 != s.n3)
    }
}

/// What the comparisons of one side's folders found so far.
#[derive(Debug, Default)]
pub struct Differences {
    /// Paths where the side differs from Synced (a Synced entry missing or
    /// not as agreed, or an entry Synced does not have), in the order found.
    pub paths: Vec<RelPath>,
    /// Empty local files Synced does not have (held back by every pass, as
    /// the host cannot store them): not differences.
    pub held_back: Vec<RelPath>,
}

impl StateDb {
    /// Compares one local folder, `dir`, with the Synced tree: `entries`
    /// are the whole of what it holds now (the walk's, in path order, each
    /// a child of `dir`). See [`Self::folder_differences`].
    pub fn local_folder_differences(
        &self,
        dir: &RelPath,
        entries: &[(RelPath, LocalEntry)],
        limit: usize,
        found: &mut Differences,
    ) -> Result<(), StateError> {
        let sql = if dir.is_root() {
            LOCAL_BELOW_ROOT
        } else {
            LOCAL_BELOW
        };
        self.folder_differences(sql, dir, entries, limit, found)
    }

    /// Compares one host folder, `dir`, with the Synced tree: `entries` are
    /// its listing as the check keeps it (the ignore rules applied), with
    /// the names listed, in path order. See [`Self::folder_differences`].
    pub fn remote_folder_differences(
        &self,
        dir: &RelPath,
        entries: &[(RelPath, RemoteEntry, String)],
        limit: usize,
        found: &mut Differences,
    ) -> Result<(), StateError> {
        let sql = if dir.is_root() {
            REMOTE_BELOW_ROOT
        } else {
            REMOTE_BELOW
        };
        self.folder_differences(sql, dir, entries, limit, found)
    }

    /// Adds to `found` every child of `dir` that differs, and every Synced
    /// entry deeper down whose folder is not a folder on this side now
    /// (missing, a file, or left out): no comparison will look at those.
    /// The Synced entries below a child that is a folder here are that
    /// folder's own comparison's, so the caller must compare every folder
    /// of the side; together the comparisons find every difference.
    ///
    /// Reads Synced in path order from `dir` on, seeking past each
    /// subfolder's entries: about one step per child plus one seek per
    /// subfolder. Stops adding once `found` holds more than `limit` paths.
    fn folder_differences<T: Now>(
        &self,
        sql: &str,
        dir: &RelPath,
        entries: &[T],
        limit: usize,
        found: &mut Differences,
    ) -> Result<(), StateError> {
        let err = |e| StateError::sqlite("compare with the Synced tree", &self.path, e);
        let prefix = if dir.is_root() {
            String::new()
        } else {
            format!("{}/", dir.as_str())
        };
        // Every path in [`a/b/`, `a/b0`) starts with `a/b/` (`0` follows `/`).
        let end = (!dir.is_root()).then(|| format!("{}0", dir.as_str()));
        let mut st = self.conn.prepare_cached(sql).map_err(err)?;
        let is_folder_here = |child: &str| {
            let path = format!("{prefix}{child}");
            entries
                .binary_search_by(|e| e.path().as_str().cmp(&path))
                .is_ok_and(|i| entries[i].is_dir())
        };
        let new = |e: &T, found: &mut Differences| {
            if e.held_back() {
                found.held_back.push(e.path().clone());
            } else {
                found.paths.push(e.path().clone());
            }
        };
        let mut here = entries.iter().peekable();
        let mut s = Cur::default();
        let mut from = prefix.clone();
        // The child whose Synced entries below are all missing (not a folder here).
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
                        if is_folder_here(child) {
                            // Below a folder here: its own comparison's.
                            from = format!("{prefix}{child}0");
                            continue 'seek;
                        }
                        gone = child.to_owned();
                    }
                    found.paths.extend(RelPath::new(&s.path));
                    continue;
                }
                while let Some(e) = here.next_if(|e| e.path().as_str() < s.path.as_str()) {
                    new(e, found);
                }
                match here.next_if(|e| e.path().as_str() == s.path) {
                    Some(e) => {
                        if e.not_as_agreed(&s) {
                            found.paths.push(e.path().clone());
                        }
                    }
                    None => found.paths.extend(RelPath::new(&s.path)),
                }
            }
            break;
        }
        for e in here {
            new(e, found);
        }
        Ok(())
    }

    /// Settles the unlisted entries (`StateDb::unlisted`) as a full pass
    /// does: those in `listed` (a listing showed them) and those no longer
    /// tracked go; returns how many stay (made by dcsync, tracked, and not
    /// listed).
    pub fn settle_unlisted(&mut self, listed: &[(Kind, u64)]) -> Result<u64, StateError> {
        self.drop_unlisted(listed)?;
        let err = |e| StateError::sqlite("update the unlisted entries", &self.path, e);
        let left: i64 = self
            .conn
            .query_row("SELECT count(*) FROM unlisted", [], |r| r.get(0))
            .map_err(err)?;
        if left == 0 {
            return Ok(0);
        }
        self.conn
            .execute(
                "DELETE FROM unlisted WHERE NOT EXISTS (SELECT 1 FROM synced s
                   WHERE s.remote_id = unlisted.remote_id AND s.kind = unlisted.kind)",
                [],
            )
            .map_err(err)?;
        let left: i64 = self
            .conn
            .query_row("SELECT count(*) FROM unlisted", [], |r| r.get(0))
            .map_err(err)?;
        Ok(left as u64)
    }
}

#[cfg(test)]
mod tests {
    //! The folder comparisons against joins of the whole trees (the oracle:
    //! what the check computed before it compared folder by folder).
    use super::*;
    use crate::model::{LocalMeta, SyncedEntry, Tree};

    /// The whole trees of both sides, in temporary tables.
    const TABLES: &str = "
        CREATE TEMP TABLE local_now (path TEXT PRIMARY KEY, kind TEXT, ino INTEGER,
            size INTEGER, mtime_ns INTEGER);
        CREATE TEMP TABLE remote_now (path TEXT PRIMARY KEY, kind TEXT, id INTEGER,
            parent INTEGER, name TEXT, size INTEGER);";

    /// A Synced entry the local side does not hold as agreed: missing, another
    /// kind, another inode, or (files) another size or mtime.
    const LOCAL_CHANGED: &str =
        "SELECT s.path FROM synced s LEFT JOIN temp.local_now l ON l.path = s.path
        WHERE s.path <> '' AND (l.path IS NULL OR l.kind <> s.kind OR l.ino <> s.ino
          OR (s.kind = 'file' AND (l.size <> s.local_size OR l.mtime_ns <> s.mtime_ns)))";

    /// A local entry Synced does not have, but for empty files.
    const LOCAL_NEW: &str = "SELECT l.path FROM temp.local_now l
        WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = l.path)
          AND NOT (l.kind = 'file' AND l.size = 0)";

    /// The empty local files Synced does not have.
    const LOCAL_HELD: &str = "SELECT l.path FROM temp.local_now l
        WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = l.path)
          AND l.kind = 'file' AND l.size = 0";

    /// A Synced entry the host does not hold as agreed: missing at its path,
    /// another kind, id, parent folder or name, or (files) another size.
    const REMOTE_CHANGED: &str =
        "SELECT s.path FROM synced s LEFT JOIN temp.remote_now r ON r.path = s.path
        WHERE s.path <> '' AND (r.path IS NULL OR r.kind <> s.kind OR r.id <> s.remote_id
          OR r.parent IS NOT s.remote_parent OR r.name <> s.remote_name
          OR (s.kind = 'file' AND r.size <> s.size))";

    /// A host entry Synced does not have (at its path).
    const REMOTE_NEW: &str = "SELECT r.path FROM temp.remote_now r
        WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.path = r.path)";

    fn kind_str(k: Kind) -> &'static str {
        match k {
            Kind::File => "file",
            Kind::Dir => "dir",
        }
    }

    /// What the joins list for each query, sorted.
    fn by_joins(db: &StateDb, queries: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for sql in queries {
            let mut st = db.conn.prepare(sql).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out.sort();
        out
    }

    /// The sides in the oracle's tables.
    fn fill(
        db: &StateDb,
        local: &[(RelPath, LocalEntry)],
        remote: &[(RelPath, RemoteEntry, String)],
    ) {
        db.conn.execute_batch(TABLES).unwrap();
        for (p, e) in local {
            db.conn
                .execute(
                    "INSERT INTO temp.local_now VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        p.as_str(),
                        kind_str(e.kind),
                        e.meta.ino as i64,
                        e.meta.size as i64,
                        e.meta.mtime_ns
                    ],
                )
                .unwrap();
        }
        for (p, e, name) in remote {
            db.conn
                .execute(
                    "INSERT INTO temp.remote_now VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        p.as_str(),
                        kind_str(e.kind),
                        e.id as i64,
                        e.parent.map(|p| p as i64),
                        name,
                        e.size as i64
                    ],
                )
                .unwrap();
        }
    }

    /// The entries of a side a walk (or a listing) reaches: those whose
    /// folders are all folders on that side, in path order.
    fn reachable<T: Now + Clone>(all: &[T]) -> Vec<T> {
        let dirs: std::collections::HashSet<&RelPath> =
            all.iter().filter(|e| e.is_dir()).map(Now::path).collect();
        let mut out: Vec<T> = all
            .iter()
            .filter(|e| {
                let mut up = e.path().parent();
                while let Some(d) = up.filter(|d| !d.is_root()) {
                    if !dirs.contains(&d) {
                        return false;
                    }
                    up = d.parent();
                }
                true
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.path().cmp(b.path()));
        out
    }

    /// Each folder of a side (and the root) compared with its children,
    /// as the check hands them over.
    fn by_folders<T: Now + Clone>(
        db: &StateDb,
        side: &[T],
        limit: usize,
        compare: impl Fn(&StateDb, &RelPath, &[T], usize, &mut Differences),
    ) -> Differences {
        let mut found = Differences::default();
        let folders = std::iter::once(RelPath::root())
            .chain(side.iter().filter(|e| e.is_dir()).map(|e| e.path().clone()));
        for d in folders {
            let children: Vec<T> = side
                .iter()
                .filter(|e| e.path().parent().as_ref() == Some(&d))
                .cloned()
                .collect();
            compare(db, &d, &children, limit, &mut found);
        }
        found
    }

    fn sorted(paths: &[RelPath]) -> Vec<String> {
        let mut v: Vec<String> = paths.iter().map(|p| p.as_str().to_owned()).collect();
        v.sort();
        v
    }

    /// Random Synced trees (any shape, even entries without their folder)
    /// and random sides as a walk or listings reach them (every entry's
    /// folder a folder of that side): every field drawn from two values on
    /// its own, so each alone is sometimes the only difference, names that
    /// sort around `/`, empty files. Compared folder by folder, the sides
    /// list exactly what the joins of the whole trees list, hold back the
    /// same empty files, and a limit ends the listing just past it.
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
            let mut local = Vec::new();
            let mut remote = Vec::new();
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
                        remote_id: next(2),
                        remote_parent: (next(2) == 0).then_some(7),
                        remote_name: format!("n{}", next(2)),
                        size: next(2),
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
                    local.push((path.clone(), e));
                }
                if next(5) > 0 {
                    let e = RemoteEntry {
                        kind: kind(next(2)),
                        id: next(2),
                        parent: (next(2) == 0).then_some(7),
                        size: next(2),
                    };
                    remote.push((path, e, format!("n{}", next(2))));
                }
            }
            let (local, remote) = (reachable(&local), reachable(&remote));
            db.apply(&changes).unwrap();
            fill(&db, &local, &remote);
            let at_local =
                |db: &StateDb, d: &RelPath, c: &[(RelPath, LocalEntry)], l, f: &mut _| {
                    db.local_folder_differences(d, c, l, f).unwrap()
                };
            let at_remote =
                |db: &StateDb, d: &RelPath, c: &[(RelPath, RemoteEntry, String)], l, f: &mut _| {
                    db.remote_folder_differences(d, c, l, f).unwrap()
                };
            let found = by_folders(&db, &local, usize::MAX - 1, at_local);
            let want = by_joins(&db, &[LOCAL_CHANGED, LOCAL_NEW]);
            assert_eq!(
                sorted(&found.paths),
                want,
                "round {round}, local: {local:?}"
            );
            assert_eq!(
                sorted(&found.held_back),
                by_joins(&db, &[LOCAL_HELD]),
                "round {round}"
            );
            if let Some(n) = want.len().checked_sub(1) {
                assert!(
                    by_folders(&db, &local, n, at_local).paths.len() > n,
                    "round {round}"
                );
            }
            let found = by_folders(&db, &remote, usize::MAX - 1, at_remote);
            let want = by_joins(&db, &[REMOTE_CHANGED, REMOTE_NEW]);
            assert_eq!(
                sorted(&found.paths),
                want,
                "round {round}, remote: {remote:?}"
            );
            assert!(found.held_back.is_empty());
            if let Some(n) = want.len().checked_sub(1) {
                assert!(
                    by_folders(&db, &remote, n, at_remote).paths.len() > n,
                    "round {round}"
                );
            }
        }
    }

    /// A Synced tree of 10 folders of 10 files each, the same on the local
    /// side: each folder comparison takes one step per Synced row of its
    /// own and finds nothing; a tree of files named around the folders'
    /// names (`d1`, `d1.x`, `d1/…`, `d10`) keeps each folder's rows apart.
    #[test]
    fn an_unchanged_tree_has_no_differences() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut db = StateDb::open(&dir.path().join("u.db")).unwrap();
        let meta = |i: u64| LocalMeta {
            dev: 1,
            ino: i,
            size: 3,
            mtime_ns: 5,
        };
        let mut local: Tree<LocalEntry> = Tree::new();
        let mut changes = Vec::new();
        let mut i = 0;
        for d in 0..10 {
            for name in [format!("d{d}"), format!("d{d}.x")] {
                i += 1;
                let kind = if name.ends_with(".x") {
                    Kind::File
                } else {
                    Kind::Dir
                };
                let p = RelPath::new(&name).unwrap();
                local.insert(
                    p.clone(),
                    LocalEntry {
                        kind,
                        meta: meta(i),
                        hashes: Default::default(),
                    },
                );
                changes.push(crate::state::Change::Put(p, synced(kind, meta(i), i)));
            }
            for f in 0..10 {
                i += 1;
                let p = RelPath::new(&format!("d{d}/f{f}")).unwrap();
                local.insert(
                    p.clone(),
                    LocalEntry {
                        kind: Kind::File,
                        meta: meta(i),
                        hashes: Default::default(),
                    },
                );
                changes.push(crate::state::Change::Put(p, synced(Kind::File, meta(i), i)));
            }
        }
        db.apply(&changes).unwrap();
        let local: Vec<(RelPath, LocalEntry)> = local.into_iter().collect();
        let found = by_folders(&db, &local, usize::MAX - 1, |db, d, c, l, f| {
            db.local_folder_differences(d, c, l, f).unwrap()
        });
        assert!(
            found.paths.is_empty() && found.held_back.is_empty(),
            "{found:?}"
        );
    }

    /// A Synced entry of host id `id` (a file id is at one path only).
    fn synced(kind: Kind, local: LocalMeta, id: u64) -> SyncedEntry {
        SyncedEntry {
            kind,
            local,
            hashes: Default::default(),
            remote_id: id,
            remote_parent: None,
            remote_name: String::new(),
            size: 3,
        }
    }
}
