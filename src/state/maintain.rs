//! Keeping the state database compact on a box that runs for years.
//!
//! # What it owns
//! - the WAL's size: a checkpoint after every pass, truncating the `-wal`
//!   file when it grew past [`WAL_LIMIT_BYTES`] (SQLite's
//!   `journal_size_limit` trims it to that size at every later reset too);
//! - free pages: new databases use `auto_vacuum = INCREMENTAL` and give
//!   their free pages back after a pass that freed at least
//!   [`INCREMENTAL_MIN_PAGES`]; a database made before that (or by an
//!   older SQLite) is rewritten once with `VACUUM` when at least a quarter
//!   of it, and at least [`VACUUM_MIN_BYTES`], is free, which also turns
//!   incremental vacuum on for it.
//!
//! # What it never does
//! It never runs inside a pass (the engine calls [`StateDb::maintain`] after
//! the pass's last write) and never changes a row. A checkpoint that another
//! connection's open read keeps from finishing is not waited for beyond the
//! busy timeout: the WAL can only grow while that read stays open (dcsync's
//! own reads are single statements), and the next pass's checkpoint trims it.

use super::{StateDb, StateError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The size SQLite trims the `-wal` file to after a checkpoint resets it,
/// and the size above which [`StateDb::maintain`] truncates it right away.
pub const WAL_LIMIT_BYTES: i64 = 16 * 1024 * 1024;
/// Free pages an incremental vacuum waits for (4 MiB of 4 KiB pages): fewer
/// are reused by the next passes' writes anyway.
pub const INCREMENTAL_MIN_PAGES: i64 = 1024;
/// Free space a full `VACUUM` of a database without incremental vacuum
/// waits for (with at least a quarter of the file free).
pub const VACUUM_MIN_BYTES: i64 = 16 * 1024 * 1024;

/// How long a checkpoint waits for another connection's read to end.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// What one [`StateDb::maintain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// WAL frames the checkpoint could not copy because another
    /// connection's read still needs them (0: the WAL was emptied).
    pub wal_frames_left: i64,
    /// The WAL was truncated to zero bytes.
    pub wal_truncated: bool,
    /// Pages given back to the file system by an incremental vacuum.
    pub pages_freed: i64,
    /// The database was rewritten with `VACUUM` (bytes before, after).
    pub vacuumed: Option<(i64, i64)>,
}

/// Sizes of the database file, from SQLite's pragmas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSize {
    pub page_size: i64,
    pub pages: i64,
    pub free_pages: i64,
    /// 0 none, 1 full, 2 incremental (`PRAGMA auto_vacuum`).
    pub auto_vacuum: i64,
}

impl DbSize {
    pub fn bytes(&self) -> i64 {
        self.page_size * self.pages
    }
}

/// Settings every connection gets (see the module docs), before it
/// switches to WAL: a file without pages yet gets incremental vacuum (later
/// it takes a rewrite).
pub(super) fn size_policy(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| StateError::sqlite("read the database's size", path, e))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| StateError::sqlite("enable incremental vacuum", path, e))?;
    }
    let _: i64 = conn
        .query_row(
            &format!("PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}"),
            [],
            |r| r.get(0),
        )
        .map_err(|e| StateError::sqlite("limit the WAL's size", path, e))?;
    Ok(())
}

impl StateDb {
    /// The database's sizes.
    pub fn size(&self) -> Result<DbSize, StateError> {
        let get = |pragma: &str| -> Result<i64, StateError> {
            self.conn
                .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .map_err(|e| StateError::sqlite("read the database's size", &self.path, e))
        };
        Ok(DbSize {
            page_size: get("page_size")?,
            pages: get("page_count")?,
            free_pages: get("freelist_count")?,
            auto_vacuum: get("auto_vacuum")?,
        })
    }

    /// The size policy of the module docs, after a pass: checkpoint the WAL
    /// (truncating it when it outgrew [`WAL_LIMIT_BYTES`]), give back free
    /// pages, and rewrite a database that is mostly free space.
    pub fn maintain(&mut self) -> Result<Maintenance, StateError> {
        let mut done = Maintenance::default();
        // Free pages first: in WAL mode a vacuum's writes reach the file
        // (and shrink it) at the checkpoint below.
        let size = self.size()?;
        if size.auto_vacuum == 2 {
            if size.free_pages >= INCREMENTAL_MIN_PAGES {
                // Each step of the statement frees one page: run it out.
                self.conn
                    .prepare("PRAGMA incremental_vacuum")
                    .and_then(|mut s| {
                        let mut rows = s.query([])?;
                        while rows.next()?.is_some() {}
                        Ok(())
                    })
                    .map_err(|e| StateError::sqlite("give back free pages", &self.path, e))?;
                done.pages_freed = size.free_pages - self.size()?.free_pages;
            }
        } else if size.free_pages * size.page_size >= VACUUM_MIN_BYTES
            && size.free_pages * 4 >= size.pages
        {
            let before = size.bytes();
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
                .map_err(|e| StateError::sqlite("compact the database (VACUUM)", &self.path, e))?;
            done.vacuumed = Some((before, self.size()?.bytes()));
        }

        let wal_bytes = wal_path(&self.path)
            .metadata()
            .map(|m| i64::try_from(m.len()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mode = if wal_bytes > WAL_LIMIT_BYTES {
            "TRUNCATE"
        } else {
            "PASSIVE"
        };
        // A reader (`dcsync status`, the web console) is waited for only
        // briefly: the next pass tries again.
        let wait = |conn: &Connection, t| {
            conn.busy_timeout(t)
                .map_err(|e| StateError::sqlite("set the busy timeout", &self.path, e))
        };
        wait(&self.conn, CHECKPOINT_WAIT)?;
        let checkpoint = self
            .conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| StateError::sqlite("checkpoint the WAL", &self.path, e));
        wait(&self.conn, super::BUSY_TIMEOUT)?;
        let (busy, log, copied): (i64, i64, i64) = checkpoint?;
        done.wal_frames_left = if log < 0 { 0 } else { log - copied };
        done.wal_truncated = mode == "TRUNCATE" && busy == 0;
        Ok(done)
    }
}

/// The `-wal` companion of the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}
