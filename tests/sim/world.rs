//! The world around the engine: two users (one on the local folder, one on
//! the host, as another device or the website would), host faults and
//! crashes, all drawn from one seeded RNG; and the oracle that checks, when
//! the users stop and the engine has settled, that nothing a user wrote was
//! lost, both sides are equal, and nothing ignored crossed over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcsync::api::host::Host;
use dcsync::api::{ApiError, Expected, FileId, FolderId, FolderOptions, RemoteFile};
use dcsync::clock::{Clock, FixedClock};
use dcsync::model::{Kind, RelPath};
use dcsync::scan::IgnoreRules;
use dcsync::snapshot::duplicate_name;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, Notify};

use crate::host::{After, Before};

/// Folders and names the users pick from: few, so that they collide.
const DIRS: &[&str] = &["", "d0", "d1", "d0/e"];
const NAMES: &[&str] = &["a.txt", "b.txt", "c.md"];
/// Always ignored (the `.dcsyncignore` written before the first pass).
const IGNORED_NAME: &str = "x.log";
pub const IGNORE_BASE: &str = "*.log\n";
/// The line the local user adds and removes again.
const IGNORE_TOGGLE: &str = "d1/\n";

/// Where the simulated wall clock starts: 2035-01-01 00:00:00.000123456
/// UTC. The engine reads "now" from a clock only the simulation moves, and
/// the local user stamps every file it writes with that clock, so whether a
/// file is racily clean (its mtime within a tick of the engine's read)
/// follows from the seed, not from how fast the machine ran it. Files the
/// engine writes itself carry the real (older) time and are never racy.
pub fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::new(2_051_222_400, 123_456)
}

/// How often things happen, per host call while the users are active.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub local: f64,
    pub remote: f64,
    pub fail: f64,
    pub lose: f64,
    pub crash: f64,
}

/// What the engine saw in its latest listing of a folder, and when.
#[derive(Clone, Default)]
pub struct Seen {
    files: BTreeSet<FileId>,
    folders: BTreeSet<FolderId>,
    /// `Shared::calls` when the listing was asked for.
    at: u64,
}

/// What the engine's host calls and the runner share.
pub struct Shared {
    pub world: Mutex<World>,
    /// Users act and faults happen only while this is set.
    pub armed: AtomicBool,
    crash: std::sync::Mutex<Arc<Notify>>,
    /// The engine's host calls so far (their order, for "how fresh was the
    /// engine's look").
    pub calls: AtomicU64,
    /// The daemon simulation's local events, fed at every host call.
    pub events: std::sync::Mutex<Option<Arc<crate::daemon::WorldEvents>>>,
}

impl Shared {
    pub fn new(world: World) -> Arc<Shared> {
        Arc::new(Shared {
            world: Mutex::new(world),
            armed: AtomicBool::new(false),
            crash: std::sync::Mutex::new(Arc::new(Notify::new())),
            calls: AtomicU64::new(0),
            events: std::sync::Mutex::new(None),
        })
    }

