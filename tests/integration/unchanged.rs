//! The quick check a full pass starts with (`engine::unchanged`, #13): a
//! pass over sides that are exactly what Synced recorded ends there, in
//! sync, without building the trees; every kind of change makes it give
//! way to the full pass, which then syncs the change.

use crate::sync::library_pair;
use crate::util::*;
use dcsync::api::{FileId, FolderId};
use dcsync::clock::{Clock, FixedClock, SystemClock};
use dcsync::engine::{EngineConfig, Quiet, SyncReport, SyncRequest, sync};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

async fn pass(c: &dcsync::api::Client, cfg: &EngineConfig, clock: Arc<dyn Clock>) -> SyncReport {
    sync(c, cfg, SyncRequest::default(), clock, &Quiet)
        .await
        .expect("the pass runs")
}

/// The system clock 10 s ahead: no file the test writes is racily clean
/// (within one timestamp tick of the pass that reads it), so a pass after
/// a converged one meets sides exactly as recorded.
struct Ahead;

impl Clock for Ahead {
    fn now(&self) -> SystemTime {
        SystemClock.now() + Duration::from_secs(10)
    }
}

/// The id of the folder at `path` below the synced folder `/Sync`.
pub(crate) async fn folder(c: &dcsync::api::Client, path: &str) -> FolderId {
    let mut id = crate::sync::find_folder(c, None, "Sync").await.unwrap();
    for name in path.split('/').filter(|s| !s.is_empty()) {
        id = crate::sync::find_folder(c, Some(id), name).await.unwrap();
    }
    id
}

/// The id of the file `name` in the folder at `dir` below `/Sync`.
pub(crate) async fn file(c: &dcsync::api::Client, dir: &str, name: &str) -> FileId {
    let id = folder(c, dir).await;
    c.folder_listing(Some(id))
        .await
        .unwrap()
        .files
        .into_iter()
        .find(|f| f.name == name)
        .unwrap()
        .id
}

/// A synced pair with nested folders, an empty file (held back), a symlink
/// and an ignored file on each side (all left alone by every pass).
async fn settled_pair(host: &Host) -> (std::path::PathBuf, EngineConfig, dcsync::api::Client) {
    let (local, cfg) = library_pair(host, &[("a", 3), ("a/b", 3), ("c", 2)]);
    std::fs::write(local.join(".dcsyncignore"), "*.log\n").unwrap();
    std::fs::write(local.join("a/empty.txt"), "").unwrap();
    std::fs::write(local.join("c/local.log"), "ignored here").unwrap();
    std::os::unix::fs::symlink("a", local.join("link")).unwrap();
    let c = host.client();
    let first = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(first.in_sync() && !first.unchanged, "{first:?}");
    let up = host.write("h/remote.log", b"ignored on the host");
    let cdir = folder(&c, "c").await;
    c.upload_file(&up, "remote.log", Some(cdir), None)
        .await
        .unwrap();
    (local, cfg, c)
}

