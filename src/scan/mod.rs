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
mod walk;

pub use hash::{md5_file, sha256_file};
pub use rules::{DEFAULT_PATTERNS, IGNORE_FILE, IgnoreRules, PART_SUFFIX, STATE_DIR};
pub use walk::Listed;

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
    let walk = walk::Walk::new(root, synced, rules, vec![RelPath::root()], Vec::new());
    Ok(run(&walk, ScanOutcome::default()))
}

/// What [`scan_stream`] found besides the entries it handed out.
#[derive(Debug, Clone, Default)]
pub struct StreamOutcome {
    /// As [`LocalView::unknown`]: what could not be looked at.
    pub unknown: Vec<RelPath>,
    /// As [`ScanOutcome::skipped`].
    pub skipped: Vec<(String, String)>,
    pub stats: ScanStats,
}

/// The walk of [`scan`] as a stream, for the engine's no-change check: the
/// same entries (the same rules, symlinks and special files left out the
/// same way), but files only with their metadata (nothing is read, so
/// [`LocalEntry::hashes`] is empty), handed to `sink` a folder (or a batch
/// of a large folder) at a time, in no particular order, each with its
/// folder ([`Listed`]: every folder listed has a first batch, also when
/// empty); `sink` drains the tree it gets. Memory follows the largest folder, not the tree. Setting
/// `stop` (e.g. from `sink`) ends the walk early; what it found then is
/// incomplete.
pub fn scan_stream(
    root: &Path,
    rules: &IgnoreRules,
    stop: &std::sync::atomic::AtomicBool,
    sink: &(dyn Fn(Listed<'_>) + Sync),
) -> Result<StreamOutcome, ScanError> {
    check_root(root)?;
    let none = Tree::new();
    let walk = walk::Walk::new(root, &none, rules, vec![RelPath::root()], Vec::new())
        .streaming(sink, stop);
    let out = run(&walk, ScanOutcome::default());
    Ok(StreamOutcome {
        unknown: out.view.unknown,
        skipped: out.skipped,
        stats: out.stats,
    })
}

/// Like [`scan`], but looks only where `scopes` say (see
/// [`crate::model::Scope`]): the folders on each scope's spine (a spine
/// folder that is missing, not a folder, or ignored ends that scope: nothing
/// below it is there), then the scope's content. `synced` needs to hold only
/// the same part. The result equals the same cut of a whole scan.
pub fn scan_scoped(
    root: &Path,
    synced: &Tree<SyncedEntry>,
    rules: &IgnoreRules,
    scopes: &[crate::model::Scope],
) -> Result<ScanOutcome, ScanError> {
    check_root(root)?;
    let mut out = ScanOutcome::default();
    let mut start = Vec::new();
    let mut shallow = Vec::new();
    'scopes: for scope in scopes {
        for p in scope.spine() {
            if out.view.entries.contains_key(&p) {
                continue;
            }
            let abs = root.join(p.as_str());
            let md = match std::fs::symlink_metadata(&abs) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue 'scopes,
                Err(e) => {
                    out.skipped.push(skip(&p, &format!("cannot read: {e}")));
                    out.view.unknown.push(p);
                    continue 'scopes;
                }
            };
            let ft = md.file_type();
            let kind = if ft.is_dir() { Kind::Dir } else { Kind::File };
            if rules.ignores_entry(&p, kind) {
                if !is_state_dir(&p) {
                    out.view.ignored.insert(p);
                }
                continue 'scopes;
            }
            if ft.is_symlink() {
                out.skipped.push(skip(&p, SYMLINK_REASON));
                out.view.ignored.insert(p);
                continue 'scopes;
            }
            if !ft.is_dir() && !ft.is_file() {
                out.skipped.push(skip(&p, special_reason(&ft)));
                out.view.ignored.insert(p);
                continue 'scopes;
            }
            if ft.is_file() {
                // A file where the scope expects a folder: entered as the
                // whole scan would, and nothing below it.
                match file_entry(root, &p, md, synced.get(&p), &mut out.stats) {
                    Ok(entry) => {
                        out.stats.files += 1;
                        out.view.entries.insert(p, entry);
                    }
                    Err(reason) => {
                        out.skipped.push(skip(&p, &reason));
                        out.view.unknown.push(p);
                    }
                }
                continue 'scopes;
            }
            out.stats.dirs += 1;
            out.view.entries.insert(
                p,
                LocalEntry {
                    kind: Kind::Dir,
                    meta: meta_of(&md, Kind::Dir),
                    hashes: Hashes::default(),
                },
            );
        }
        if !start.contains(&scope.base) {
            start.push(scope.base.clone());
        }
        if !scope.deep {
            shallow.push(scope.base.clone());
        }
    }
    let walk = walk::Walk::new(root, synced, rules, start, shallow);
    Ok(run(&walk, out))
}

/// Runs `walk` to its end on up to [`MAX_THREADS`] threads and adds what
/// it found to `out`.
fn run(walk: &walk::Walk<'_>, mut out: ScanOutcome) -> ScanOutcome {
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

    for p in &mut parts {
        out.stats.files += p.stats.files;
        out.stats.dirs += p.stats.dirs;
        out.stats.hashed_files += p.stats.hashed_files;
        out.stats.hashed_bytes += p.stats.hashed_bytes;
        out.view.unknown.append(&mut p.unknown);
        out.view.ignored.extend(p.ignored.drain(..));
        out.view.holds_more.extend(p.holds_more.drain(..));
        out.skipped.append(&mut p.skipped);
        // Disjoint keys: a merge of two sorted trees.
        out.view.entries.append(&mut p.entries);
    }
    out.view.unknown.sort_unstable();
    out.view.unknown.dedup();
    out.skipped.sort_unstable();
    out.skipped.dedup();
    out
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

/// The `.dcsync` folder at the root: ours, not an ignored user entry.
fn is_state_dir(rel: &RelPath) -> bool {
    rel.depth() == 1 && rel.name() == STATE_DIR
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

/// The entry of a regular file (`synced`: its Synced entry, if any): Synced
/// hashes when the fast check holds,
/// else SHA-256 of its content, re-read if it changes while being hashed.
fn file_entry(
    root: &Path,
    rel: &RelPath,
    md: Metadata,
    synced: Option<&SyncedEntry>,
    stats: &mut ScanStats,
) -> Result<LocalEntry, String> {
    let mut meta = meta_of(&md, Kind::File);
    if let Some(hashes) = unchanged(&meta, synced) {
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
        if let Some(hashes) = unchanged(&meta, synced) {
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
