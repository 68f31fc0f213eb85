//! The quick check a full pass starts with (#13): which paths, if any, are
//! no longer what the Synced tree recorded? Answered in memory that follows
//! the largest folder, not the tree: the local walk (metadata only, nothing
//! read) and the remote listings hand over one folder at a time, and each
//! folder is compared with the Synced entries below it as it comes in
//! (`StateDb::local_folder_differences`, `remote_folder_differences`):
//! nothing is gathered beyond the folders in flight, no table is written,
//! nothing is sorted beyond one folder.
//!
//! When every Synced entry is there as agreed on both sides (local: the
//! scan's fast check — kind, inode, size, mtime — so a racily clean file,
//! recorded with a mtime no file has, always differs; host: kind, id, parent
//! folder, name and size at the same path) and neither side holds anything
//! else, all three trees of a full pass would be equal, so its plan would be
//! empty: [`Verdict::Unchanged`], the pass ends here, in sync. When up to
//! [`NARROW_LIMIT`] paths differ: [`Verdict::Differs`], with a view of every
//! remote folder, and the engine runs a pass focused around those paths. On
//! anything else — something that could not be looked at, two entries of
//! one name, a listing that failed, a journal intent to settle, an entry
//! dcsync made that no listing shows yet, a path too long to name locally —
//! [`Verdict::Look`]: the full pass, as before. It errs towards "look
//! closer": a wrong "unchanged" would leave a change unsynced until the next
//! pass that finds it, so the tests compare its verdicts with full passes,
//! and the simulation runs it on two passes in three.
//!
//! Never writes to either side. In the database it writes only what a full
//! pass would: it drops the `unlisted` entries its listing shows (the
//! engine records the skipped notes).

use super::EngineError;
use super::pass::IGNORED_REMOTE;
use crate::api::host::Host;
use crate::api::{FolderId, Listing};
use crate::model::{Kind, LocalEntry, RelPath, RemoteEntry, RemoteView};
use crate::scan::{self, IgnoreRules};
use crate::snapshot::{self, ListedFolder};
use crate::state::{Differences, StateDb};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What the check saw when nothing changed: what a full pass would have
/// noted and remembered.
#[derive(Debug, Default)]
pub(super) struct Unchanged {
    /// Local entries left out (symlinks, special files, unusable names) and
    /// empty files held back, as the full pass notes them.
    pub local_skipped: Vec<(String, String)>,
    /// Host entries the ignore rules match (the top-most of each subtree);
    /// `None` when the host was not looked at.
    pub remote_skipped: Option<Vec<(String, String)>>,
    /// Every folder listed, with its listing's print (for the daemon's
    /// poller); `None` when the host was not looked at.
    pub listed: Option<Vec<ListedFolder>>,
    /// Every folder listed (with the synced folder's files): the tree the
    /// daemon's focused passes start from; `None` when the host was not
    /// looked at.
    pub view: Option<RemoteView>,
    pub scan_ms: u64,
    pub listing_ms: u64,
}

/// Whether the local path of `p` is longer than the system takes (4096
/// bytes on Linux, `PATH_MAX`).
fn too_long(root: &std::path::Path, p: &RelPath) -> bool {
    root.as_os_str().len() + 1 + p.as_str().len() >= 4096
}

/// What the local half found.
struct LocalSeen {
    root: PathBuf,
    /// The paths that differ, or why a full pass must look.
    differs: Result<Vec<RelPath>, String>,
    skipped: Vec<(String, String)>,
}

/// Differing paths the check hands to a narrowed pass; with more, the
/// full pass runs (its memory follows the tree anyway).
pub(super) const NARROW_LIMIT: usize = 100_000;

