//! The Local tree: one walk of the sync root, with the fast change check and
//! SHA-256 for files that may have changed.
//!
//! Owns: walking (no symlinks followed, sorted, `.dcsync` and ignored paths
//! left out), the (inode, size, mtime) fast check against Synced, streaming
//! hashes, and ignore rules. Never writes anything. Whatever it could not
//! look at goes into [`LocalView::unknown`] (safety rule 1: unknown is not
//! absent) or [`ScanOutcome::skipped`], never into an error of the whole scan;
//! only an unusable root or ignore file is a [`ScanError`].
//!
//! Blocking: call it from `tokio::task::spawn_blocking`.

mod hash;
mod rules;

pub use hash::{md5_file, sha256_file};
pub use rules::{DEFAULT_PATTERNS, IGNORE_FILE, IgnoreRules, PART_SUFFIX, STATE_DIR};

use crate::model::{Hashes, Kind, LocalEntry, LocalMeta, LocalView, RelPath, SyncedEntry, Tree};
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The scan could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "sync root {} does not exist; create it or fix local_path in the config (an unmounted drive looks like this too)",
        .path.display()
    )]
    RootMissing { path: PathBuf },

    #[error("sync root {} is not a folder; point local_path in the config at a folder", .path.display())]
    RootNotDir { path: PathBuf },

    #[error("cannot read sync root {}: {source}; check its permissions", .path.display())]
    RootUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read ignore file {}: {source}; fix its permissions or remove it", .path.display())]
    IgnoreRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{line}: invalid ignore pattern: {message}; fix or remove that line", .path.display())]
    IgnoreSyntax {
        path: PathBuf,
        /// 1-based; 0 when the error is not tied to one line.
        line: usize,
        message: String,
    },
}

/// Counters of one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Regular files entered in the view.
    pub files: u64,
    /// Folders entered in the view (the root not counted).
    pub dirs: u64,
    /// Files whose content was read because the fast check failed.
    pub hashed_files: u64,
    pub hashed_bytes: u64,
}

/// The result of [`scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    pub view: LocalView,
    /// `(path relative to the root, reason)` of entries left out that the
    /// user may want to know about: symlinks, special files, unusable names,
    /// unreadable folders and files. The path is lossy (U+FFFD) when the name
    /// is not UTF-8. Ignored entries are not listed here.
    pub skipped: Vec<(String, String)>,
    pub stats: ScanStats,
}

/// Reason given for symbolic links.
pub const SYMLINK_REASON: &str = "symbolic links are not followed";

/// How often a file that changes while being hashed is tried again.
const HASH_ATTEMPTS: usize = 3;

/// Threads that walk the tree (the caller's thread is one of them). The
/// engine lists the remote side at the same time, but that mostly waits on
/// the network.
const MAX_THREADS: usize = 2;

/// A folder's entries are handed out in batches of this many, so that one
/// large folder is still looked at by all threads.
const BATCH: usize = 256;

/// Walks `root` and builds the Local tree. `synced` supplies the fast check:
/// a file whose kind, inode, size and mtime equal its Synced entry keeps the
/// Synced hashes without being read.
///
/// The walk runs on up to [`MAX_THREADS`] threads; the result does not
/// depend on their timing (`skipped` and `unknown` are sorted).
pub fn scan(
    root: &Path,
    synced: &Tree<SyncedEntry>,
    rules: &IgnoreRules,
) -> Result<ScanOutcome, ScanError> {
    check_root(root)?;
    let walk = walk::Walk::new(root, synced, rules);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let mut parts = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(|| walk.work())).collect();
        let mut parts = vec![walk.work()];
        for t in others {
            match t.join() {
                Ok(p) => parts.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });

    let mut out = ScanOutcome::default();
    let mut entries = Vec::with_capacity(parts.iter().map(|p| p.entries.len()).sum());
    for p in &mut parts {
        out.stats.files += p.stats.files;
        out.stats.dirs += p.stats.dirs;
        out.stats.hashed_files += p.stats.hashed_files;
        out.stats.hashed_bytes += p.stats.hashed_bytes;
        out.view.unknown.append(&mut p.unknown);
        out.skipped.append(&mut p.skipped);
        entries.append(&mut p.entries);
    }
    // Keys are unique: an unstable sort is deterministic. `collect` then
    // finds one sorted run and builds the map in bulk.
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out.view.entries = entries.into_iter().collect();
    out.view.unknown.sort_unstable();
    out.skipped.sort_unstable();
    Ok(out)
}