/// Sets the mtime of `p` (files whose mtime is near "now" are racily clean).
fn set_mtime(p: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_over_unchanged_sides_ends_at_the_quick_check() {
    let host = Host::start().await;
    let (_local, cfg, c) = settled_pair(&host).await;
    let before = c.requests_sent();
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(r.unchanged && r.in_sync() && r.rounds == 1, "{r:?}");
    assert_eq!(
        (r.uploaded, r.downloaded, r.deleted_local, r.deleted_remote),
        (0, 0, 0, 0)
    );
    // Every folder listed once (the root, a, a/b, c), plus resolving
    // `/Sync` and the account's limits, as a full pass does.
    let listed = r.remote_listed.as_ref().expect("the folders' prints");
    assert_eq!(listed.len(), 4, "{listed:?}");
    let calls = c.requests_sent() - before;
    // The notes a full pass makes stay: the empty file, the symlink, the
    // host's ignored file.
    let notes = r.plan.as_ref().unwrap().skipped.clone();
    for p in ["a/empty.txt", "link", "c/remote.log"] {
        assert!(notes.iter().any(|(n, _)| n == p), "{p} in {notes:?}");
    }
    // The same pass without the check plans nothing either.
    let full = sync(
        &c,
        &cfg,
        SyncRequest {
            quick_check: false,
            ..SyncRequest::default()
        },
        Arc::new(Ahead),
        &Quiet,
    )
    .await
    .unwrap();
    assert!(full.in_sync() && !full.unchanged, "{full:?}");
    assert_eq!(
        full.plan.as_ref().unwrap().skipped.len(),
        notes.len(),
        "{full:?}"
    );
    assert!(calls <= 8, "{calls} calls");
}

/// Each change below makes the check give way, and the full pass syncs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_gives_way_to_the_full_pass() {
    let host = Host::start().await;
    let (local, cfg, c) = settled_pair(&host).await;
    let clock: Arc<dyn Clock> = Arc::new(Ahead);
    let settle = |r: &SyncReport, what: &str| {
        assert!(!r.unchanged, "{what}: the check must give way: {r:?}");
        assert!(r.in_sync(), "{what}: {r:?}");
    };

    // Local: an edit, a new file deep down, a delete, a new folder.
    std::fs::write(local.join("a/b/f0.txt"), "edited, longer").unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "local edit");
    assert_eq!(r.uploaded, 1);
    std::fs::write(local.join("a/b/new.txt"), "new").unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "local new file");
    assert_eq!(r.uploaded, 1);
    std::fs::remove_file(local.join("c/f1.txt")).unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "local delete");
    assert_eq!(r.deleted_remote, 1);
    std::fs::create_dir(local.join("a/b/new dir")).unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "local new folder");
    assert_eq!(r.created_dirs, 1);
    assert!(pass(&c, &cfg, clock.clone()).await.unchanged);

    // Host: a new file deep down, a rename, a delete.
    let up = host.write("h/up.txt", b"from the host");
    c.upload_file(&up, "up.txt", Some(folder(&c, "a/b").await), None)
        .await
        .unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "host new file");
    assert_eq!(read(&local.join("a/b/up.txt")), b"from the host");
    c.file_rename(file(&c, "a", "f0.txt").await, "renamed.txt")
        .await
        .unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "host rename");
    assert!(local.join("a/renamed.txt").exists() && !local.join("a/f0.txt").exists());
    c.file_delete(file(&c, "c", "f0.txt").await).await.unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    settle(&r, "host delete");
    assert!(!local.join("c/f0.txt").exists());
    assert!(pass(&c, &cfg, clock.clone()).await.unchanged);

    // A synced file the ignore rules now match is forgotten by the full pass.
    std::fs::write(local.join(".dcsyncignore"), "*.log\nrenamed.txt\n").unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(!r.unchanged, "{r:?}");
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(r.unchanged && r.in_sync(), "{r:?}");

    // A new ignored file on either side is no change.
    std::fs::write(local.join("a/more.log"), "x").unwrap();
    let up = host.write("h/more.log", b"y");
    c.upload_file(&up, "more.log", Some(folder(&c, "a").await), None)
        .await
        .unwrap();
    let r = pass(&c, &cfg, clock).await;
    assert!(r.unchanged && r.in_sync(), "{r:?}");
}