/// The check's answer.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Both sides are as Synced recorded them.
    Unchanged(Unchanged),
    /// Only these paths (on either side) differ from Synced; `view` holds
    /// every folder the listings showed (with the synced folder's own
    /// files), enough for a pass focused around them
    /// (`plan::focus::scopes_for`, `refresh_parts`); `listed` their prints.
    Differs {
        paths: Vec<RelPath>,
        view: RemoteView,
        listed: Vec<ListedFolder>,
    },
    /// A full pass must look, for this reason.
    Look(String),
}

/// Runs the check (of the local side only unless `host`); errors are the
/// database's.
#[allow(clippy::too_many_arguments)]
pub(super) async fn check(
    client: &dyn Host,
    db: &mut StateDb,
    db_path: PathBuf,
    root: PathBuf,
    remote_root: Option<FolderId>,
    rules: &IgnoreRules,
    concurrency: usize,
    host: bool,
) -> Result<Verdict, EngineError> {
    if !db.journal_pending()?.is_empty() {
        return Ok(Verdict::Look(
            "interrupted operations are to be settled".into(),
        ));
    }
    // Both sides at once (the host's listings mostly wait on the network;
    // they never depend on what the local side found, so the calls a check
    // makes follow from the host alone).
    let t = Instant::now();
    let local = {
        let (rules, root) = (rules.clone(), root.clone());
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            local_half(&db_path, &root, &rules).map(|seen| (seen, t.elapsed()))
        })
    };
    let remote = if host {
        Some(remote_half(client, db, remote_root, rules, concurrency).await?)
    } else {
        None
    };
    let listing_ms = t.elapsed().as_millis() as u64;
    let (local, scan_time) = local.await.map_err(|e| EngineError::Io {
        path: root,
        source: std::io::Error::other(format!("the local check failed: {e}")),
    })??;
    let scan_ms = scan_time.as_millis() as u64;
    let mut paths = match local.differs {
        Ok(p) => p,
        Err(why) => return Ok(Verdict::Look(why)),
    };
    let Some(remote) = remote else {
        // The host is the polls' to watch; a local change needs the full
        // pass (a narrowed one needs the host's folders).
        if let Some(p) = paths.first() {
            return Ok(Verdict::Look(format!("local: {p} differs")));
        }
        return Ok(Verdict::Unchanged(Unchanged {
            local_skipped: local.skipped,
            scan_ms,
            ..Unchanged::default()
        }));
    };
    let remote = match remote {
        Ok(r) => r,
        Err(why) => return Ok(Verdict::Look(why)),
    };
    if paths.is_empty() && remote.differs.is_empty() {
        return Ok(Verdict::Unchanged(Unchanged {
            local_skipped: local.skipped,
            remote_skipped: Some(remote.notes),
            listed: Some(remote.listed),
            view: Some(remote.view),
            scan_ms,
            listing_ms,
        }));
    }
    paths.extend(remote.differs);
    paths.sort();
    paths.dedup();
    if paths.len() > NARROW_LIMIT {
        return Ok(Verdict::Look(format!("{} paths differ", paths.len())));
    }
    // A path the system cannot name locally is the full pass's to hold
    // back (a narrowed pass would look for its folders and fail).
    if let Some(p) = paths.iter().find(|p| too_long(&local.root, p)) {
        return Ok(Verdict::Look(format!("{p} is too long a local path")));
    }
    Ok(Verdict::Differs {
        paths,
        view: remote.view,
        listed: remote.listed,
    })
}

/// One batch of a local folder's entries, as the walk hands it over.
type Batch = (RelPath, Option<usize>, Vec<(RelPath, LocalEntry)>);