/// The shared walk: a queue of folders (and batches of folder entries) that
/// the threads take work from until none is left and none is busy.
mod walk {
    use super::{BATCH, SYMLINK_REASON, file_entry, meta_of, skip, special_reason};
    use crate::model::{Hashes, Kind, LocalEntry, RelPath, SyncedEntry, Tree};
    use crate::scan::{IgnoreRules, ScanStats};
    use std::fs::DirEntry;
    use std::path::Path;
    use std::sync::{Arc, Condvar, Mutex};

    /// What one thread found.
    #[derive(Default)]
    pub(super) struct Part {
        pub entries: Vec<(RelPath, LocalEntry)>,
        pub unknown: Vec<RelPath>,
        pub skipped: Vec<(String, String)>,
        pub stats: ScanStats,
    }

    enum Job {
        /// List this folder (already entered in the view, or the root).
        Dir(RelPath),
        /// Look at these entries of the folder `parent`.
        Entries(Arc<RelPath>, Vec<DirEntry>),
    }

    #[derive(Default)]
    struct Queue {
        jobs: Vec<Job>,
        /// Threads working on a job (which may add jobs).
        busy: usize,
    }

    pub(super) struct Walk<'a> {
        root: &'a Path,
        synced: &'a Tree<SyncedEntry>,
        rules: &'a IgnoreRules,
        queue: Mutex<Queue>,
        wake: Condvar,
    }

    /// Ends a job: its new jobs are queued and the thread counts as idle,
    /// also when the job panicked (so that the other threads still finish).
    struct Busy<'w, 'a> {
        walk: &'w Walk<'a>,
        new_jobs: Vec<Job>,
    }

    impl Drop for Busy<'_, '_> {
        fn drop(&mut self) {
            let mut q = self.walk.lock();
            q.busy -= 1;
            q.jobs.append(&mut self.new_jobs);
            drop(q);
            self.walk.wake.notify_all();
        }
    }

    impl<'a> Walk<'a> {
        pub(super) fn new(
            root: &'a Path,
            synced: &'a Tree<SyncedEntry>,
            rules: &'a IgnoreRules,
        ) -> Walk<'a> {
            Walk {
                root,
                synced,
                rules,
                queue: Mutex::new(Queue {
                    jobs: vec![Job::Dir(RelPath::root())],
                    busy: 0,
                }),
                wake: Condvar::new(),
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
            // A panicking job never holds the lock; its panic is re-raised
            // by `scan` anyway.
            self.queue.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Takes jobs until the walk is done.
        pub(super) fn work(&self) -> Part {
            let mut part = Part::default();
            loop {
                let job = {
                    let mut q = self.lock();
                    loop {
                        if let Some(job) = q.jobs.pop() {
                            q.busy += 1;
                            break job;
                        }
                        if q.busy == 0 {
                            return part;
                        }
                        q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                    }
                };
                let mut busy = Busy {
                    walk: self,
                    new_jobs: Vec::new(),
                };
                match job {
                    Job::Dir(dir) => self.list(dir, &mut part, &mut busy.new_jobs),
                    Job::Entries(dir, entries) => {
                        for e in entries {
                            self.entry(&dir, e, &mut part, &mut busy.new_jobs);
                        }
                    }
                }
            }
        }

        fn push(&self, jobs: impl IntoIterator<Item = Job>) {
            self.lock().jobs.extend(jobs);
            self.wake.notify_all();
        }

        /// Lists the folder `dir` and looks at its entries (large folders in
        /// batches shared with the other threads).
        fn list(&self, dir: RelPath, part: &mut Part, new_jobs: &mut Vec<Job>) {
            let abs = if dir.is_root() {
                self.root.to_path_buf()
            } else {
                self.root.join(dir.as_str())
            };
            let rd = match std::fs::read_dir(&abs) {
                Ok(rd) => rd,
                Err(e) => return walk_error(self.root, &abs, &e, part),
            };
            let mut entries = Vec::new();
            for item in rd {
                match item {
                    Ok(e) => entries.push(e),
                    // Nothing more can be read from this folder.
                    Err(e) => walk_error(self.root, &abs, &e, part),
                }
            }
            let dir = Arc::new(dir);
            if entries.len() > BATCH {
                let rest = entries.split_off(BATCH);
                let mut rest = rest.into_iter().peekable();
                let mut batches = Vec::new();
                while rest.peek().is_some() {
                    batches.push(Job::Entries(
                        Arc::clone(&dir),
                        rest.by_ref().take(BATCH).collect(),
                    ));
                }
                self.push(batches);
            }
            for e in entries {
                self.entry(&dir, e, part, new_jobs);
            }
        }

        /// One entry of the folder `dir`: the same checks, in the same
        /// order, as a sequential top-down walk.
        fn entry(&self, dir: &RelPath, e: DirEntry, part: &mut Part, new_jobs: &mut Vec<Job>) {
            let name = e.file_name();
            let ft = match e.file_type() {
                Ok(ft) => ft,
                Err(err) => return walk_error(self.root, &e.path(), &err, part),
            };
            let Some(name) = name.to_str() else {
                // Parents are UTF-8 (otherwise they were skipped), so it is this name.
                let lossy = name.to_string_lossy();
                let path = if dir.is_root() {
                    lossy.into_owned()
                } else {
                    format!("{}/{lossy}", dir.as_str())
                };
                part.skipped.push((
                    path,
                    "the name is not valid UTF-8; rename it to sync it".into(),
                ));
                return;
            };
            let Some(rel) = dir.join(name) else {
                let path = if dir.is_root() {
                    name.to_owned()
                } else {
                    format!("{}/{name}", dir.as_str())
                };
                part.skipped
                    .push((path, "the name is not usable as a path component".into()));
                return;
            };
            let kind = if ft.is_dir() { Kind::Dir } else { Kind::File };
            if self.rules.ignores_entry(&rel, kind) {
                return;
            }
            if ft.is_symlink() {
                part.skipped.push(skip(&rel, SYMLINK_REASON));
                return;
            }
            if !ft.is_dir() && !ft.is_file() {
                part.skipped.push(skip(&rel, special_reason(&ft)));
                return;
            }
            // lstat relative to the open folder (no path lookup from the root).
            let md = match e.metadata() {
                Ok(m) => m,
                Err(err) => {
                    // Vanished or unreadable between listing and stat: unknown
                    // now, settled by the next scan.
                    let reason = format!(
                        "cannot read its metadata: IO error for operation on {}: {err}",
                        e.path().display()
                    );
                    part.skipped.push(skip(&rel, &reason));
                    part.unknown.push(rel);
                    return;
                }
            };
            if kind == Kind::Dir {
                part.stats.dirs += 1;
                part.entries.push((
                    rel.clone(),
                    LocalEntry {
                        kind,
                        meta: meta_of(&md, kind),
                        hashes: Hashes::default(),
                    },
                ));
                new_jobs.push(Job::Dir(rel));
                return;
            }
            match file_entry(self.root, &rel, md, self.synced, &mut part.stats) {
                Ok(entry) => {
                    part.stats.files += 1;
                    part.entries.push((rel, entry));
                }
                Err(reason) => {
                    part.skipped.push(skip(&rel, &reason));
                    part.unknown.push(rel);
                }
            }
        }
    }

    /// A folder that cannot be listed (or an entry that cannot be looked at):
    /// nothing below it may count as deleted.
    fn walk_error(root: &Path, path: &Path, io: &std::io::Error, part: &mut Part) {
        let reason = format!("cannot read: {io}");
        let rel = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .and_then(RelPath::new);
        match rel {
            Some(rel) => {
                part.skipped.push(skip(&rel, &reason));
                part.unknown.push(rel);
            }
            None => {
                // No usable path: be safe and treat the whole tree as unknown.
                part.skipped
                    .push((path.to_string_lossy().into_owned(), reason));
                part.unknown.push(RelPath::root());
            }
        }
    }
}