/// The check compares the local side folder by folder as the walk lists
/// them (a large folder in batches, folders in no particular order): a
/// folder emptied (the folder kept), a change in the last of a large
/// folder's batches, and a folder removed with all it held each make the
/// check give way, and the full pass syncs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_folder_a_large_one_and_a_removed_one_each_give_way() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("big", 600), ("e", 1), ("d", 2), ("d/sub", 2)]);
    let c = host.client();
    let clock: Arc<dyn Clock> = Arc::new(Ahead);
    let first = pass(&c, &cfg, clock.clone()).await;
    assert!(first.in_sync() && first.uploaded == 605, "{first:?}");
    assert!(pass(&c, &cfg, clock.clone()).await.unchanged);

    std::fs::remove_file(local.join("e/f0.txt")).unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(
        !r.unchanged && r.in_sync() && r.deleted_remote == 1,
        "emptied: {r:?}"
    );
    assert!(pass(&c, &cfg, clock.clone()).await.unchanged);

    // Names sort as text: f99.txt is in the folder's last batch.
    std::fs::write(local.join("big/f99.txt"), "edited, and longer").unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(
        !r.unchanged && r.in_sync() && r.uploaded == 1,
        "last batch: {r:?}"
    );
    assert!(pass(&c, &cfg, clock.clone()).await.unchanged);

    std::fs::remove_dir_all(local.join("d")).unwrap();
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(!r.unchanged && r.in_sync(), "removed folder: {r:?}");
    let top = c.folder_listing(Some(folder(&c, "").await)).await.unwrap();
    assert!(top.folders.iter().all(|f| f.name != "d"), "{top:?}");
    assert!(pass(&c, &cfg, clock).await.unchanged);
}

/// A batch of a large folder whose entries the walk all leaves out (here
/// 512 ignored files: two batches of 256) still counts as handed over: the
/// folder is compared whole and the pass ends at the check, instead of
/// giving way to the full pass for a folder "not listed whole".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ignored_entries_still_completes_its_folder() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("big", 256)]);
    std::fs::write(local.join(".dcsyncignore"), "*.log\n").unwrap();
    for i in 0..512 {
        std::fs::write(local.join(format!("big/m{i:03}.log")), "ignored").unwrap();
    }
    std::fs::write(local.join("big/z.txt"), "last").unwrap();
    let c = host.client();
    let clock: Arc<dyn Clock> = Arc::new(Ahead);
    let first = pass(&c, &cfg, clock.clone()).await;
    assert!(first.in_sync() && first.uploaded == 258, "{first:?}");
    let r = pass(&c, &cfg, clock).await;
    assert!(r.unchanged && r.in_sync(), "{r:?}");
}

/// A file synced while racily clean (its mtime within one timestamp tick
/// of the read) is recorded so that the next pass reads it: a second write
/// in the same tick keeps its size and mtime. The check leaves it to the
/// full pass, which reads it and finds the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racily_clean_file_is_left_to_the_full_pass() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("a", 2)]);
    let c = host.client();
    let f = local.join("a/f0.txt");
    // Whole seconds: a filesystem whose timestamps have no sub-second part
    // gives every write within 2 s the same mtime.
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    set_mtime(&f, t);
    let clock = Arc::new(FixedClock::at(t + Duration::from_millis(500)));
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(r.in_sync() && r.uploaded == 2, "{r:?}");
    std::fs::write(&f, "a9").unwrap(); // the same size as "a0"
    set_mtime(&f, t);
    // Later: the file is no longer racy, but Synced says it was.
    clock.advance(Duration::from_secs(10));
    let r = pass(&c, &cfg, clock.clone()).await;
    assert!(!r.unchanged, "a racily clean file must be read: {r:?}");
    assert_eq!(r.uploaded, 1, "{r:?}");
}

/// The daemon's hourly pass (`host_from_polls`) is there for what the
/// folder watcher missed: its check looks at the local side only and
/// lists nothing (the polls' sweep watches the host); a local change still
/// gives way to the full pass, which looks at both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_check_looks_at_the_local_side_only() {
    let host = Host::start().await;
    let (local, cfg, c) = settled_pair(&host).await;
    let hourly = || SyncRequest {
        host_from_polls: true,
        ..SyncRequest::default()
    };
    let up = host.write("h/up.txt", b"from the host");
    c.upload_file(&up, "up.txt", Some(folder(&c, "a").await), None)
        .await
        .unwrap();
    let before = c.requests_sent();
    let r = sync(&c, &cfg, hourly(), Arc::new(Ahead), &Quiet)
        .await
        .unwrap();
    assert!(r.unchanged && r.remote_listed.is_none(), "{r:?}");
    assert!(
        !local.join("a/up.txt").exists(),
        "the host was not looked at"
    );
    // Resolving `/Sync` and the account's limits only.
    assert!(
        c.requests_sent() - before <= 3,
        "{}",
        c.requests_sent() - before
    );
    std::fs::write(local.join("c/new.txt"), "new").unwrap();
    let r = sync(&c, &cfg, hourly(), Arc::new(Ahead), &Quiet)
        .await
        .unwrap();
    assert!(!r.unchanged && r.in_sync(), "{r:?}");
    assert_eq!((r.uploaded, r.downloaded), (1, 1), "{r:?}");
    assert_eq!(read(&local.join("a/up.txt")), b"from the host");
}

