//! Persistent state of the emulated host: SQLite metadata plus content blobs.
//!
//! Owns: the schema (folders, files, access tokens, download tokens, scheduled URL
//! uploads), the blob directory `DIR/blobs/<file_id>`, and the pure naming rules
//! of the real server (strip_tags, upload name cleaning, `name (2).ext` renaming,
//! extension and keyword derivation). Must never know about HTTP, envelopes or
//! faults, and must never do per-request work proportional to the whole account
//! (everything is indexed by folder or id; only a folder listing is O(folder)).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use rand::distr::Alphanumeric;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Error;

/// The single account of the emulated host.
pub const ACCOUNT_ID: &str = "158642";

/// How long a download token stays valid.
pub const DOWNLOAD_TOKEN_SECS: i64 = 24 * 3600;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER NULL,
    name TEXT NOT NULL,
    is_public TEXT NOT NULL DEFAULT '0',
    access_password TEXT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    date_added TEXT NULL,
    date_updated TEXT NULL,
    total_downloads INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS folders_by_parent ON folders(parent_id, name COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NULL,
    filename TEXT NOT NULL,
    file_type TEXT NOT NULL,
    extension TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    downloads INTEGER NOT NULL DEFAULT 0,
    uploaded_ip TEXT NOT NULL,
    uploaded_date TEXT NOT NULL,
    last_accessed TEXT NULL,
    keywords TEXT NOT NULL,
    unique_hash TEXT NOT NULL,
    delete_hash TEXT NOT NULL,
    short_url TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS files_by_folder ON files(folder_id, status, filename COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS files_by_name ON files(folder_id, filename);
CREATE INDEX IF NOT EXISTS files_by_short_url ON files(short_url);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS download_tokens (
    token TEXT PRIMARY KEY,
    file_id INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS download_tokens_by_created ON download_tokens(created);
CREATE TABLE IF NOT EXISTS url_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    folder_id INTEGER NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT NULL,
    finished TEXT NULL,
    total_size INTEGER NOT NULL DEFAULT 0,
    file_id INTEGER NULL,
    error TEXT NULL
);
";

/// A file row.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: i64,
    pub folder_id: Option<i64>,
    pub filename: String,
    pub file_type: String,
    pub extension: String,
    pub size: i64,
    pub md5: String,
    pub status: String,
    pub downloads: i64,
    pub uploaded_ip: String,
    pub uploaded_date: String,
    pub last_accessed: Option<String>,
    pub keywords: String,
    pub unique_hash: String,
    pub delete_hash: String,
    pub short_url: String,
}

const FILE_COLS: &str = "id, folder_id, filename, file_type, extension, size, md5, status, downloads, \
     uploaded_ip, uploaded_date, last_accessed, keywords, unique_hash, delete_hash, short_url";

fn file_from_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        folder_id: r.get(1)?,
        filename: r.get(2)?,
        file_type: r.get(3)?,
        extension: r.get(4)?,
        size: r.get(5)?,
        md5: r.get(6)?,
        status: r.get(7)?,
        downloads: r.get(8)?,
        uploaded_ip: r.get(9)?,
        uploaded_date: r.get(10)?,
        last_accessed: r.get(11)?,
        keywords: r.get(12)?,
        unique_hash: r.get(13)?,
        delete_hash: r.get(14)?,
        short_url: r.get(15)?,
    })
}

/// A folder row with its derived counters.
#[derive(Debug, Clone)]
pub struct FolderRow {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub is_public: String,
    pub access_password: Option<String>,
    pub date_added: Option<String>,
    pub date_updated: Option<String>,
    pub total_downloads: i64,
    pub total_size: i64,
    pub child_folder_count: i64,
    pub file_count: i64,
}

/// `execute` and `query_row` through the connection's statement cache: the
/// in-process host makes thousands of calls a second, and re-parsing each
/// statement was a fifth of its time.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    fn row<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }
    fn row<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

const FOLDER_SELECT: &str = "SELECT f.id, f.parent_id, f.name, f.is_public, f.access_password, \
     f.date_added, f.date_updated, f.total_downloads, \
     (SELECT COALESCE(SUM(size), 0) FROM files WHERE folder_id = f.id AND status = 'active'), \
     (SELECT COUNT(*) FROM folders c WHERE c.parent_id = f.id), \
     (SELECT COUNT(*) FROM files WHERE folder_id = f.id AND status = 'active') \
     FROM folders f";