fn check_root(root: &Path) -> Result<(), ScanError> {
    let md = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ScanError::RootMissing {
                path: root.to_owned(),
            });
        }
        Err(source) => {
            return Err(ScanError::RootUnreadable {
                path: root.to_owned(),
                source,
            });
        }
    };
    if !md.is_dir() {
        return Err(ScanError::RootNotDir {
            path: root.to_owned(),
        });
    }
    std::fs::read_dir(root).map_err(|source| ScanError::RootUnreadable {
        path: root.to_owned(),
        source,
    })?;
    Ok(())
}

fn skip(rel: &RelPath, reason: &str) -> (String, String) {
    (rel.as_str().to_owned(), reason.to_owned())
}

fn special_reason(ft: &std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "named pipes are not synced"
    } else if ft.is_socket() {
        "sockets are not synced"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device files are not synced"
    } else {
        "not a regular file or folder"
    }
}

fn meta_of(md: &Metadata, kind: Kind) -> LocalMeta {
    LocalMeta {
        dev: md.dev(),
        ino: md.ino(),
        size: if kind == Kind::Dir { 0 } else { md.size() },
        mtime_ns: md
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.mtime_nsec()),
    }
}

/// Whether the fast check says the file is what Synced recorded.
fn unchanged(meta: &LocalMeta, synced: Option<&SyncedEntry>) -> Option<Hashes> {
    let s = synced?;
    (s.kind == Kind::File
        && s.local.ino == meta.ino
        && s.local.size == meta.size
        && s.local.mtime_ns == meta.mtime_ns)
        .then(|| s.hashes.clone())
}

