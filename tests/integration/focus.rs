//! Focused passes on what the daemon's polls saw (#13): a folder whose
//! listing changed is looked at one level deep, with the cached tree of
//! folders, instead of a full pass over the whole tree; and what a focused
//! pass cannot see from inside its folders (a host entry moved in from
//! outside them, or out of them) waits for a full pass instead of being
//! downloaded again or trashed locally.

use crate::sync::library_pair;
use crate::unchanged::{file, folder};
use crate::util::*;
use dcsync::clock::SystemClock;
use dcsync::engine::{EngineConfig, Focus, Quiet, SyncReport, SyncRequest, sync};
use dcsync::model::{Kind, RelPath};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The client, counting the calls the engine makes by endpoint.
type Counted =
    Hooked<Box<dyn Fn(&'static str, When) -> Option<dcsync::api::ApiError> + Send + Sync>>;

fn counted(c: &dcsync::api::Client) -> (Counted, Arc<Mutex<HashMap<&'static str, u64>>>) {
    let calls: Arc<Mutex<HashMap<&'static str, u64>>> = Arc::default();
    let seen = calls.clone();
    let host = Hooked {
        inner: c.clone(),
        hook: Box::new(move |call, when| {
            if when == When::Before {
                *seen.lock().unwrap().entry(call).or_default() += 1;
            }
            None
        })
            as Box<dyn Fn(&'static str, When) -> Option<dcsync::api::ApiError> + Send + Sync>,
    };
    (host, calls)
}

fn calls(c: &Mutex<HashMap<&'static str, u64>>, call: &str) -> u64 {
    c.lock().unwrap().get(call).copied().unwrap_or(0)
}

async fn full(c: &dcsync::api::Client, cfg: &EngineConfig) -> SyncReport {
    sync(
        c,
        cfg,
        SyncRequest::default(),
        Arc::new(SystemClock),
        &Quiet,
    )
    .await
    .expect("the full pass runs")
}

/// The daemon's pass after polls saw the listings of `folders` change
/// (and the watcher saw `paths`), from the tree `last` left.
async fn focused(
    c: &dyn dcsync::api::host::Host,
    cfg: &EngineConfig,
    last: &SyncReport,
    paths: &[&str],
    folders: &[&str],
) -> SyncReport {
    let p = |s: &&str| RelPath::new(s).unwrap();
    let req = SyncRequest {
        focus: Some(Focus {
            remote: last.remote_view.clone().expect("a converged pass's tree"),
            paths: paths.iter().map(p).collect(),
            folders: folders.iter().map(p).collect(),
        }),
        ..SyncRequest::default()
    };
    sync(c, cfg, req, Arc::new(SystemClock), &Quiet)
        .await
        .expect("the focused pass runs")
}

/// Host changes in a subfolder and in the synced folder itself come down
/// in a pass that lists those two folders only; the tree kept for the
/// next focused pass holds folders (and the synced folder's files), not
/// the files below them; a new folder in a one-level look asks for a full
/// pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_focused_pass_looks_one_level_into_the_changed_folders() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(
        &host,
        &[("a", 3), ("b", 3), ("b/c", 3), ("d", 1), ("e", 1), ("f", 1)],
    );
    std::fs::write(local.join("top.txt"), "top").unwrap();
    let c = host.client();
    let first = full(&c, &cfg).await;
    assert!(first.in_sync(), "{first:?}");
    let view = first.remote_view.clone().unwrap();
    let kept: Vec<&RelPath> = view
        .entries
        .iter()
        .filter(|(p, e)| e.kind == Kind::File && p.depth() > 1)
        .map(|(p, _)| p)
        .collect();
    assert!(
        kept.is_empty(),
        "files below the top are not kept: {kept:?}"
    );
    assert!(view.entries.contains_key(&RelPath::new("b/c").unwrap()));
    assert!(view.entries.contains_key(&RelPath::new("top.txt").unwrap()));

    let sync_root = folder(&c, "").await;
    let a = folder(&c, "a").await;
    let up = host.write("up.txt", b"from another device");
    c.upload_file(&up, "new.txt", Some(a), None).await.unwrap();
    c.upload_file(&up, "new-top.txt", Some(sync_root), None)
        .await
        .unwrap();
    let (counting, n) = counted(&c);
    let r = focused(&counting, &cfg, &first, &[], &["a", ""]).await;
    assert_eq!(r.downloaded, 2, "{r:?}");
    assert!(r.in_sync() && !r.needs_full_pass, "{r:?}");
    assert_eq!(read(&local.join("a/new.txt")), b"from another device");
    assert_eq!(read(&local.join("new-top.txt")), b"from another device");
    // The tree has 8 folders; the pass lists the two, once a round (and
    // the account root once, to find `/Sync`).
    assert_eq!(
        calls(&n, "folder/listing"),
        2 * r.rounds as u64 + 1,
        "{:?}",
        n.lock().unwrap()
    );
    let again = full(&c, &cfg).await;
    assert!(again.in_sync() && again.downloaded == 0, "{again:?}");

    // A new folder in `b`: one level cannot fill it; the full pass does.
    let b = folder(&c, "b").await;
    let d = c
        .folder_create("d", Some(b), &Default::default())
        .await
        .unwrap();
    c.upload_file(&up, "deep.txt", Some(d.id), None)
        .await
        .unwrap();
    let r = focused(&c, &cfg, &again, &[], &["b"]).await;
    assert!(r.needs_full_pass, "{r:?}");
    let r = full(&c, &cfg).await;
    assert!(r.in_sync(), "{r:?}");
    assert_eq!(read(&local.join("b/d/deep.txt")), b"from another device");
}