fn folder_from_row(r: &Row<'_>) -> rusqlite::Result<FolderRow> {
    Ok(FolderRow {
        id: r.get(0)?,
        parent_id: r.get(1)?,
        name: r.get(2)?,
        is_public: r.get(3)?,
        access_password: r.get(4)?,
        date_added: r.get(5)?,
        date_updated: r.get(6)?,
        total_downloads: r.get(7)?,
        total_size: r.get(8)?,
        child_folder_count: r.get(9)?,
        file_count: r.get(10)?,
    })
}

/// A scheduled URL upload.
#[derive(Debug, Clone)]
pub struct UrlUploadRow {
    pub id: i64,
    pub url: String,
    pub folder_id: Option<i64>,
    pub status: String,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub total_size: i64,
    pub file_id: Option<i64>,
    pub error: Option<String>,
}

/// What an upload (API or URL) stores besides its content.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub folder_id: Option<i64>,
    /// Already cleaned with [`clean_upload_name`]; renamed on collision here.
    pub name: String,
    pub file_type: String,
    pub size: i64,
    pub md5: String,
    pub uploaded_ip: String,
    pub now: String,
}

/// Why a folder move was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum MoveRefused {
    /// The destination is the folder itself or one of its descendants.
    IntoOwnSubtree,
}

/// The state store. All methods are short synchronous calls on one connection.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    blobs: PathBuf,
    tmp: PathBuf,
}