/// Changes in a few folders on either side: the check hands the paths it
/// found to a pass focused around them, which syncs them without reading
/// the rest of either tree (a file moved between folders stays a move).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_changes_are_synced_by_a_pass_narrowed_to_them() {
    let host = Host::start().await;
    let (local, cfg, c) = settled_pair(&host).await;
    std::fs::write(local.join("a/b/f0.txt"), "edited, longer").unwrap();
    std::fs::rename(local.join("a/f1.txt"), local.join("c/moved.txt")).unwrap();
    let up = host.write("h/up.txt", b"from the host");
    c.upload_file(&up, "up.txt", Some(folder(&c, "c").await), None)
        .await
        .unwrap();
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(r.narrowed && r.in_sync(), "{r:?}");
    assert_eq!((r.uploaded, r.downloaded, r.moved), (1, 1, 1), "{r:?}");
    assert_eq!(read(&local.join("c/up.txt")), b"from the host");
    // The folders' prints for the daemon's poller: every folder, the ones
    // listed again by the narrowed pass as they are now.
    let listed = r.remote_listed.as_ref().expect("prints");
    assert_eq!(listed.len(), 4, "{listed:?}");
    let now = c.folder_listing(Some(folder(&c, "c").await)).await.unwrap();
    let c_id = folder(&c, "c").await.0;
    assert!(
        listed
            .iter()
            .any(|f| f.id == Some(c_id) && f.print == dcsync::snapshot::listing_print(&now)),
        "{listed:?}"
    );
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(r.unchanged, "{r:?}");
    // A new top-level folder is outside every folder the host has: the
    // full pass syncs it.
    std::fs::create_dir(local.join("new")).unwrap();
    std::fs::write(local.join("new/x.txt"), "x").unwrap();
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(!r.narrowed && !r.unchanged && r.in_sync(), "{r:?}");
    assert_eq!(r.uploaded, 1);
}

/// A narrowed pass that meets work outside its folders (here a folder made
/// on the host right before the pass lists the synced folder again) ends
/// in a full pass within the same `sync`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_pass_that_meets_more_is_followed_by_a_full_pass() {
    use crate::util::{Hooked, When};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let host = Host::start().await;
    let (local, cfg, c) = settled_pair(&host).await;
    std::fs::write(local.join("top.txt"), "top").unwrap();
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(r.in_sync(), "{r:?}");
    let folders = pass(&c, &cfg, Arc::new(Ahead))
        .await
        .remote_listed
        .expect("prints")
        .len();
    // The check lists every folder; the next listing is the narrowed
    // pass's listing of the synced folder (a file directly in it changed).
    std::fs::write(local.join("top.txt"), "top, edited").unwrap();
    let n = AtomicUsize::new(0);
    let sync_id = folder(&c, "").await;
    let other = c.clone();
    let hooked = Hooked {
        inner: c.clone(),
        hook: move |call, when| {
            if call == "folder/listing"
                && when == When::Before
                && n.fetch_add(1, Ordering::SeqCst) == folders
            {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current()
                        .block_on(other.folder_create(
                            "late",
                            Some(sync_id),
                            &dcsync::api::FolderOptions::default(),
                        ))
                        .unwrap()
                });
            }
            None
        },
    };
    let r = sync(
        &hooked,
        &cfg,
        SyncRequest::default(),
        Arc::new(Ahead),
        &Quiet,
    )
    .await
    .unwrap();
    assert!(r.in_sync() && !r.narrowed, "{r:?}");
    assert_eq!(r.uploaded, 1, "{r:?}");
    assert!(
        local.join("late").is_dir(),
        "the full pass brought the new folder"
    );
}