    /// A new crash signal for the pass about to start.
    pub fn crash_signal(&self) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        *self.crash.lock().unwrap() = n.clone();
        n
    }

    /// Gives the daemon's loop what changed in the local folder since the
    /// last look (daemon simulation only).
    pub async fn feed_events(&self) {
        let events = self.events.lock().ok().and_then(|g| g.clone());
        if let Some(note) = events.and_then(|e| e.feed()) {
            self.world.lock().await.log(note);
        }
    }

    pub fn crash(&self) {
        self.crash.lock().unwrap().notify_one();
    }

    pub async fn before(&self, call: &'static str, what: &str) -> Before {
        if !self.armed.load(Ordering::SeqCst) {
            return Before::Go;
        }
        let mut w = self.world.lock().await;
        w.around_call(call).await;
        let r = w.rates;
        if w.rng.random_bool(r.crash) {
            w.log(format!("  ! crash before {what}"));
            return Before::Crash;
        }
        if w.rng.random_bool(r.fail) {
            let e = if w.rng.random_bool(0.3) {
                ApiError::RateLimited {
                    endpoint: call,
                    retry_after: None,
                }
            } else {
                ApiError::Server {
                    endpoint: call,
                    status: 503,
                    snippet: "simulated".into(),
                }
            };
            w.log(format!("  ! {what} fails before the host acts"));
            return Before::Fail(e);
        }
        Before::Go
    }

    /// The engine got this listing of `folder`: the files it has seen there.
    pub async fn seen_by_engine(&self, folder: FolderId, l: &dcsync::api::Listing) {
        let at = self.calls.load(Ordering::SeqCst);
        let mut w = self.world.lock().await;
        w.seen.insert(
            folder,
            Seen {
                files: l.files.iter().map(|f| f.id).collect(),
                folders: l.folders.iter().map(|d| d.id).collect(),
                at,
            },
        );
    }

    /// The engine is about to trash `folder` on the host. A file in it that
    /// arrived after the engine last listed its folder goes with it, and so
    /// does everything below a subfolder that arrived after the engine last
    /// listed the folder it is in: the API has no conditional delete, so no
    /// client can prevent that (one call wide). Such versions are written
    /// off as the host's race, in the trace, but only when the engine looked
    /// right before: every folder of the subtree it knew was listed within
    /// the last few calls (a delete on the strength of the pass's scan alone
    /// leaves a window of a whole pass, which is the engine's bug). What the
    /// engine had seen is never written off (trashing that is its bug).
    pub async fn before_folder_delete(&self, folder: FolderId) {
        let now = self.calls.load(Ordering::SeqCst);
        let mut w = self.world.lock().await;
        let mut gone = Vec::new();
        let mut known = 0u64;
        let mut oldest = now;
        // (folder, whether it arrived unseen, with everything below it)
        let mut todo = vec![(folder, false)];
        while let Some((f, arrived)) = todo.pop() {
            let Ok(l) = w.plain.folder_listing(Some(f)).await else {
                continue;
            };
            let seen = w.seen.get(&f).cloned().unwrap_or_default();
            if !arrived {
                known += 1;
                oldest = oldest.min(seen.at);
            }
            todo.extend(
                l.folders
                    .iter()
                    .map(|d| (d.id, arrived || !seen.folders.contains(&d.id))),
            );
            gone.extend(
                l.files
                    .iter()
                    .filter(|x| arrived || !seen.files.contains(&x.id))
                    .cloned(),
            );
        }
        // The look before the delete lists each known folder once; a failed
        // call may be retried once.
        if now - oldest > 2 * known + 2 {
            w.log(format!(
                "  ! folder {} trashed on a look {} calls old",
                folder.0,
                now - oldest
            ));
            return;
        }
        for file in gone {
            if let Ok(c) = w.r_content(file.id).await
                && (w.live.remove(&c) | w.ign_remote.remove(&c))
            {
                w.log(format!(
                    "  ~ {} ({}) arrived after the engine's last look; trashed with its folder (the host's race)",
                    file.name,
                    c.trim_end()
                ));
            }
        }
    }

    pub async fn after(&self, call: &'static str, what: &str, ok: bool) -> After {
        if !self.armed.load(Ordering::SeqCst) {
            return After::Keep;
        }
        let mut w = self.world.lock().await;
        if w.calls {
            w.log(format!("    call {what} (ok={ok})"));
        }
        let r = w.rates;
        if w.rng.random_bool(r.crash) {
            w.log(format!("  ! crash after {what} (ok={ok})"));
            return After::Crash;
        }
        if ok && w.rng.random_bool(r.lose) {
            w.log(format!("  ! {what}: the host acted, the answer is lost"));
            return After::LoseAnswer;
        }
        w.around_call(call).await;
        After::Keep
    }
}