impl Store {
    /// Open (or create) the state under `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Self::open_with(dir, false)
    }

    /// A store whose metadata lives in memory only (gone when it is
    /// dropped; the blobs are still files under `dir`): for simulations,
    /// where a database file's locks and writes cost more than the calls.
    pub fn open_volatile(dir: &Path) -> Result<Self, Error> {
        Self::open_with(dir, true)
    }

    fn open_with(dir: &Path, volatile: bool) -> Result<Self, Error> {
        let blobs = dir.join("blobs");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&tmp)?;
        // Leftover partial uploads from a previous run are garbage.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let conn = if volatile {
            Connection::open_in_memory()?
        } else {
            let conn = Connection::open(dir.join("emulator.sqlite3"))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every endpoint's statements stay prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(128);
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
            blobs,
            tmp,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Path of a file's content.
    pub fn blob_path(&self, file_id: i64) -> PathBuf {
        self.blobs.join(file_id.to_string())
    }

    /// A fresh path for a partial upload (same filesystem as the blobs).
    pub fn temp_path(&self) -> PathBuf {
        self.tmp.join(format!("part-{}", random_hex(16)))
    }

    // ---- access tokens ----

    /// Create a token and delete every other token of the account.
    pub fn token_create(&self, account_id: &str, now: i64) -> Result<String, Error> {
        let token = random_alnum(128);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.exec("DELETE FROM tokens WHERE account_id = ?1", [account_id])?;
        tx.exec(
            "INSERT INTO tokens(token, account_id, last_used) VALUES (?1, ?2, ?3)",
            params![token, account_id, now],
        )?;
        tx.commit()?;
        Ok(token)
    }

    /// Is the token valid for the account? Expired tokens are removed; a valid one
    /// is refreshed.
    pub fn token_validate(
        &self,
        token: &str,
        account_id: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<bool, Error> {
        let conn = self.conn();
        let row: Option<(String, i64)> = conn
            .row(
                "SELECT account_id, last_used FROM tokens WHERE token = ?1",
                [token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((owner, last_used)) = row else {
            return Ok(false);
        };
        if now.saturating_sub(last_used) > idle_secs {
            conn.exec("DELETE FROM tokens WHERE token = ?1", [token])?;
            return Ok(false);
        }
        if owner != account_id {
            return Ok(false);
        }
        conn.exec(
            "UPDATE tokens SET last_used = ?2 WHERE token = ?1",
            params![token, now],
        )?;
        Ok(true)
    }

    pub fn token_delete(&self, token: &str) -> Result<(), Error> {
        self.conn()
            .exec("DELETE FROM tokens WHERE token = ?1", [token])?;
        Ok(())
    }

    // ---- files ----

    pub fn file_get(&self, id: i64) -> Result<Option<FileRow>, Error> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!("SELECT {FILE_COLS} FROM files WHERE id = ?1"))?
            .query_row([id], file_from_row)
            .optional()?)
    }

    pub fn file_by_short_url(&self, short: &str) -> Result<Option<FileRow>, Error> {
        let conn = self.conn();
        Ok(conn
            .row(
                &format!("SELECT {FILE_COLS} FROM files WHERE short_url = ?1"),
                [short],
                file_from_row,
            )
            .optional()?)
    }

    /// Sum of the sizes of all active files.
    pub fn active_bytes(&self) -> Result<i64, Error> {
        let conn = self.conn();
        Ok(conn.row(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Store an uploaded file whose content is at `temp` (moved into the blob
    /// store). Applies the upload collision rule: a name taken by an active file in
    /// the same folder becomes `name (2).ext`, `name (3).ext`, ...
    pub fn file_insert_uploaded(&self, new: &NewFile, temp: &Path) -> Result<FileRow, Error> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut name = new.name.clone();
        let mut n = 2u32;
        while name_taken(&tx, new.folder_id, &name)? {
            name = numbered_name(&new.name, n);
            n += 1;
        }
        let id = insert_file(&tx, new, &name)?;
        std::fs::rename(temp, self.blobs.join(id.to_string()))?;
        let row = tx.row(
            &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1"),
            [id],
            file_from_row,
        )?;
        tx.commit()?;
        Ok(row)
    }

    /// Update name / type / folder (no uniqueness check). `folder` is
    /// `Some(None)` for the root.
    pub fn file_update(
        &self,
        id: i64,
        filename: Option<&str>,
        file_type: Option<&str>,
        folder: Option<Option<i64>>,
    ) -> Result<(), Error> {
        let conn = self.conn();
        if let Some(name) = filename {
            conn.exec(
                "UPDATE files SET filename = ?2, extension = ?3, keywords = ?4 WHERE id = ?1",
                params![id, name, extension_of(name), keywords_of(name)],
            )?;
        }
        if let Some(t) = file_type {
            conn.exec(
                "UPDATE files SET file_type = ?2 WHERE id = ?1",
                params![id, t],
            )?;
        }
        if let Some(f) = folder {
            conn.exec(
                "UPDATE files SET folder_id = ?2 WHERE id = ?1",
                params![id, f],
            )?;
        }
        Ok(())
    }

    /// `/file/delete`: status trash, detached from its folder.
    pub fn file_trash(&self, id: i64) -> Result<(), Error> {
        self.conn().exec(
            "UPDATE files SET status = 'trash', folder_id = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Server-side copy into `folder` (no uniqueness check). The blob is
    /// hard-linked (content behind an id never changes) or copied.
    pub fn file_copy(
        &self,
        src: &FileRow,
        folder: Option<i64>,
        ip: &str,
        now: &str,
    ) -> Result<FileRow, Error> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let new = NewFile {
            folder_id: folder,
            name: src.filename.clone(),
            file_type: src.file_type.clone(),
            size: src.size,
            md5: src.md5.clone(),
            uploaded_ip: ip.to_string(),
            now: now.to_string(),
        };
        let id = insert_file(&tx, &new, &src.filename)?;
        let from = self.blob_path(src.id);
        let to = self.blob_path(id);
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
        let row = tx.row(
            &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1"),
            [id],
            file_from_row,
        )?;
        tx.commit()?;
        Ok(row)
    }

    /// Record a download: count and last access.
    pub fn file_touch_download(&self, id: i64, now: &str) -> Result<(), Error> {
        self.conn().exec(
            "UPDATE files SET downloads = downloads + 1, last_accessed = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    // ---- download tokens ----

    pub fn download_token_create(&self, file_id: i64, now: i64) -> Result<String, Error> {
        let token = random_hex(32);
        let conn = self.conn();
        conn.exec(
            "DELETE FROM download_tokens WHERE created < ?1",
            [now - DOWNLOAD_TOKEN_SECS],
        )?;
        conn.exec(
            "INSERT INTO download_tokens(token, file_id, created) VALUES (?1, ?2, ?3)",
            params![token, file_id, now],
        )?;
        Ok(token)
    }

    /// Is `token` a live download token for `file_id`?
    pub fn download_token_valid(&self, token: &str, file_id: i64, now: i64) -> Result<bool, Error> {
        let conn = self.conn();
        let created: Option<i64> = conn
            .row(
                "SELECT created FROM download_tokens WHERE token = ?1 AND file_id = ?2",
                params![token, file_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(matches!(created, Some(c) if now - c <= DOWNLOAD_TOKEN_SECS))
    }

    // ---- folders ----

    pub fn folder_get(&self, id: i64) -> Result<Option<FolderRow>, Error> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!("{FOLDER_SELECT} WHERE f.id = ?1"))?
            .query_row([id], folder_from_row)
            .optional()?)
    }

    pub fn folder_exists(&self, id: i64) -> Result<bool, Error> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT 1 FROM folders WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn folder_create(
        &self,
        parent: Option<i64>,
        name: &str,
        is_public: &str,
        access_password: Option<&str>,
        now: &str,
    ) -> Result<i64, Error> {
        let conn = self.conn();
        conn.exec(
            "INSERT INTO folders(parent_id, name, is_public, access_password, date_added) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![parent, name, is_public, access_password, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Change name / visibility / password (date_updated untouched).
    pub fn folder_update(
        &self,
        id: i64,
        name: Option<&str>,
        is_public: Option<&str>,
        access_password: Option<&str>,
    ) -> Result<(), Error> {
        let conn = self.conn();
        if let Some(n) = name {
            conn.exec("UPDATE folders SET name = ?2 WHERE id = ?1", params![id, n])?;
        }
        if let Some(p) = is_public {
            conn.exec(
                "UPDATE folders SET is_public = ?2 WHERE id = ?1",
                params![id, p],
            )?;
        }
        if let Some(p) = access_password {
            conn.exec(
                "UPDATE folders SET access_password = ?2 WHERE id = ?1",
                params![id, p],
            )?;
        }
        Ok(())
    }

    /// Re-parent a folder. Refuses a move into itself or a descendant.
    /// `date_updated`: set to `now` when `now` is given.
    pub fn folder_move(
        &self,
        id: i64,
        new_parent: Option<i64>,
        now: Option<&str>,
    ) -> Result<Result<(), MoveRefused>, Error> {
        let conn = self.conn();
        let mut cursor = new_parent;
        // Walk up from the destination; O(depth).
        let mut guard = 0u32;
        while let Some(c) = cursor {
            if c == id {
                return Ok(Err(MoveRefused::IntoOwnSubtree));
            }
            guard += 1;
            if guard > 100_000 {
                break;
            }
            cursor = conn
                .row("SELECT parent_id FROM folders WHERE id = ?1", [c], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .optional()?
                .flatten();
        }
        conn.exec(
            "UPDATE folders SET parent_id = ?2 WHERE id = ?1",
            params![id, new_parent],
        )?;
        if let Some(now) = now {
            conn.exec(
                "UPDATE folders SET date_updated = ?2 WHERE id = ?1",
                params![id, now],
            )?;
        }
        Ok(Ok(()))
    }

    /// `/folder/delete`: trash the folder, its subfolders and every active file
    /// below; detach the top folder to the root.
    pub fn folder_delete(&self, id: i64) -> Result<(), Error> {
        self.set_subtree_status(id, "active", "trash", None)
    }

    /// What the website's "restore" does for a folder in the trash (no API
    /// call does this): the folder, its subfolders and the files trashed with
    /// them are active again, the folder under `parent`. Files trashed one by
    /// one before (detached from their folders) stay in the trash.
    pub fn folder_restore(&self, id: i64, parent: Option<i64>) -> Result<(), Error> {
        self.set_subtree_status(id, "trash", "active", parent)
    }

    /// Sets the folder `id` and its subfolders to status `to`, and the files
    /// below with status `from` too; puts the folder under `parent`.
    fn set_subtree_status(
        &self,
        id: i64,
        from: &str,
        to: &str,
        parent: Option<i64>,
    ) -> Result<(), Error> {
        const SUB: &str = "WITH RECURSIVE sub(id) AS \
             (SELECT ?1 UNION SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id) ";
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.exec(
            &format!("{SUB}UPDATE files SET status = ?3 WHERE status = ?2 AND folder_id IN (SELECT id FROM sub)"),
            params![id, from, to],
        )?;
        tx.exec(
            &format!("{SUB}UPDATE folders SET status = ?2 WHERE id IN (SELECT id FROM sub)"),
            params![id, to],
        )?;
        tx.exec(
            "UPDATE folders SET parent_id = ?2 WHERE id = ?1",
            params![id, parent],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Folders (any status, by name) and active files (by filename) directly in
    /// `folder` (`None` = root).
    pub fn listing(&self, folder: Option<i64>) -> Result<(Vec<FolderRow>, Vec<FileRow>), Error> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "{FOLDER_SELECT} WHERE f.parent_id IS ?1 ORDER BY f.name COLLATE NOCASE, f.id"
        ))?;
        let folders = st
            .query_map([folder], folder_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {FILE_COLS} FROM files WHERE folder_id IS ?1 AND status = 'active' \
             ORDER BY filename COLLATE NOCASE, id"
        ))?;
        let files = st
            .query_map([folder], file_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((folders, files))
    }

    // ---- URL uploads ----

    pub fn url_upload_create(
        &self,
        url: &str,
        folder: Option<i64>,
        now: &str,
    ) -> Result<i64, Error> {
        let conn = self.conn();
        conn.exec(
            "INSERT INTO url_uploads(url, folder_id, status, created) VALUES (?1, ?2, 'pending', ?3)",
            params![url, folder, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn url_upload_get(&self, id: i64) -> Result<Option<UrlUploadRow>, Error> {
        let conn = self.conn();
        Ok(conn
            .row(
                "SELECT id, url, folder_id, status, created, started, finished, total_size, file_id, error \
                 FROM url_uploads WHERE id = ?1",
                [id],
                |r| {
                    Ok(UrlUploadRow {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        folder_id: r.get(2)?,
                        status: r.get(3)?,
                        created: r.get(4)?,
                        started: r.get(5)?,
                        finished: r.get(6)?,
                        total_size: r.get(7)?,
                        file_id: r.get(8)?,
                        error: r.get(9)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ids of scheduled uploads that never finished (to resume after a restart).
    pub fn url_upload_unfinished(&self) -> Result<Vec<i64>, Error> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id FROM url_uploads WHERE status IN ('pending', 'downloading') ORDER BY id",
        )?;
        let ids = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    pub fn url_upload_started(&self, id: i64, now: &str) -> Result<(), Error> {
        self.conn().exec(
            "UPDATE url_uploads SET status = 'downloading', started = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn url_upload_progress(&self, id: i64, bytes: i64) -> Result<(), Error> {
        self.conn().exec(
            "UPDATE url_uploads SET total_size = ?2 WHERE id = ?1",
            params![id, bytes],
        )?;
        Ok(())
    }

    pub fn url_upload_finished(
        &self,
        id: i64,
        result: Result<(i64, i64), String>,
        now: &str,
    ) -> Result<(), Error> {
        let conn = self.conn();
        match result {
            Ok((file_id, size)) => conn.exec(
                "UPDATE url_uploads SET status = 'complete', finished = ?2, file_id = ?3, total_size = ?4 WHERE id = ?1",
                params![id, now, file_id, size],
            )?,
            Err(msg) => conn.exec(
                "UPDATE url_uploads SET status = 'failed', finished = ?2, error = ?3 WHERE id = ?1",
                params![id, now, msg],
            )?,
        };
        Ok(())
    }
}

fn name_taken(conn: &Connection, folder: Option<i64>, name: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .row(
            "SELECT 1 FROM files WHERE folder_id IS ?1 AND status = 'active' AND filename = ?2 LIMIT 1",
            params![folder, name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn insert_file(conn: &Connection, new: &NewFile, name: &str) -> rusqlite::Result<i64> {
    conn.exec(
        "INSERT INTO files(folder_id, filename, file_type, extension, size, md5, uploaded_ip, \
         uploaded_date, keywords, unique_hash, delete_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            new.folder_id,
            name,
            new.file_type,
            extension_of(name),
            new.size,
            new.md5,
            new.uploaded_ip,
            new.now,
            keywords_of(name),
            random_hex(32),
            random_hex(16),
        ],
    )?;
    let id = conn.last_insert_rowid();
    conn.exec(
        "UPDATE files SET short_url = ?2 WHERE id = ?1",
        params![id, short_url_of(id)],
    )?;
    Ok(id)
}

// ---- pure rules ----

/// PHP `strip_tags`, simplified: a `<` followed by a non-space starts a tag that
/// runs to the next `>` outside quotes (or to the end of the text); a `<` followed
/// by whitespace or at the end is kept.
pub fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '<' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            None => out.push(c),
            Some(n) if n.is_whitespace() => out.push(c),
            Some(_) => {
                let mut quote: Option<char> = None;
                for t in chars.by_ref() {
                    match quote {
                        Some(q) if t == q => quote = None,
                        Some(_) => {}
                        None if t == '"' || t == '\'' => quote = Some(t),
                        None if t == '>' => break,
                        None => {}
                    }
                }
            }
        }
    }
    out
}

/// PHP `trim` (space, tab, LF, CR, NUL, vertical tab).
pub fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// Every request value: tags stripped, then trimmed.
pub fn clean_value(s: &str) -> String {
    php_trim(&strip_tags(s)).to_string()
}

/// Truncate to at most `max` bytes on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The name an upload is stored under (before collision renaming): path part
/// dropped, `"`, `'`, CR, LF removed, tags stripped, trimmed, 255 bytes at most.
/// An empty result becomes `file` (guess).
pub fn clean_upload_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let no_quotes: String = base
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\r' | '\n'))
        .collect();
    let cleaned = truncate_bytes(&clean_value(&no_quotes), 255);
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

/// Split `name.ext` into stem and extension; a leading dot is not an extension
/// separator (guess for names like `.bashrc`).
pub fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

/// `name (n).ext`, or `name (n)` without an extension.
pub fn numbered_name(name: &str, n: u32) -> String {
    match split_name(name) {
        (stem, Some(ext)) => format!("{stem} ({n}).{ext}"),
        (stem, None) => format!("{stem} ({n})"),
    }
}

/// Lower-case extension, empty without one.
pub fn extension_of(name: &str) -> String {
    split_name(name).1.unwrap_or("").to_lowercase()
}

/// Keywords derived from a file name (`button_back.gif` -> `button,back,gif`).
pub fn keywords_of(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for w in name.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if !w.is_empty() && !words.contains(&w) {
            words.push(w);
        }
    }
    words.join(",")
}

/// A mime type from the extension (small table; default octet-stream).
pub fn mime_of(name: &str) -> &'static str {
    match extension_of(name).as_str() {
        "txt" | "log" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Base-62 short url of a file id.
pub fn short_url_of(id: i64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = id.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// `n` random ASCII letters and digits.
pub fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_tags_like_php() {
        assert_eq!(strip_tags("a<b>c</b>d"), "acd");
        assert_eq!(strip_tags("x < y"), "x < y");
        assert_eq!(strip_tags("x <y"), "x ");
        assert_eq!(strip_tags("<a href='>'>t</a>"), "t");
        assert_eq!(strip_tags("end<"), "end<");
        assert_eq!(clean_value("  <i>hi</i> \n"), "hi");
    }

    #[test]
    fn upload_names_are_cleaned() {
        assert_eq!(clean_upload_name("a\"b'c\r\nd.txt"), "abcd.txt");
        assert_eq!(clean_upload_name("dir/sub\\x.txt"), "x.txt");
        assert_eq!(clean_upload_name("  sp.txt "), "sp.txt");
        assert_eq!(clean_upload_name("\"\""), "file");
        assert_eq!(clean_upload_name(&"é".repeat(200)).len(), 254);
    }

    #[test]
    fn numbered_names() {
        assert_eq!(numbered_name("a.txt", 2), "a (2).txt");
        assert_eq!(numbered_name("a.tar.gz", 3), "a.tar (3).gz");
        assert_eq!(numbered_name("README", 2), "README (2)");
        assert_eq!(numbered_name(".bashrc", 2), ".bashrc (2)");
    }

    #[test]
    fn extensions_and_keywords() {
        assert_eq!(extension_of("A.JPG"), "jpg");
        assert_eq!(extension_of("noext"), "");
        assert_eq!(keywords_of("button_back.gif"), "button,back,gif");
        assert_eq!(mime_of("x.png"), "image/png");
    }

    #[test]
    fn short_urls_are_distinct() {
        assert_eq!(short_url_of(0), "0");
        assert_eq!(short_url_of(61), "Z");
        assert_eq!(short_url_of(62), "10");
    }

    /// Uploads a one-byte file.
    fn put(store: &Store, name: &str, folder: Option<i64>) -> FileRow {
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"x").unwrap();
        let new = NewFile {
            folder_id: folder,
            name: name.into(),
            file_type: "text/plain".into(),
            size: 1,
            md5: "m".into(),
            uploaded_ip: "127.0.0.1".into(),
            now: "2024-01-01 00:00:00".into(),
        };
        store.file_insert_uploaded(&new, &tmp).unwrap()
    }

    #[test]
    fn upload_collision_renames_only_active_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mk = |name: &str, folder: Option<i64>| put(&store, name, folder);
        assert_eq!(mk("a.txt", None).filename, "a.txt");
        assert_eq!(mk("a.txt", None).filename, "a (2).txt");
        let third = mk("a.txt", None);
        assert_eq!(third.filename, "a (3).txt");
        let f = store.folder_create(None, "f", "0", None, "now").unwrap();
        assert_eq!(mk("a.txt", Some(f)).filename, "a.txt");
        store.file_trash(third.id).unwrap();
        assert_eq!(mk("a.txt", None).filename, "a (3).txt");
    }

    #[test]
    fn token_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t1 = store.token_create(ACCOUNT_ID, 1000).unwrap();
        assert_eq!(t1.len(), 128);
        assert!(store.token_validate(&t1, ACCOUNT_ID, 1000, 3600).unwrap());
        assert!(!store.token_validate(&t1, "1", 1000, 3600).unwrap());
        let t2 = store.token_create(ACCOUNT_ID, 1000).unwrap();
        assert!(!store.token_validate(&t1, ACCOUNT_ID, 1000, 3600).unwrap());
        assert!(store.token_validate(&t2, ACCOUNT_ID, 4000, 3600).unwrap());
        assert!(store.token_validate(&t2, ACCOUNT_ID, 7600, 3600).unwrap());
        assert!(!store.token_validate(&t2, ACCOUNT_ID, 11201, 3600).unwrap());
    }

    #[test]
    fn a_restored_folder_brings_back_what_was_trashed_with_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let top = store.folder_create(None, "top", "0", None, "now").unwrap();
        let a = store
            .folder_create(Some(top), "a", "0", None, "now")
            .unwrap();
        let with_it = put(&store, "with.txt", Some(a));
        let before = put(&store, "before.txt", Some(top));
        store.file_trash(before.id).unwrap();
        store.folder_delete(top).unwrap();
        assert!(store.listing(Some(a)).unwrap().1.is_empty());

        store.folder_restore(top, None).unwrap();
        let (_, files) = store.listing(Some(a)).unwrap();
        assert_eq!(files.iter().map(|f| f.id).collect::<Vec<_>>(), [with_it.id]);
        assert!(store.listing(Some(top)).unwrap().1.is_empty());
        assert_eq!(store.file_get(before.id).unwrap().unwrap().status, "trash");
    }

    #[test]
    fn folder_move_refuses_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.folder_create(None, "a", "0", None, "now").unwrap();
        let b = store.folder_create(Some(a), "b", "0", None, "now").unwrap();
        assert_eq!(
            store.folder_move(a, Some(b), None).unwrap(),
            Err(MoveRefused::IntoOwnSubtree)
        );
        assert_eq!(
            store.folder_move(a, Some(a), None).unwrap(),
            Err(MoveRefused::IntoOwnSubtree)
        );
        assert_eq!(store.folder_move(b, None, None).unwrap(), Ok(()));
    }
}
