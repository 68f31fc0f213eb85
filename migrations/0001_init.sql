-- dcsync state database, schema version 1.
-- Applied by src/state/schema.rs in one transaction together with
-- `PRAGMA user_version = 1`. Never edit a released migration: add a new file.

-- The Synced tree: the last state both sides agreed on, one row per path.
-- u64 values (dev, ino, size, remote ids) are stored as their i64 bit pattern.
CREATE TABLE synced (
    path          TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    dev           INTEGER NOT NULL,
    ino           INTEGER NOT NULL,
    size          INTEGER NOT NULL, -- SyncedEntry.size (agreed content size)
    local_size    INTEGER NOT NULL, -- LocalMeta.size (equal to size for files)
    mtime_ns      INTEGER NOT NULL,
    sha256        TEXT,
    md5           TEXT,
    remote_id     INTEGER NOT NULL,
    remote_parent INTEGER,
    remote_name   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX synced_ino ON synced (ino);
CREATE INDEX synced_remote_id ON synced (remote_id);

-- The op journal: an op that changes the remote is recorded as an intent
-- before the call and marked done (or abandoned) after it.
CREATE TABLE journal (
    id         INTEGER PRIMARY KEY,
    op         TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('intent', 'done', 'abandoned')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX journal_intent ON journal (id) WHERE state = 'intent';

-- Free-form status values (last pass times, last error, ...).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Paths that cannot live on the other side, per side that reported them.
CREATE TABLE skipped (
    path   TEXT NOT NULL,
    side   TEXT NOT NULL CHECK (side IN ('local', 'remote')),
    reason TEXT NOT NULL,
    since  TEXT NOT NULL,
    PRIMARY KEY (path, side)
) WITHOUT ROWID;

-- Conflicts resolved by keeping both versions: `copy_path` holds the other one.
CREATE TABLE conflicts (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL,
    copy_path  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