/// The local half, on a blocking thread with its own connection: the walk
/// hands over each folder's entries (on its threads, folders in no
/// particular order), and this thread compares each folder, once all its
/// batches are in, with Synced (`StateDb::local_folder_differences`). No
/// table is written and nothing sorted beyond one folder.
fn local_half(
    db_path: &std::path::Path,
    root: &std::path::Path,
    rules: &IgnoreRules,
) -> Result<LocalSeen, EngineError> {
    // Set when the comparison ends early (too many differences, or the
    // database failed): the walk then ends.
    let stop = &AtomicBool::new(false);
    let db = StateDb::open(db_path)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(16);
    let (walked, compared) = std::thread::scope(|s| {
        let compare = s.spawn(move || compare_folders(&db, rx, stop));
        let walked = {
            let sink = |l: scan::Listed<'_>| {
                let rows: Vec<(RelPath, LocalEntry)> =
                    std::mem::take(l.entries).into_iter().collect();
                if tx.send((l.dir.clone(), l.batches, rows)).is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
            };
            scan::scan_stream(root, rules, stop, &sink)
        };
        drop(tx);
        let compared = match compare.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (walked, compared)
    });
    let compared = compared?;
    let walked = walked?;
    let differs = if let Some(p) = walked.unknown.first() {
        Err(format!("local: {p} could not be looked at"))
    } else {
        match compared {
            Compared::Done(found) => Ok(found),
            Compared::TooMany => Err(format!("local: more than {NARROW_LIMIT} paths differ")),
            Compared::Unfinished(p) => Err(format!("local: {p} was not listed whole")),
        }
    };
    let mut skipped = walked.skipped;
    let differs = differs.map(|found| {
        if found.paths.is_empty() {
            // Noted as the full pass notes them (`pass::hold_back_empty_files`).
            let mut held = found.held_back;
            held.sort();
            skipped.extend(held.into_iter().map(|p| {
                (
                    p.as_str().to_owned(),
                    "the host cannot store empty files; it will sync once it has content"
                        .to_owned(),
                )
            }));
        }
        found.paths
    });
    Ok(LocalSeen {
        root: root.to_path_buf(),
        differs,
        skipped,
    })
}

/// What [`compare_folders`] found.
enum Compared {
    Done(Differences),
    /// More than [`NARROW_LIMIT`] paths differ (the walk was stopped).
    TooMany,
    /// A folder whose batches did not all come (the walk was stopped, or
    /// lost one): nothing can be said.
    Unfinished(RelPath),
}

/// Gathers each folder's batches from `rx` and compares the folder with
/// Synced once the last one is in (so memory follows the folders being
/// listed, at most the walk's threads' and the channel's); sets `stop` to
/// end the walk early when the answer is known or the database fails.
fn compare_folders(
    db: &StateDb,
    rx: std::sync::mpsc::Receiver<Batch>,
    stop: &AtomicBool,
) -> Result<Compared, EngineError> {
    use std::collections::hash_map::Entry;
    // Folders with batches still to come: how many in all (once known),
    // how many came, their entries.
    type Open = (Option<usize>, usize, Vec<(RelPath, LocalEntry)>);
    let mut open: std::collections::HashMap<RelPath, Open> = Default::default();
    let mut found = Differences::default();
    for (dir, batches, rows) in rx {
        let (dir, rows) = match open.entry(dir) {
            Entry::Vacant(v) if batches == Some(1) => (v.into_key(), rows),
            Entry::Vacant(v) => {
                v.insert((batches, 1, rows));
                continue;
            }
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                slot.0 = slot.0.or(batches);
                slot.1 += 1;
                slot.2.extend(rows);
                if slot.0 != Some(slot.1) {
                    continue;
                }
                let (dir, (_, _, mut rows)) = o.remove_entry();
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                (dir, rows)
            }
        };
        if let Err(e) = db.local_folder_differences(&dir, &rows, NARROW_LIMIT, &mut found) {
            stop.store(true, Ordering::Relaxed);
            return Err(e.into());
        }
        if found.paths.len() > NARROW_LIMIT {
            stop.store(true, Ordering::Relaxed);
            return Ok(Compared::TooMany);
        }
    }
    if let Some(dir) = open.into_keys().min() {
        return Ok(Compared::Unfinished(dir));
    }
    Ok(Compared::Done(found))
}