/// A remote tree, path -> entry; `""` is the synced folder.
#[derive(Debug, Default)]
pub struct RTree {
    pub files: BTreeMap<String, RemoteFile>,
    pub dirs: BTreeMap<String, FolderId>,
    /// Names listed twice in one folder.
    pub dups: Vec<String>,
    /// Every entry listed, (path, id), also the second of a name (`files`
    /// and `dirs` keep one per path): what identity checks compare, as a
    /// restore may bring an old file back beside the one that was there.
    pub all: Vec<(String, u64)>,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Files only the engine and the oracle handle specially: users on the host
/// leave them alone (the ignore file is the local user's to edit).
fn special(p: &str) -> bool {
    // (The engine's own copies count too: `.dcsyncignore (2)` on the host.)
    p.ends_with(".log") || name_of(p).starts_with(".dcsyncignore")
}

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn name_of(p: &str) -> &str {
    p.rsplit_once('/').map(|(_, n)| n).unwrap_or(p)
}

/// What the end check compares: both trees with contents.
pub struct Sides {
    /// Local path -> content.
    pub local: BTreeMap<String, String>,
    /// Remote path -> content (the first entry of a name).
    pub remote: BTreeMap<String, String>,
    /// Every remote entry (see [`RTree::all`]).
    pub all: Vec<(String, u64)>,
    /// Every remote file's content by id.
    pub by_id: BTreeMap<u64, String>,
}

/// Names listed more than once in a folder: path -> the entries
/// (folder?, id).
pub fn doubled(all: &[(String, u64)]) -> BTreeMap<String, Vec<(bool, u64)>> {
    let mut by_path: BTreeMap<String, Vec<(bool, u64)>> = BTreeMap::new();
    for (p, id) in all {
        let (path, folder) = match p.strip_suffix('/') {
            Some(d) => (d, true),
            None => (p.as_str(), false),
        };
        by_path
            .entry(path.to_string())
            .or_default()
            .push((folder, *id));
    }
    by_path.retain(|_, items| items.len() > 1);
    by_path
}

/// The local paths the engine gives the files of a doubled name (the
/// rule of `dcsync::snapshot`: the oldest entry, folders first, keeps the
/// name, the others are `name (duplicate N).ext` with N free in the folder).
fn engine_names(p: &str, mut items: Vec<(bool, u64)>, all: &[(String, u64)]) -> Vec<(String, u64)> {
    items.sort_by_key(|&(folder, id)| (!folder, id));
    let dir = parent_of(p);
    let taken: BTreeSet<&str> = all
        .iter()
        .map(|(q, _)| q.strip_suffix('/').unwrap_or(q))
        .filter(|q| parent_of(q) == dir)
        .map(name_of)
        .collect();
    let name = name_of(p);
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for (n, (folder, id)) in items.into_iter().enumerate() {
        let alias = if n == 0 {
            name.to_string()
        } else {
            (n + 1..)
                .map(|k| duplicate_name(name, k))
                .find(|a| !taken.contains(a.as_str()) && !assigned.contains(a))
                .unwrap_or_default()
        };
        assigned.insert(alias.clone());
        if !folder {
            out.push((join(dir, &alias), id));
        }
    }
    out
}

pub async fn rtree(c: &dyn Host, root: FolderId) -> Result<RTree, ApiError> {
    let mut t = RTree::default();
    t.dirs.insert(String::new(), root);
    let mut todo = vec![(String::new(), root)];
    while let Some((path, id)) = todo.pop() {
        let l = c.folder_listing(Some(id)).await?;
        let mut seen = BTreeSet::new();
        for f in l.folders {
            let p = join(&path, &f.name);
            t.all.push((format!("{p}/"), f.id.0));
            if !seen.insert(f.name.clone()) {
                t.dups.push(p);
                continue;
            }
            t.dirs.insert(p.clone(), f.id);
            todo.push((p, f.id));
        }
        for f in l.files {
            let p = join(&path, &f.name);
            t.all.push((p.clone(), f.id.0));
            if !seen.insert(f.name.clone()) {
                t.dups.push(p);
                continue;
            }
            t.files.insert(p, f);
        }
    }
    Ok(t)
}

/// Every file below `root` (the state folder left out), path -> content.
pub fn ltree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if rel.is_empty() && name == ".dcsync" {
                continue;
            }
            let p = join(rel, &name);
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(root, &p, out),
                Ok(t) if t.is_file() => {
                    if let Ok(s) = std::fs::read_to_string(root.join(&p)) {
                        out.insert(p, s);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn ldirs(root: &Path) -> Vec<String> {
    DIRS.iter()
        .filter(|d| !d.is_empty() && root.join(d).is_dir())
        .map(|d| d.to_string())
        .collect()
}

pub struct World {
    pub rng: StdRng,
    pub rates: Rates,
    pub root: PathBuf,
    /// Outside the sync root: the remote user's files and the oracle's downloads.
    pub scratch: PathBuf,
    /// The other users' host (no faults).
    pub plain: Arc<dyn Host>,
    pub remote_root: FolderId,
    /// Versions (contents) users wrote and did not delete or overwrite.
    pub live: BTreeSet<String>,
    /// Ignored files each side made: must stay on their side.
    pub ign_local: BTreeSet<String>,
    pub ign_remote: BTreeSet<String>,
    n: u64,
    /// The engine's latest listing of each folder.
    pub seen: std::collections::HashMap<FolderId, Seen>,
    /// Shared with the engine's reporter, so ops land in order.
    pub trace: Arc<std::sync::Mutex<Vec<String>>>,
    downloads: u64,
    /// `DCSYNC_SIM_CALLS` is set: every host call of the engine goes into
    /// the trace (for reading one seed closely).
    calls: bool,
    /// The engine's wall clock (see [`epoch`]).
    pub clock: Arc<FixedClock>,
    /// Entries (folder?, id) that shared a name with another right after
    /// the website's restore of the trashed synced folder: the restore
    /// brings back files trashed earlier beside ones made since (release
    /// seeds 152315, 193303). Such names are the host's doing, not
    /// dcsync's; the end check expects the engine's local names for them.
    pub restored_dups: BTreeSet<(bool, u64)>,
}

impl World {
    pub fn new(
        seed: u64,
        rates: Rates,
        root: PathBuf,
        scratch: PathBuf,
        plain: Arc<dyn Host>,
        remote_root: FolderId,
        clock: Arc<FixedClock>,
    ) -> World {
        World {
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_0000_dc5c),
            rates,
            root,
            scratch,
            plain,
            remote_root,
            live: BTreeSet::new(),
            ign_local: BTreeSet::new(),
            ign_remote: BTreeSet::new(),
            n: 0,
            seen: Default::default(),
            trace: Arc::default(),
            downloads: 0,
            calls: std::env::var("DCSYNC_SIM_CALLS").is_ok(),
            clock,
            restored_dups: BTreeSet::new(),
        }
    }

    /// Remembers the names a restore doubled (see `restored_dups`).
    pub fn note_restore(&mut self, all: &[(String, u64)]) {
        for items in doubled(all).into_values() {
            self.restored_dups.extend(items);
        }
    }

    /// Time passes: up to `max_ms`, drawn from the seed.
    fn tick(&mut self, max_ms: u64) {
        let us = self.rng.random_range(0..=max_ms * 1000);
        self.clock.advance(Duration::from_micros(us));
    }

    /// Gives the file at `full` the simulated clock's time, as the kernel
    /// would have stamped it when it was written.
    fn stamp(&self, full: &Path) -> std::io::Result<()> {
        std::fs::File::options()
            .write(true)
            .open(full)?
            .set_modified(self.clock.now())
    }

    /// Writes `c` to `full`, stamped with the simulated clock.
    fn write_stamped(&self, full: &Path, c: &str) -> std::io::Result<()> {
        std::fs::write(full, c)?;
        self.stamp(full)
    }

    pub fn log(&mut self, s: String) {
        if let Ok(mut t) = self.trace.lock() {
            t.push(s);
        }
    }

    fn content(&mut self, side: char) -> String {
        self.n += 1;
        let len = self.rng.random_range(0..48);
        let filler: String = (0..len)
            .map(|_| char::from(b'a' + self.rng.random_range(0..26u8)))
            .collect();
        format!("v{}{side}{filler}\n", self.n)
    }

    /// Other users act while the engine waits on a host call. The local
    /// user does not act during listings: the scan runs beside them on
    /// another thread, and what it would see would depend on timing, not on
    /// the seed. (Changes between the scan and the ops still happen: in the
    /// calls of the ops.)
    async fn around_call(&mut self, call: &str) {
        let r = self.rates;
        let local = self.rng.random_bool(r.local);
        if local && call != "folder/listing" && call != "account/package" {
            self.local_action();
        }
        if self.rng.random_bool(r.remote) {
            self.remote_action().await;
        }
    }

    /// One action of either user (between passes), some time after the
    /// last thing that happened.
    pub async fn act(&mut self) {
        self.tick(40);
        if self.rng.random_bool(0.5) {
            self.local_action();
        } else {
            self.remote_action().await;
        }
    }

    // ------------------------------------------------------------ local user

    fn local_files(&self) -> Vec<String> {
        ltree(&self.root)
            .into_keys()
            .filter(|p| !special(p))
            .collect()
    }

    fn free_local_path(&mut self) -> Option<String> {
        let d = *DIRS.choose(&mut self.rng)?;
        let n = *NAMES.choose(&mut self.rng)?;
        let p = join(d, n);
        let full = self.root.join(&p);
        // Never over a folder or through a file.
        if full.exists() || self.root.join(d).is_file() {
            return None;
        }
        Some(p)
    }

    pub fn local_action(&mut self) {
        self.tick(6);
        let roll = self.rng.random_range(0..100);
        let r = match roll {
            0..=29 => self.l_write(),
            30..=39 => self.l_overwrite(false),
            40..=44 => self.l_overwrite(true),
            45..=52 => self.l_delete(),
            53..=64 => self.l_rename(),
            65..=68 => self.l_delete_dir(),
            69..=75 => self.l_rename_dir(),
            76..=84 => self.l_ignored(),
            85..=87 => self.l_toggle_ignore(),
            _ => self.l_replace_atomically(),
        };
        if let Err(e) = r {
            self.log(format!("L (failed: {e})"));
        }
    }

    fn l_write(&mut self) -> std::io::Result<()> {
        let Some(p) = self.free_local_path() else {
            return Ok(());
        };
        let c = self.content('L');
        let full = self.root.join(&p);
        std::fs::create_dir_all(full.parent().unwrap_or(&self.root))?;
        self.write_stamped(&full, &c)?;
        self.log(format!("L write {p} = {}", c.trim_end()));
        self.live.insert(c);
        Ok(())
    }

    /// Overwrites in place; `same_tick`: same size and the old mtime kept.
    fn l_overwrite(&mut self, same_tick: bool) -> std::io::Result<()> {
        let files = self.local_files();
        let Some(p) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let full = self.root.join(&p);
        let old = std::fs::read_to_string(&full)?;
        let meta = std::fs::metadata(&full)?;
        // Within one tick of the filesystem's clock (Linux stamps files
        // from a clock of jiffy resolution, 4-10 ms) a second write keeps
        // the mtime; later it cannot, whatever the size.
        let same_tick = same_tick
            && self
                .clock
                .now()
                .duration_since(meta.modified()?)
                .is_ok_and(|age| age < Duration::from_millis(8));
        let mut c = self.content('L');
        if same_tick {
            // Same length as before, so only the content differs.
            while c.len() < old.len() {
                c.insert(c.len() - 1, 'z');
            }
            if c.len() > old.len() {
                return Ok(());
            }
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&full)?;
        use std::io::Write;
        (&f).write_all(c.as_bytes())?;
        f.set_modified(if same_tick {
            meta.modified()?
        } else {
            self.clock.now()
        })?;
        drop(f);
        self.log(format!(
            "L overwrite {p}{} = {}",
            if same_tick {
                " (same size and mtime)"
            } else {
                ""
            },
            c.trim_end()
        ));
        self.live.remove(&old);
        self.live.insert(c);
        Ok(())
    }

    fn l_replace_atomically(&mut self) -> std::io::Result<()> {
        let files = self.local_files();
        let Some(p) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let full = self.root.join(&p);
        let old = std::fs::read_to_string(&full)?;
        let c = self.content('L');
        // An editor's save: a temp file (ignored by default) renamed over.
        let tmp = full.with_file_name(format!("~${}", name_of(&p)));
        self.write_stamped(&tmp, &c)?;
        std::fs::rename(&tmp, &full)?;
        self.log(format!("L save-by-rename {p} = {}", c.trim_end()));
        self.live.remove(&old);
        self.live.insert(c);
        Ok(())
    }

    fn l_delete(&mut self) -> std::io::Result<()> {
        let files = self.local_files();
        let Some(p) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let full = self.root.join(&p);
        let old = std::fs::read_to_string(&full)?;
        std::fs::remove_file(&full)?;
        self.log(format!("L delete {p} ({})", old.trim_end()));
        self.live.remove(&old);
        Ok(())
    }

    fn l_rename(&mut self) -> std::io::Result<()> {
        let files = self.local_files();
        let Some(p) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let Some(to) = self.free_local_path() else {
            return Ok(());
        };
        let dest = self.root.join(&to);
        std::fs::create_dir_all(dest.parent().unwrap_or(&self.root))?;
        std::fs::rename(self.root.join(&p), &dest)?;
        self.log(format!("L rename {p} -> {to}"));
        Ok(())
    }

    fn l_delete_dir(&mut self) -> std::io::Result<()> {
        let dirs = ldirs(&self.root);
        let Some(d) = dirs.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let below: Vec<(String, String)> = ltree(&self.root)
            .into_iter()
            .filter(|(p, _)| p.starts_with(&format!("{d}/")))
            .collect();
        std::fs::remove_dir_all(self.root.join(&d))?;
        self.log(format!("L delete folder {d} ({} files)", below.len()));
        for (p, c) in below {
            if p.ends_with(".log") {
                self.ign_local.remove(&c);
            }
            self.live.remove(&c);
        }
        Ok(())
    }

    fn l_rename_dir(&mut self) -> std::io::Result<()> {
        let dirs = ldirs(&self.root);
        let Some(d) = dirs.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let to = match d.as_str() {
            "d0" => "d1",
            "d1" => "d0",
            "d0/e" => "d1/e",
            _ => return Ok(()),
        };
        let dest = self.root.join(to);
        if dest.exists() || self.root.join(parent_of(to)).is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(dest.parent().unwrap_or(&self.root))?;
        std::fs::rename(self.root.join(&d), &dest)?;
        self.log(format!("L rename folder {d} -> {to}"));
        Ok(())
    }

    fn l_ignored(&mut self) -> std::io::Result<()> {
        let d = *DIRS.choose(&mut self.rng).unwrap_or(&"");
        let p = join(d, IGNORED_NAME);
        let full = self.root.join(&p);
        if self.root.join(d).is_file() {
            return Ok(());
        }
        let c = self.content('I');
        std::fs::create_dir_all(full.parent().unwrap_or(&self.root))?;
        if let Ok(old) = std::fs::read_to_string(&full) {
            self.ign_local.remove(&old);
        }
        self.write_stamped(&full, &c)?;
        self.log(format!("L write ignored {p} = {}", c.trim_end()));
        self.ign_local.insert(c);
        Ok(())
    }

    fn l_toggle_ignore(&mut self) -> std::io::Result<()> {
        let p = self.root.join(".dcsyncignore");
        let now = std::fs::read_to_string(&p).unwrap_or_default();
        let next = if now.contains(IGNORE_TOGGLE) {
            IGNORE_BASE.to_string()
        } else {
            format!("{IGNORE_BASE}{IGNORE_TOGGLE}")
        };
        self.write_stamped(&p, &next)?;
        self.log(format!(
            "L .dcsyncignore now {:?}",
            next.lines().collect::<Vec<_>>()
        ));
        Ok(())
    }

    // ----------------------------------------------------------- remote user

    pub async fn remote_action(&mut self) {
        let t = match rtree(self.plain.as_ref(), self.remote_root).await {
            Ok(t) => t,
            Err(e) => {
                self.log(format!("R (listing failed: {e})"));
                return;
            }
        };
        let roll = self.rng.random_range(0..100);
        let r = match roll {
            0..=29 => self.r_upload(&t, false).await,
            30..=41 => self.r_upload(&t, true).await,
            42..=51 => self.r_trash(&t).await,
            52..=64 => self.r_move(&t).await,
            65..=68 => self.r_trash_dir(&t).await,
            69..=76 => self.r_move_dir(&t).await,
            77..=84 => self.r_ignored(&t).await,
            _ => self.r_mkdir(&t).await,
        };
        if let Err(e) = r {
            self.log(format!("R (failed: {e})"));
        }
    }

    /// The folder at `d`, made (with its parents) when missing.
    async fn r_dir(&mut self, t: &RTree, d: &str) -> Result<FolderId, ApiError> {
        if let Some(id) = t.dirs.get(d) {
            return Ok(*id);
        }
        let parent = Box::pin(self.r_dir(t, parent_of(d))).await?;
        // A listing of the parent may show it was made meanwhile (by the
        // recursion above for a deeper folder).
        let l = self.plain.folder_listing(Some(parent)).await?;
        if let Some(f) = l.folders.iter().find(|f| f.name == name_of(d)) {
            return Ok(f.id);
        }
        if l.files.iter().any(|f| f.name == name_of(d)) {
            return Err(ApiError::Config(format!("{d} is a file")));
        }
        let f = self
            .plain
            .folder_create(name_of(d), Some(parent), &FolderOptions::default())
            .await?;
        self.log(format!("R mkdir {d} [folder {}]", f.id));
        Ok(f.id)
    }

    pub async fn r_content(&mut self, id: FileId) -> Result<String, ApiError> {
        self.downloads += 1;
        let dest = self.scratch.join(format!("dl-{}", self.downloads));
        self.plain
            .download_file(id, &dest, &Expected::default(), None)
            .await?;
        let s = std::fs::read_to_string(&dest).unwrap_or_default();
        let _ = std::fs::remove_file(&dest);
        Ok(s)
    }

    async fn r_put(
        &mut self,
        folder: FolderId,
        name: &str,
        side: char,
    ) -> Result<(String, String), ApiError> {
        let c = self.content(side);
        let src = self.scratch.join("upload");
        std::fs::write(&src, &c).map_err(|e| ApiError::Config(e.to_string()))?;
        let up = self
            .plain
            .upload_file(&src, name, Some(folder), None)
            .await?;
        // Host ids in the trace make a file's way through a run easy to follow.
        Ok((c, format!("{} [file {}]", up.name, up.id)))
    }

    async fn r_upload(&mut self, t: &RTree, replace: bool) -> Result<(), ApiError> {
        let (d, name) = if replace {
            let files: Vec<&String> = t.files.keys().filter(|p| !special(p)).collect();
            let Some(p) = files.choose(&mut self.rng) else {
                return Ok(());
            };
            (parent_of(p).to_string(), name_of(p).to_string())
        } else {
            let d = DIRS.choose(&mut self.rng).unwrap_or(&"").to_string();
            let n = NAMES.choose(&mut self.rng).unwrap_or(&"a.txt").to_string();
            if t.files.contains_key(&join(&d, &n)) || t.files.contains_key(&d) {
                return Ok(());
            }
            (d, n)
        };
        let p = join(&d, &name);
        if replace {
            // The website's "replace": the old one to the trash, the new one up.
            let Some(old) = t.files.get(&p) else {
                return Ok(());
            };
            let old_content = self.r_content(old.id).await?;
            self.plain.file_delete(old.id).await?;
            self.live.remove(&old_content);
            self.log(format!(
                "R trash {p} [file {}] ({}) to replace it",
                old.id,
                old_content.trim_end()
            ));
        }
        let folder = self.r_dir(t, &d).await?;
        let (c, stored) = self.r_put(folder, &name, 'R').await?;
        self.log(format!(
            "R upload {p} (stored as {stored}) = {}",
            c.trim_end()
        ));
        self.live.insert(c);
        Ok(())
    }

    async fn r_trash(&mut self, t: &RTree) -> Result<(), ApiError> {
        let files: Vec<(&String, &RemoteFile)> =
            t.files.iter().filter(|(p, _)| !special(p)).collect();
        let Some((p, f)) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let c = self.r_content(f.id).await?;
        self.plain.file_delete(f.id).await?;
        self.log(format!("R trash {p} [file {}] ({})", f.id, c.trim_end()));
        self.live.remove(&c);
        Ok(())
    }

    async fn r_move(&mut self, t: &RTree) -> Result<(), ApiError> {
        let files: Vec<(&String, &RemoteFile)> =
            t.files.iter().filter(|(p, _)| !special(p)).collect();
        let Some((p, f)) = files.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let d = DIRS.choose(&mut self.rng).unwrap_or(&"").to_string();
        let n = NAMES.choose(&mut self.rng).unwrap_or(&"a.txt").to_string();
        let to = join(&d, &n);
        if t.files.contains_key(&to) || t.dirs.contains_key(&to) || t.files.contains_key(&d) {
            return Ok(());
        }
        let (p, id) = (p.clone(), f.id);
        if parent_of(&p) != d {
            let folder = self.r_dir(t, &d).await?;
            // The name must be free in the new folder before the move (the
            // host would keep both under one name).
            let l = self.plain.folder_listing(Some(folder)).await?;
            if l.files.iter().any(|f| f.name == name_of(&p))
                || l.folders.iter().any(|f| f.name == name_of(&p))
            {
                return Ok(());
            }
            self.plain.file_move(id, Some(folder)).await?;
        }
        if name_of(&p) != n {
            self.plain.file_rename(id, &n).await?;
        }
        self.log(format!("R move {p} [file {id}] -> {to}"));
        Ok(())
    }

    async fn r_trash_dir(&mut self, t: &RTree) -> Result<(), ApiError> {
        let dirs: Vec<(&String, &FolderId)> =
            t.dirs.iter().filter(|(p, _)| !p.is_empty()).collect();
        let Some((d, id)) = dirs.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let (d, id) = (d.clone(), *id);
        // From the host, not from `t`: a name listed twice (an engine move
        // half done) holds two versions, and both go.
        let mut below: Vec<(String, FileId)> = Vec::new();
        let mut todo = vec![(d.clone(), id)];
        while let Some((path, folder)) = todo.pop() {
            let l = self.plain.folder_listing(Some(folder)).await?;
            todo.extend(l.folders.iter().map(|f| (join(&path, &f.name), f.id)));
            below.extend(l.files.iter().map(|f| (join(&path, &f.name), f.id)));
        }
        let mut contents = Vec::new();
        for (p, id) in &below {
            contents.push((p.clone(), *id, self.r_content(*id).await?));
        }
        self.plain.folder_delete(id).await?;
        self.log(format!(
            "R trash folder {d} ({})",
            contents
                .iter()
                .map(|(p, id, c)| format!("{p} [file {id}] = {}", c.trim_end()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for (p, _, c) in contents {
            if p.ends_with(".log") {
                self.ign_remote.remove(&c);
            }
            self.live.remove(&c);
        }
        Ok(())
    }

    async fn r_move_dir(&mut self, t: &RTree) -> Result<(), ApiError> {
        let dirs: Vec<(&String, &FolderId)> =
            t.dirs.iter().filter(|(p, _)| !p.is_empty()).collect();
        let Some((d, id)) = dirs.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let (d, id) = (d.clone(), *id);
        let to = match d.as_str() {
            "d0" => "d1",
            "d1" => "d0",
            "d0/e" => "d1/e",
            "d1/e" => "e",
            _ => return Ok(()),
        };
        if t.dirs.contains_key(to) || t.files.contains_key(to) {
            return Ok(());
        }
        if parent_of(&d) != parent_of(to) {
            let folder = self.r_dir(t, parent_of(to)).await?;
            let l = self.plain.folder_listing(Some(folder)).await?;
            if l.files.iter().any(|f| f.name == name_of(&d))
                || l.folders.iter().any(|f| f.name == name_of(&d))
            {
                return Ok(());
            }
            self.plain.folder_move(id, Some(folder)).await?;
        }
        if name_of(&d) != name_of(to) {
            self.plain.folder_rename(id, name_of(to)).await?;
        }
        self.log(format!("R move folder {d} [folder {id}] -> {to}"));
        Ok(())
    }

    async fn r_ignored(&mut self, t: &RTree) -> Result<(), ApiError> {
        let d = DIRS.choose(&mut self.rng).unwrap_or(&"").to_string();
        if t.files.contains_key(&join(&d, IGNORED_NAME)) || t.files.contains_key(&d) {
            return Ok(());
        }
        let folder = self.r_dir(t, &d).await?;
        let (c, stored) = self.r_put(folder, IGNORED_NAME, 'J').await?;
        self.log(format!(
            "R upload ignored {} as {stored} = {}",
            join(&d, IGNORED_NAME),
            c.trim_end()
        ));
        self.ign_remote.insert(c);
        Ok(())
    }

    async fn r_mkdir(&mut self, t: &RTree) -> Result<(), ApiError> {
        let d = DIRS.choose(&mut self.rng).unwrap_or(&"").to_string();
        if d.is_empty() || t.dirs.contains_key(&d) {
            return Ok(());
        }
        self.r_dir(t, &d).await.map(|_| ())
    }

    // ---------------------------------------------------------------- oracle

    /// Both trees with contents.
    pub async fn both(&mut self) -> Result<Sides, String> {
        let local = ltree(&self.root);
        let t = rtree(self.plain.as_ref(), self.remote_root)
            .await
            .map_err(|e| format!("listing for the check: {e}"))?;
        let mut by_id = BTreeMap::new();
        for (p, id) in &t.all {
            if !p.ends_with('/') {
                let c = self
                    .r_content(FileId(*id))
                    .await
                    .map_err(|e| format!("download for the check: {e}"))?;
                by_id.insert(*id, c);
            }
        }
        let remote = t
            .files
            .iter()
            .filter_map(|(p, f)| Some((p.clone(), by_id.get(&f.id.0)?.clone())))
            .collect();
        Ok(Sides {
            local,
            remote,
            all: t.all,
            by_id,
        })
    }

    /// The end-of-seed checks. See the module docs.
    pub async fn check(&mut self) -> Result<(), String> {
        let Sides {
            local,
            mut remote,
            all,
            by_id,
        } = self.both().await?;
        let mut bad = Vec::new();
        let rules = IgnoreRules::load(&self.root).map_err(|e| e.to_string())?;
        let ignored = |p: &str| RelPath::new(p).is_some_and(|r| rules.is_ignored(&r, Kind::File));
        // Ignored names are the other device's alone (dcsync never sends
        // them: checked below); two of them in a folder come from the
        // emulator's restore of a trashed folder, which also brings back
        // files trashed earlier with a subfolder moved back since (release
        // seed 127405), and dcsync leaves ignored entries alone. Names
        // the restore doubled among synced files are the host's doing too:
        // there the local side must show every entry under the engine's
        // names (`c (duplicate 2).md`).
        let mut dups = Vec::new();
        for (p, items) in doubled(&all) {
            if ignored(&p) {
                continue;
            }
            if !items.iter().all(|i| self.restored_dups.contains(i)) {
                dups.push(p);
                continue;
            }
            remote.remove(&p);
            for (local_path, id) in engine_names(&p, items, &all) {
                if let Some(c) = by_id.get(&id) {
                    remote.insert(local_path, c.clone());
                }
            }
        }
        if !dups.is_empty() {
            bad.push(format!("duplicate names on the host: {dups:?}"));
        }
        let keys: BTreeSet<&String> = local.keys().chain(remote.keys()).collect();
        for k in keys {
            if ignored(k) {
                continue;
            }
            let (l, r) = (local.get(k), remote.get(k));
            if l != r {
                bad.push(format!(
                    "not equal at {k}: local {:?}, remote {:?}",
                    l.map(|s| s.trim_end()),
                    r.map(|s| s.trim_end())
                ));
            }
        }
        let everywhere: BTreeSet<&String> = local.values().chain(remote.values()).collect();
        let trash = ltree(&self.root.join(".dcsync/trash"));
        for v in &self.live {
            if !everywhere.contains(v) {
                let at: Vec<&String> = trash
                    .iter()
                    .filter(|(_, c)| *c == v)
                    .map(|(p, _)| p)
                    .collect();
                bad.push(format!(
                    "LOST: {} (a user wrote it and nobody deleted it; in the local trash: {at:?})",
                    v.trim_end()
                ));
            }
        }
        let lvals: BTreeSet<&String> = local.values().collect();
        // Every entry, also the second ones of a name: another device's
        // ignored files stay theirs even where a restore doubled a name.
        let rvals: BTreeSet<&String> = by_id.values().collect();
        for v in &self.ign_local {
            if !lvals.contains(v) {
                bad.push(format!("ignored local file lost: {}", v.trim_end()));
            }
            if rvals.contains(v) {
                bad.push(format!("ignored local file uploaded: {}", v.trim_end()));
            }
        }
        for v in &self.ign_remote {
            if !rvals.contains(v) {
                bad.push(format!("ignored host file lost: {}", v.trim_end()));
            }
            if lvals.contains(v) {
                bad.push(format!("ignored host file downloaded: {}", v.trim_end()));
            }
        }
        let tmp = self.root.join(".dcsync/tmp");
        let left: Vec<String> = std::fs::read_dir(&tmp)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if !left.is_empty() {
            bad.push(format!("temp files left in .dcsync/tmp: {left:?}"));
        }
        if bad.is_empty() {
            return Ok(());
        }
        let show = |t: &BTreeMap<String, String>| {
            t.iter()
                .map(|(p, c)| format!("    {p} = {}", c.trim_end()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Err(format!(
            "{}\n  local:\n{}\n  remote:\n{}",
            bad.join("\n"),
            show(&local),
            show(&remote)
        ))
    }
}