/// The entry of a regular file: Synced hashes when the fast check holds,
/// else SHA-256 of its content, re-read if it changes while being hashed.
fn file_entry(
    root: &Path,
    rel: &RelPath,
    md: Metadata,
    synced: &Tree<SyncedEntry>,
    stats: &mut ScanStats,
) -> Result<LocalEntry, String> {
    let mut meta = meta_of(&md, Kind::File);
    if let Some(hashes) = unchanged(&meta, synced.get(rel)) {
        return Ok(LocalEntry {
            kind: Kind::File,
            meta,
            hashes,
        });
    }
    let path = &root.join(rel.as_str());
    for _ in 0..HASH_ATTEMPTS {
        let (sha, n) = sha256_file(path).map_err(|e| format!("cannot read the file: {e}"))?;
        stats.hashed_files += 1;
        stats.hashed_bytes += n;
        let after = std::fs::symlink_metadata(path)
            .map_err(|e| format!("the file vanished while being read: {e}"))?;
        if !after.is_file() {
            return Err("the file was replaced while being read".into());
        }
        let after = meta_of(&after, Kind::File);
        if after == meta && n == meta.size {
            return Ok(LocalEntry {
                kind: Kind::File,
                meta,
                hashes: Hashes {
                    sha256: Some(sha),
                    md5: None,
                },
            });
        }
        meta = after;
        if let Some(hashes) = unchanged(&meta, synced.get(rel)) {
            return Ok(LocalEntry {
                kind: Kind::File,
                meta,
                hashes,
            });
        }
    }
    Err("the file kept changing while being read; it is looked at again on the next scan".into())
}

#[cfg(test)]
mod tests;