/// What the remote half found.
struct RemoteSeen {
    notes: Vec<(String, String)>,
    listed: Vec<ListedFolder>,
    view: RemoteView,
    differs: Vec<RelPath>,
}

/// The remote half: every folder listed (as the snapshot does, up to
/// `concurrency` at a time), each compared with Synced as it comes in.
/// `Err(why)`: the host is not in a shape a narrowed pass can take.
async fn remote_half(
    client: &dyn Host,
    db: &mut StateDb,
    remote_root: Option<FolderId>,
    rules: &IgnoreRules,
    concurrency: usize,
) -> Result<Result<RemoteSeen, String>, EngineError> {
    let unlisted = db.unlisted()?;
    let mut seen = Seen::new(rules, remote_root);
    let mut found = Differences::default();
    // The unlisted entries the listings show.
    let mut shown: Vec<(Kind, u64)> = Vec::new();
    snapshot::list_tree(
        client,
        remote_root,
        RelPath::root(),
        concurrency,
        |path, id, result| {
            let children = match result {
                Ok(listing) => seen.enter(path, id, listing)?,
                Err(e) => {
                    seen.change = Some(format!("remote: the listing of {path} failed: {e}"));
                    return None;
                }
            };
            seen.compare(db, path, &unlisted, &mut shown, &mut found)
                .then_some(children)
        },
    )
    .await;
    if let Some(e) = seen.failed.take() {
        return Err(e.into());
    }
    let differs = match seen.change.take() {
        Some(why) => Err(why),
        // What dcsync made and a listing now shows is settled, as a full
        // pass settles it (`engine::forget_unlisted`); what is still not
        // listed is the full pass's to judge.
        None => match db.settle_unlisted(&shown)? {
            0 => Ok(found.paths),
            n => Err(format!("{n} entries dcsync made are not listed")),
        },
    };
    Ok(differs.map(|differs| RemoteSeen {
        notes: seen.notes,
        listed: seen.listed,
        view: seen.view,
        differs,
    }))
}

/// Every folder below `remote_root` listed as the remote half lists them,
/// keeping the folders (with the synced folder's files) and each folder's
/// number of entries the rules leave in, nothing else: the survey of a
/// windowed first sync (`engine::windows`). `Err(why)` as the remote half.
pub(super) async fn folders(
    client: &dyn Host,
    remote_root: FolderId,
    rules: &IgnoreRules,
    concurrency: usize,
) -> Result<(RemoteView, std::collections::BTreeMap<RelPath, u64>), String> {
    let mut seen = Seen::new(rules, Some(remote_root));
    let mut counts = std::collections::BTreeMap::new();
    snapshot::list_tree(
        client,
        Some(remote_root),
        RelPath::root(),
        concurrency,
        |path, id, result| {
            let children = match result {
                Ok(listing) => seen.enter(path, id, listing)?,
                Err(e) => {
                    seen.change = Some(format!("remote: the listing of {path} failed: {e}"));
                    return None;
                }
            };
            counts.insert(path.clone(), seen.rows.len() as u64);
            seen.rows.clear();
            // The prints are the poller's; a survey has no use for them.
            seen.listed.clear();
            Some(children)
        },
    )
    .await;
    match seen.change {
        Some(why) => Err(why),
        None => Ok((seen.view, counts)),
    }
}

/// The remote half's state between listings.
struct Seen<'r> {
    rules: &'r IgnoreRules,
    rows: Vec<(RelPath, RemoteEntry, String)>,
    visited: HashSet<FolderId>,
    notes: Vec<(String, String)>,
    listed: Vec<ListedFolder>,
    /// Every folder listed (and the synced folder's files).
    view: RemoteView,
    /// Why the host is not in a shape a narrowed pass can take (the walk
    /// then ends).
    change: Option<String>,
    /// A database error (the walk then ends).
    failed: Option<crate::state::StateError>,
}