/// A pass whose ops change the ignore file (here it downloads the host's
/// new version, which no longer ignores `d1/`) plans its next round by the
/// new rules: it never ends "in sync" by rules no longer in force. (Sim
/// seed 514, with a conflict on the ignore file.) Both with the quick check
/// (the pass is narrowed to the ignore file, then the full pass follows) and
/// without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_ignore_rules_from_the_host_apply_within_the_same_pass() {
    for quick_check in [true, false] {
        let host = Host::start().await;
        let (local, cfg) = library_pair(&host, &[("a", 1)]);
        std::fs::write(local.join(".dcsyncignore"), "d1/\n").unwrap();
        std::fs::create_dir(local.join("d1")).unwrap();
        std::fs::write(local.join("d1/a.txt"), "left out so far").unwrap();
        let c = host.client();
        let r = pass(&c, &cfg, Arc::new(Ahead)).await;
        assert!(r.in_sync(), "{r:?}");
        let id = file(&c, "", ".dcsyncignore").await;
        let v2 = host.write("h/ignore", b"*.log\n");
        c.file_delete(id).await.unwrap();
        c.upload_file(&v2, ".dcsyncignore", Some(folder(&c, "").await), None)
            .await
            .unwrap();
        let req = SyncRequest {
            quick_check,
            ..SyncRequest::default()
        };
        let r = sync(&c, &cfg, req, Arc::new(Ahead), &Quiet).await.unwrap();
        assert!(r.in_sync(), "{r:?}");
        assert_eq!(read(&local.join(".dcsyncignore")), b"*.log\n");
        assert_eq!(r.uploaded, 1, "d1/a.txt goes up in the same pass: {r:?}");
        let d1 = folder(&c, "d1").await;
        let listed = c.folder_listing(Some(d1)).await.unwrap();
        assert_eq!(listed.files.len(), 1, "quick_check {quick_check}");
    }
}

/// Entries dcsync made that no listing showed yet (`unlisted`): the check
/// settles those its listing shows, as a full pass does, and ends there;
/// one that is not listed is the full pass's to judge (here it landed
/// nowhere anybody saw, so it goes up again instead of being taken for
/// deleted on the host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_dcsync_made_are_settled_by_the_check_when_listed() {
    use dcsync::model::Kind;
    use dcsync::state::{Change, StateDb};
    let host = Host::start().await;
    let (local, cfg, c) = settled_pair(&host).await;
    let shown = file(&c, "a", "f0.txt").await;
    let lost = file(&c, "c", "f0.txt").await;
    {
        let mut db = StateDb::open(&cfg.db_path).unwrap();
        db.apply(&[Change::Made(Kind::File, shown.0)]).unwrap();
    }
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(r.unchanged, "{r:?}");
    assert!(
        StateDb::open(&cfg.db_path)
            .unwrap()
            .unlisted()
            .unwrap()
            .is_empty()
    );
    // Made, then gone before any listing showed it.
    {
        let mut db = StateDb::open(&cfg.db_path).unwrap();
        db.apply(&[Change::Made(Kind::File, lost.0)]).unwrap();
    }
    c.file_delete(lost).await.unwrap();
    let r = pass(&c, &cfg, Arc::new(Ahead)).await;
    assert!(!r.unchanged && !r.narrowed && r.in_sync(), "{r:?}");
    assert_eq!((r.uploaded, r.deleted_local), (1, 0), "{r:?}");
    assert!(local.join("c/f0.txt").exists());
}
