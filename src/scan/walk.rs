//! The walk behind [`super::scan`]: a queue of folders (and batches of a
//! folder's entries) that a few threads take work from until none is left
//! and none is busy. Each thread fills its own [`Part`]; `scan` merges them.
//!
//! Per entry: the name and type come from `readdir` (no system call), the
//! metadata from one `statx` relative to the open folder (no path lookup from
//! the root), and the path is built once. A folder's entries are sorted by
//! name, so its files are looked up in Synced with one ordered cursor
//! instead of one search from the top each.

use super::{BATCH, SYMLINK_REASON, file_entry, meta_of, skip, special_reason};
use crate::model::{Hashes, Kind, LocalEntry, RelPath, SyncedEntry, Tree};
use crate::scan::{IgnoreRules, ScanStats};
use std::collections::btree_map;
use std::ffi::OsString;
use std::fs::DirEntry;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// `items` cut into a first batch and the others, each of at most `size`
/// items and holding no more memory than its items: a batch cut off a
/// longer vector with `split_off` keeps that vector's whole capacity, so
/// a folder of n entries held n²/2`size` of them at once (12 MB for 10,000
/// entries, about 1 GB for 100,000).
fn in_batches<T>(items: Vec<T>, size: usize) -> (Vec<T>, Vec<Vec<T>>) {
    let size = size.max(1);
    let mut it = items.into_iter();
    let first: Vec<T> = it.by_ref().take(size).collect();
    let mut rest = Vec::with_capacity(it.len().div_ceil(size));
    loop {
        let batch: Vec<T> = it.by_ref().take(size).collect();
        if batch.is_empty() {
            break;
        }
        rest.push(batch);
    }
    (first, rest)
}

/// What one thread found.
#[derive(Default)]
pub(super) struct Part {
    pub entries: Tree<LocalEntry>,
    pub unknown: Vec<RelPath>,
    /// Entries present but not synced (ignore rules, symlinks, special files).
    pub ignored: Vec<RelPath>,
    /// Folders holding entries that no path can name.
    pub holds_more: Vec<RelPath>,
    pub skipped: Vec<(String, String)>,
    pub stats: ScanStats,
}

/// A folder entry and its name.
type Named = (OsString, DirEntry);

enum Job {
    /// List this folder (already entered in the view, or the root).
    Dir(RelPath),
    /// Look at these entries (sorted by name) of the folder `.0`.
    Entries(Arc<RelPath>, Vec<Named>),
}

struct Queue {
    jobs: Vec<Job>,
    /// Threads working on a job (which may add jobs).
    busy: usize,
}

/// What a streaming walk hands over after each job: entries of one folder.
pub struct Listed<'t> {
    /// The folder the entries are in.
    pub dir: &'t RelPath,
    /// On the folder's first batch: how many batches its listing was cut
    /// into (each comes once, in no particular order); `None` on the
    /// others. Every folder the walk entered (and the root) has a first
    /// batch, also when empty, unless it could not be listed (then it is
    /// in the walk's `unknown`).
    pub batches: Option<usize>,
    /// The batch's entries (the sink drains them): its files and folders,
    /// without what the walk leaves out (ignored, symlinks, special files,
    /// unusable names).
    pub entries: &'t mut Tree<LocalEntry>,
}

