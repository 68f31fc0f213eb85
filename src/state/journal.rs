//! The op journal: table `journal`.
//!
//! An op that changes the remote is recorded as an `intent` (durably) before
//! its call, then marked `done` together with its Synced changes in one
//! transaction, or `abandoned`. Intents still open at start-up are what a
//! crash interrupted; the engine resolves them against a fresh listing.
//! The op itself is opaque JSON chosen by the caller.

use super::StateDb;
use super::error::StateError;
use super::synced::{Change, apply_changes};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// Moves entry `id` from `intent` to `state`; [`StateError::NotPending`] if
/// it is not an open intent.
fn finish(conn: &Connection, db: &Path, id: i64, state: &str, now: &str) -> Result<(), StateError> {
    let err = |e| StateError::sqlite("update the op journal", db, e);
    let n = conn
        .prepare_cached(
            "UPDATE journal SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'intent'",
        )
        .and_then(|mut s| s.execute(params![id, state, now]))
        .map_err(err)?;
    if n == 1 {
        return Ok(());
    }
    let found: Option<String> = conn
        .prepare_cached("SELECT state FROM journal WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(err)?;
    Err(StateError::NotPending {
        path: db.to_owned(),
        id,
        found: found.unwrap_or_else(|| "missing".to_owned()),
    })
}

impl StateDb {
    /// Runs `f` with `synchronous=FULL`, so that what it commits is on disk
    /// when this returns (NORMAL would only sync at the next checkpoint and
    /// could lose it on power loss), then restores NORMAL.
    fn durably<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let db = &self.path;
        let err = |what| move |e| StateError::sqlite(what, db, e);
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err("set synchronous=FULL"))?;
        let done = f(&self.conn).map_err(err(what));
        let restored = self
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("set synchronous=NORMAL"));
        let value = done?;
        restored?;
        Ok(value)
    }

    /// Records the intent to run `op_json`; returns its id. The record is
    /// on disk (fsynced) when this returns.
    pub fn journal_begin(&mut self, op_json: &str, now: &str) -> Result<i64, StateError> {
        self.durably("record an op intent", |conn| {
            conn.prepare_cached(
                "INSERT INTO journal (op, state, created_at, updated_at) VALUES (?1, 'intent', ?2, ?2)",
            )
            .and_then(|mut s| s.insert(params![op_json, now]))
        })
    }

    /// Replaces the op JSON of the open intent `id` (what the op learned
    /// mid-way, such as the id of the file an upload made), durably like
    /// [`StateDb::journal_begin`]. [`StateError::NotPending`] if it is not
    /// open.
    pub fn journal_update(&mut self, id: i64, op_json: &str, now: &str) -> Result<(), StateError> {
        let n = self.durably("update an op intent", |conn| {
            conn.prepare_cached(
                "UPDATE journal SET op = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'intent'",
            )
            .and_then(|mut s| s.execute(params![id, op_json, now]))
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(StateError::NotPending {
                path: self.path.clone(),
                id,
                found: "not open".to_owned(),
            })
        }
    }

    /// Marks intent `id` done and applies its Synced `changes`, in one
    /// transaction: either both happen or neither does.
    pub fn journal_done(
        &mut self,
        id: i64,
        changes: &[Change],
        now: &str,
    ) -> Result<(), StateError> {
        let db = &self.path;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StateError::sqlite("start a transaction", db, e))?;
        finish(&tx, db, id, "done", now)?;
        apply_changes(&tx, db, changes)?;
        tx.commit()
            .map_err(|e| StateError::sqlite("commit a finished op", db, e))
    }

    /// Marks intent `id` abandoned (it will not be retried; Synced unchanged).
    pub fn journal_abandon(&mut self, id: i64, now: &str) -> Result<(), StateError> {
        finish(&self.conn, &self.path, id, "abandoned", now)
    }

    /// Open intents (neither done nor abandoned), oldest first, with their op
    /// JSON.
    pub fn journal_pending(&self) -> Result<Vec<(i64, String)>, StateError> {
        let db = &self.path;
        let err = |e| StateError::sqlite("read pending ops", db, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, op FROM journal WHERE state = 'intent' ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err)
    }

    /// Deletes finished (done or abandoned) entries except the newest
    /// `keep_done` of them; open intents are always kept. Returns how many
    /// entries were deleted.
    pub fn journal_prune(&mut self, keep_done: usize) -> Result<usize, StateError> {
        let keep = i64::try_from(keep_done).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "DELETE FROM journal WHERE state != 'intent' AND id NOT IN \
                 (SELECT id FROM journal WHERE state != 'intent' ORDER BY id DESC LIMIT ?1)",
            )
            .and_then(|mut s| s.execute([keep]))
            .map_err(|e| StateError::sqlite("prune the op journal", &self.path, e))
    }
}