impl<'r> Seen<'r> {
    /// Nothing seen yet; the walk starts at `remote_root`.
    fn new(rules: &'r IgnoreRules, remote_root: Option<FolderId>) -> Seen<'r> {
        Seen {
            rules,
            rows: Vec::new(),
            visited: remote_root.into_iter().collect(),
            notes: Vec::new(),
            listed: Vec::new(),
            view: RemoteView::default(),
            change: None,
            failed: None,
        }
    }

    /// Takes one folder's listing in; returns its subfolders to list, or
    /// `None` when the walk can end (a difference was found).
    fn enter(
        &mut self,
        path: &RelPath,
        id: Option<FolderId>,
        listing: Listing,
    ) -> Option<Vec<(RelPath, Option<FolderId>)>> {
        self.listed.push(ListedFolder {
            id: id.map(|f| f.0),
            path: path.clone(),
            print: snapshot::listing_print(&listing),
            children: listing
                .folders
                .iter()
                .map(|f| (f.id.0, snapshot::folder_hint(f)))
                .collect(),
        });
        let parent = id.map(|f| f.0);
        let mut names: HashSet<&str> = HashSet::new();
        let mut children = Vec::new();
        let entries = listing
            .folders
            .iter()
            .map(|f| (Kind::Dir, f.id.0, f.name.as_str(), 0))
            .chain(
                listing
                    .files
                    .iter()
                    .map(|f| (Kind::File, f.id.0, f.name.as_str(), f.size)),
            );
        for (kind, eid, name, size) in entries {
            if !names.insert(name) {
                self.change = Some(format!("remote: two entries are called {name:?} in {path}"));
                return None;
            }
            let Some(child) = path.join(name) else {
                self.change = Some(format!("remote: a name in {path} cannot be a local name"));
                return None;
            };
            // As `pass::leave_out_ignored_remote`: left alone with all below.
            if self.rules.ignores_entry(&child, kind) {
                self.notes
                    .push((child.as_str().to_owned(), IGNORED_REMOTE.to_owned()));
                self.view.ignored.insert(child);
                continue;
            }
            let entry = RemoteEntry {
                kind,
                id: eid,
                parent,
                size,
            };
            if kind == Kind::Dir || path.is_root() {
                self.view.entries.insert(child.clone(), entry.clone());
            }
            if kind == Kind::Dir {
                if !self.visited.insert(FolderId(eid)) {
                    self.change = Some(format!("remote: folder {eid} is listed twice"));
                    return None;
                }
                children.push((child.clone(), Some(FolderId(eid))));
            }
            self.rows.push((child, entry, name.to_owned()));
        }
        Some(children)
    }

    /// Compares the folder `dir` just entered (its rows) with Synced,
    /// adding to `found`, and the `unlisted` entries it shows to `shown`;
    /// `false` when the walk can end: the database failed (kept in
    /// `failed`), a path came twice or too many differ (kept in `change`).
    fn compare(
        &mut self,
        // `&mut`: the listing's future holds it across awaits (a
        // connection is not `Sync`).
        db: &mut StateDb,
        dir: &RelPath,
        unlisted: &HashSet<(Kind, u64)>,
        shown: &mut Vec<(Kind, u64)>,
        found: &mut Differences,
    ) -> bool {
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if rows.windows(2).any(|w| w[0].0 == w[1].0) {
            self.change = Some(format!("remote: a path is listed twice in {dir}"));
            return false;
        }
        shown.extend(
            rows.iter()
                .map(|(_, e, _)| (e.kind, e.id))
                .filter(|k| unlisted.contains(k)),
        );
        if let Err(e) = db.remote_folder_differences(dir, &rows, NARROW_LIMIT, found) {
            self.failed = Some(e);
            return false;
        }
        if found.paths.len() > NARROW_LIMIT {
            self.change = Some(format!("remote: more than {NARROW_LIMIT} paths differ"));
            return false;
        }
        true
    }
}