/// Where a streaming walk ([`Walk::streaming`]) hands each job's entries.
pub(super) type Sink<'a> = &'a (dyn Fn(Listed<'_>) + Sync);

pub(super) struct Walk<'a> {
    root: &'a Path,
    synced: &'a Tree<SyncedEntry>,
    rules: &'a IgnoreRules,
    /// Streaming: files get their metadata only (no hash, no Synced look-up)
    /// and every job's entries go here instead of staying in the [`Part`].
    sink: Option<Sink<'a>>,
    /// Set by the caller (or the sink) to end the walk early.
    stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Folders whose subfolders are entered in the view but not listed.
    shallow: Vec<RelPath>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// Ends a job: its new jobs are queued and the thread counts as idle, also
/// when the job panicked (so that the other threads still finish; `scan`
/// re-raises the panic).
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
    /// A walk that lists the folders `start` (already entered in the view,
    /// or the root) and everything below them, except below the subfolders
    /// of a folder in `shallow`.
    pub(super) fn new(
        root: &'a Path,
        synced: &'a Tree<SyncedEntry>,
        rules: &'a IgnoreRules,
        start: Vec<RelPath>,
        shallow: Vec<RelPath>,
    ) -> Walk<'a> {
        Walk {
            root,
            synced,
            rules,
            sink: None,
            stop: None,
            shallow,
            queue: Mutex::new(Queue {
                jobs: start.into_iter().map(Job::Dir).collect(),
                busy: 0,
            }),
            wake: Condvar::new(),
        }
    }

    /// This walk as a stream: no file is read, each job's entries go to
    /// `sink` as soon as the job ends (so memory follows one job, not the
    /// tree), and the walk ends early once `stop` is set.
    pub(super) fn streaming(
        mut self,
        sink: Sink<'a>,
        stop: &'a std::sync::atomic::AtomicBool,
    ) -> Walk<'a> {
        self.sink = Some(sink);
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so it is never poisoned by one.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes jobs until the walk is done.
    pub(super) fn work(&self) -> Part {
        let mut part = Part::default();
        // The path being built (`dir/name`), reused for every entry.
        let mut buf = String::new();
        loop {
            let job = {
                let mut q = self.lock();
                loop {
                    if self.stopped() {
                        q.jobs.clear();
                        if q.busy == 0 {
                            return part;
                        }
                    } else if let Some(job) = q.jobs.pop() {
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
            // `None`: a folder that could not be listed (it is unknown), no batch.
            let batch = match job {
                Job::Dir(dir) => self.list(dir, &mut part, &mut buf, &mut busy.new_jobs),
                Job::Entries(dir, entries) => {
                    self.entries(&dir, entries, &mut part, &mut buf, &mut busy.new_jobs);
                    Some((dir, None))
                }
            };
            // Every batch is handed over, also one whose entries were all left
            // out: the sink counts a folder's batches.
            if let (Some(sink), Some((dir, batches))) = (self.sink, batch) {
                sink(Listed {
                    dir: &dir,
                    batches,
                    entries: &mut part.entries,
                });
            }
        }
    }

    fn abs(&self, rel: &RelPath) -> PathBuf {
        if rel.is_root() {
            self.root.to_path_buf()
        } else {
            self.root.join(rel.as_str())
        }
    }

    /// Lists the folder `dir` and looks at its entries (a large folder in
    /// batches shared with the other threads); returns the folder and how
    /// many batches its listing was cut into, `None` when it could not be
    /// listed.
    fn list(
        &self,
        dir: RelPath,
        part: &mut Part,
        buf: &mut String,
        new_jobs: &mut Vec<Job>,
    ) -> Option<(Arc<RelPath>, Option<usize>)> {
        let abs = self.abs(&dir);
        let rd = match std::fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) => {
                walk_error(self.root, &abs, &e, part);
                return None;
            }
        };
        let mut entries: Vec<Named> = Vec::new();
        for item in rd {
            match item {
                Ok(e) => entries.push((e.file_name(), e)),
                // Nothing more can be read from this folder.
                Err(e) => walk_error(self.root, &abs, &e, part),
            }
        }
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let dir = Arc::new(dir);
        let (first, rest) = in_batches(entries, BATCH);
        let batches = 1 + rest.len();
        if !rest.is_empty() {
            let mut batches: Vec<Job> = rest
                .into_iter()
                .map(|b| Job::Entries(Arc::clone(&dir), b))
                .collect();
            self.lock().jobs.append(&mut batches);
            self.wake.notify_all();
        }
        self.entries(&dir, first, part, buf, new_jobs);
        Some((dir, Some(batches)))
    }

    /// Entries of the folder `dir`, sorted by name.
    fn entries(
        &self,
        dir: &RelPath,
        entries: Vec<Named>,
        part: &mut Part,
        buf: &mut String,
        new_jobs: &mut Vec<Job>,
    ) {
        let mut cursor = Cursor::new(self.synced);
        for (name, e) in entries {
            self.entry(dir, &name, e, part, buf, &mut cursor, new_jobs);
        }
    }

    /// One entry of the folder `dir`: the same checks, in the same order, as
    /// a sequential top-down walk.
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        dir: &RelPath,
        name: &std::ffi::OsStr,
        e: DirEntry,
        part: &mut Part,
        buf: &mut String,
        cursor: &mut Cursor<'a>,
        new_jobs: &mut Vec<Job>,
    ) {
        let ft = match e.file_type() {
            Ok(ft) => ft,
            Err(err) => return walk_error(self.root, &e.path(), &err, part),
        };
        let path = buf;
        path.clear();
        if !dir.is_root() {
            path.push_str(dir.as_str());
            path.push('/');
        }
        let Some(name) = name.to_str() else {
            // Parents are UTF-8 (otherwise they were skipped), so it is this name.
            path.push_str(&name.to_string_lossy());
            part.skipped.push((
                path.clone(),
                "the name is not valid UTF-8; rename it to sync it".into(),
            ));
            part.holds_more.push(dir.clone());
            return;
        };
        path.push_str(name);
        let Some(rel) = RelPath::new(path).filter(|r| !r.is_root()) else {
            part.skipped.push((
                path.clone(),
                "the name is not usable as a path component".into(),
            ));
            part.holds_more.push(dir.clone());
            return;
        };
        let kind = if ft.is_dir() { Kind::Dir } else { Kind::File };
        if self.rules.ignores_entry(&rel, kind) {
            if !super::is_state_dir(&rel) {
                part.ignored.push(rel);
            }
            return;
        }
        if ft.is_symlink() {
            part.skipped.push(skip(&rel, SYMLINK_REASON));
            part.ignored.push(rel);
            return;
        }
        if !ft.is_dir() && !ft.is_file() {
            part.skipped.push(skip(&rel, special_reason(&ft)));
            part.ignored.push(rel);
            return;
        }
        // lstat relative to the open folder.
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
            part.entries.insert(
                rel.clone(),
                LocalEntry {
                    kind,
                    meta: meta_of(&md, kind),
                    hashes: Hashes::default(),
                },
            );
            if !self.shallow.contains(dir) {
                new_jobs.push(Job::Dir(rel));
            }
            return;
        }
        if self.sink.is_some() {
            part.stats.files += 1;
            part.entries.insert(
                rel,
                LocalEntry {
                    kind,
                    meta: meta_of(&md, kind),
                    hashes: Hashes::default(),
                },
            );
            return;
        }
        let synced = cursor.get(&rel);
        match file_entry(self.root, &rel, md, synced, &mut part.stats) {
            Ok(entry) => {
                part.stats.files += 1;
                part.entries.insert(rel, entry);
            }
            Err(reason) => {
                part.skipped.push(skip(&rel, &reason));
                part.unknown.push(rel);
            }
        }
    }
}