/// Files moved on the host across a focused pass's edges: one moved into
/// the polled folder from a folder the pass does not look at is not
/// downloaded again, one moved out of it is not trashed locally; both wait
/// for the full pass, which moves the local files (nothing comes down).
/// One trashed on the host goes to the local trash in the focused pass
/// (the host says it is in its trash). The same holds for the deep scope
/// of a watcher's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_moves_across_a_focused_pass_wait_for_the_full_pass() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("a", 3), ("b", 3), ("c", 2)]);
    std::fs::write(local.join("b/from-b.txt"), "moved in").unwrap();
    std::fs::write(local.join("a/from-a.txt"), "moved out").unwrap();
    let c = host.client();
    let first = full(&c, &cfg).await;
    assert!(first.in_sync(), "{first:?}");

    let (a, b) = (folder(&c, "a").await, folder(&c, "b").await);
    c.file_move(file(&c, "b", "from-b.txt").await, Some(a))
        .await
        .unwrap();
    c.file_move(file(&c, "a", "from-a.txt").await, Some(b))
        .await
        .unwrap();
    c.file_delete(file(&c, "a", "f0.txt").await).await.unwrap();
    let r = focused(&c, &cfg, &first, &[], &["a"]).await;
    assert_eq!(r.downloaded, 0, "nothing comes down again: {r:?}");
    assert_eq!(r.deleted_local, 1, "only the trashed file goes: {r:?}");
    assert!(r.needs_full_pass && !r.in_sync(), "{r:?}");
    assert_eq!(read(&local.join("a/from-a.txt")), b"moved out");
    assert_eq!(read(&local.join("b/from-b.txt")), b"moved in");
    assert!(!local.join("a/f0.txt").exists());

    let r = full(&c, &cfg).await;
    assert!(r.in_sync(), "{r:?}");
    assert_eq!((r.moved, r.downloaded, r.deleted_local), (2, 0, 0), "{r:?}");
    assert_eq!(read(&local.join("a/from-b.txt")), b"moved in");
    assert_eq!(read(&local.join("b/from-a.txt")), b"moved out");

    // A watcher's change in `c` (a deep scope) while the host moved a
    // file from `b` into it.
    let cdir = folder(&c, "c").await;
    c.file_move(file(&c, "b", "f2.txt").await, Some(cdir))
        .await
        .unwrap();
    std::fs::write(local.join("c/mine.txt"), "mine").unwrap();
    let r = focused(&c, &cfg, &r, &["c/mine.txt"], &[]).await;
    assert_eq!((r.uploaded, r.downloaded), (1, 0), "{r:?}");
    assert!(r.needs_full_pass, "{r:?}");
    let r = full(&c, &cfg).await;
    assert!(r.in_sync(), "{r:?}");
    assert_eq!((r.moved, r.downloaded), (1, 0), "{r:?}");
    assert_eq!(read(&local.join("c/f2.txt")), b"b2");
}

/// More entries gone from a focused pass's folder than it asks about one
/// by one: it asks about none, touches none, and the full pass sorts them
/// out (here: moves, not deletes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_entries_gone_from_a_focused_folder_are_left_to_the_full_pass() {
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("a", 40), ("b", 1)]);
    let c = host.client();
    let first = full(&c, &cfg).await;
    assert!(first.in_sync(), "{first:?}");
    let b = folder(&c, "b").await;
    let a = folder(&c, "a").await;
    let listing = c.folder_listing(Some(a)).await.unwrap();
    for f in listing.files.iter().filter(|f| f.name != "f0.txt") {
        c.file_move(f.id, Some(b)).await.unwrap();
    }
    let (counting, n) = counted(&c);
    let r = focused(&counting, &cfg, &first, &[], &["a"]).await;
    assert_eq!(r.deleted_local, 0, "{r:?}");
    assert!(r.needs_full_pass, "{r:?}");
    assert_eq!(calls(&n, "file/info"), 0, "no probe per entry");
    assert!(local.join("a/f39.txt").exists());
    let r = full(&c, &cfg).await;
    assert!(r.in_sync(), "{r:?}");
    assert_eq!(
        (r.moved, r.downloaded, r.deleted_local),
        (39, 0, 0),
        "{r:?}"
    );
    assert_eq!(read(&local.join("b/f39.txt")), b"a39");
}