/// Looks up keys given in ascending order: a few steps forward from the last
/// one (the next file of the same folder), a new search from the top when
/// that does not reach it (e.g. past a subfolder's content).
struct Cursor<'s> {
    synced: &'s Tree<SyncedEntry>,
    /// The keys from the last search on, or `None` before the first.
    range: Option<std::iter::Peekable<btree_map::Range<'s, RelPath, SyncedEntry>>>,
}

impl<'s> Cursor<'s> {
    /// Steps forward before a new search.
    const STEPS: usize = 8;

    fn new(synced: &'s Tree<SyncedEntry>) -> Cursor<'s> {
        Cursor {
            synced,
            range: None,
        }
    }

    /// The entry at `key`; keys must come in ascending order.
    fn get(&mut self, key: &RelPath) -> Option<&'s SyncedEntry> {
        if let Some(range) = &mut self.range {
            for _ in 0..Self::STEPS {
                let Some((k, v)) = range.peek() else {
                    // Nothing at or after the last key searched for.
                    return None;
                };
                match (*k).cmp(key) {
                    std::cmp::Ordering::Less => {
                        range.next();
                    }
                    std::cmp::Ordering::Equal => return Some(*v),
                    std::cmp::Ordering::Greater => return None,
                }
            }
        }
        let mut range = self
            .synced
            .range::<RelPath, _>((Bound::Included(key), Bound::Unbounded))
            .peekable();
        let found = match range.peek() {
            Some((k, v)) if *k == key => Some(*v),
            _ => None,
        };
        self.range = Some(range);
        found
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

#[cfg(test)]
mod tests {
    use super::in_batches;

    /// Every batch holds its own items and no more (the old cut kept the
    /// capacity of everything after it: quadratic memory in a big folder).
    #[test]
    fn batches_hold_only_their_items() {
        for n in [0, 1, 255, 256, 257, 10_000] {
            let items: Vec<usize> = (0..n).collect();
            let (first, rest) = in_batches(items, 256);
            assert!(first.len() <= 256 && first.capacity() <= 256, "{n}");
            let mut all = first.clone();
            for b in &rest {
                assert!(!b.is_empty() && b.len() <= 256, "{n}: {}", b.len());
                assert!(b.capacity() <= 256, "{n}: capacity {}", b.capacity());
                all.extend(b);
            }
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "in order, none lost");
        }
    }
}
