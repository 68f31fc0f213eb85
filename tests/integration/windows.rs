//! A first sync of a big tree runs in windows (#13, `engine::windows`):
//! no round plans more than a window's entries, the result is what one
//! full pass would have made, and what fails or changes between windows
//! is left to the last pass, which looks at everything.

use crate::sync::{Pair, library_pair};
use crate::util::*;
use dcsync::clock::SystemClock;
use dcsync::engine::{EngineConfig, Quiet, Reporter, SyncReport, SyncRequest, sync};
use dcsync::plan::Op;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The tree: 6 folders, 32 files; with windows of 10 entries the synced
/// folder's level, `b`'s level, `b/x`, `b/y`, then `a` with `c`, then `d`.
const TREE: &[(&str, usize)] = &[
    ("a", 5),
    ("b", 2),
    ("b/x", 6),
    ("b/y", 6),
    ("c", 3),
    ("d", 8),
];
const FILES: usize = 30;
const WINDOW: usize = 10;

/// Remembers the largest plan a round made; runs `after` after each op.
#[derive(Default)]
struct Rounds {
    largest: AtomicUsize,
    #[allow(clippy::type_complexity)]
    after: Mutex<Option<Box<dyn FnMut(&Op) + Send>>>,
}

impl Reporter for Rounds {
    fn planned(&self, _round: usize, ops: &[Op]) {
        self.largest.fetch_max(ops.len(), Ordering::Relaxed);
    }
    fn op_done(&self, op: &Op, result: &Result<(), String>) {
        if result.is_ok()
            && let Some(f) = self.after.lock().unwrap().as_mut()
        {
            f(op)
        }
    }
}

async fn first_sync(
    c: &dyn dcsync::api::host::Host,
    cfg: &EngineConfig,
    window: usize,
    rounds: &Rounds,
) -> SyncReport {
    let req = SyncRequest {
        window_entries: window,
        ..SyncRequest::default()
    };
    sync(c, cfg, req, Arc::new(SystemClock), rounds)
        .await
        .expect("the pass runs")
}

/// How many files the host's `/Sync` holds (a duplicate counts twice).
async fn remote_files(c: &dcsync::api::Client) -> usize {
    let root = crate::unchanged::folder(c, "").await;
    let mut stack = vec![root];
    let mut n = 0;
    while let Some(id) = stack.pop() {
        let l = c.folder_listing(Some(id)).await.unwrap();
        n += l.files.len();
        stack.extend(l.folders.iter().map(|f| f.id));
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_upload_bigger_than_a_window_runs_in_windows() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let (local, cfg) = library_pair(&host, TREE);
    std::fs::write(local.join("top.txt"), "top").unwrap();
    let c = host.client();
    let rounds = Rounds::default();
    let r = first_sync(&c, &cfg, WINDOW, &rounds).await;
    assert!(r.in_sync(), "{r:?}");
    assert_eq!(r.uploaded as usize, FILES + 1, "{r:?}");
    assert_eq!(r.windows, 6, "{r:?}");
    let largest = rounds.largest.load(Ordering::Relaxed);
    assert!(largest <= WINDOW, "a round planned {largest} ops");
    pair.converged().await;
    assert_eq!(remote_files(&c).await, FILES + 1);

    // The same tree in one pass: one plan of everything (what the windows
    // keep a round from).
    let again = Host::start().await;
    let (_, cfg) = library_pair(&again, TREE);
    let whole = Rounds::default();
    let r = first_sync(&again.client(), &cfg, 0, &whole).await;
    assert!(r.in_sync() && r.windows == 0, "{r:?}");
    assert!(
        whole.largest.load(Ordering::Relaxed) > FILES,
        "one plan of all"
    );
}

/// A lost state DB with both sides full, and an empty new folder: the
/// windows record what both sides have (nothing moves) and download into
/// the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_record_what_both_sides_have_and_download_into_an_empty_folder() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let (local, cfg) = library_pair(&host, TREE);
    let c = host.client();
    let r = first_sync(&c, &cfg, 0, &Rounds::default()).await;
    assert!(r.in_sync(), "{r:?}");

    std::fs::remove_file(&cfg.db_path).unwrap();
    let rounds = Rounds::default();
    let r = first_sync(&c, &cfg, WINDOW, &rounds).await;
    assert!(r.in_sync() && r.windows > 1, "{r:?}");
    assert_eq!(
        (r.uploaded, r.downloaded, r.conflicts),
        (0, 0, 0),
        "both sides had it all: {r:?}"
    );
    assert!(rounds.largest.load(Ordering::Relaxed) <= WINDOW);
    pair.converged().await;

    let fresh = host.path("fresh");
    std::fs::create_dir_all(fresh.join(".dcsync")).unwrap();
    let cfg2 = EngineConfig {
        local_root: fresh.clone(),
        db_path: host.path("state/fresh.db"),
        ..cfg.clone()
    };
    let rounds = Rounds::default();
    let r = first_sync(&c, &cfg2, WINDOW, &rounds).await;
    assert!(r.in_sync() && r.windows > 1, "{r:?}");
    assert_eq!(r.downloaded as usize, FILES, "{r:?}");
    assert!(rounds.largest.load(Ordering::Relaxed) <= WINDOW);
    for (d, n) in TREE {
        for i in 0..*n {
            let rel = format!("{d}/f{i}.txt");
            assert_eq!(read(&fresh.join(&rel)), read(&local.join(&rel)), "{rel}");
        }
    }
}

/// An upload that fails ends the windows; the last pass (a full one)
/// sends it and everything after it, each file once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_fails_leaves_the_rest_to_the_last_pass() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let (_, cfg) = library_pair(&host, TREE);
    let c = host.client();
    let uploads = Arc::new(AtomicUsize::new(0));
    let n = uploads.clone();
    let failing = Hooked {
        inner: c.clone(),
        hook: move |call: &'static str, when: When| {
            // The 9th upload (in `b/y`'s window) fails once.
            (call == "file/upload" && when == When::Before && n.fetch_add(1, Ordering::SeqCst) == 8)
                .then(|| unavailable(call))
        },
    };
    let rounds = Rounds::default();
    let r = first_sync(&failing, &cfg, WINDOW, &rounds).await;
    assert!(r.in_sync(), "{r:?}");
    assert!(r.windows < 6, "the windows ended early: {r:?}");
    assert!(!r.unchanged, "the last pass had work: {r:?}");
    pair.converged().await;
    assert_eq!(remote_files(&c).await, FILES, "each file once");
}

/// Files the user moves, edits and deletes between windows — across a
/// window's edge both ways — end as the user left them on both sides:
/// nothing lost, nothing duplicated, nothing trashed locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_user_changes_between_windows_ends_in_sync() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let (local, cfg) = library_pair(&host, TREE);
    let c = host.client();
    let rounds = Rounds::default();
    let l = local.clone();
    let mut done = false;
    *rounds.after.lock().unwrap() = Some(Box::new(move |op: &Op| {
        // `b/x`'s window is over when `b/y`'s first upload is done; `a`
        // and `d` have not been looked at yet.
        if done || !op.path().as_str().starts_with("b/y/") {
            return;
        }
        done = true;
        let mv = |from: &str, to: &str| std::fs::rename(l.join(from), l.join(to)).unwrap();
        mv("b/x/f0.txt", "a/moved-in.txt");
        mv("a/f0.txt", "b/x/moved-back.txt");
        mv("d/f0.txt", "b/x/from-d.txt");
        std::fs::write(l.join("b/x/f1.txt"), "edited after its window").unwrap();
        std::fs::remove_file(l.join("b/x/f2.txt")).unwrap();
        std::fs::write(l.join("b/x/new.txt"), "new after its window").unwrap();
    }));
    let r = first_sync(&c, &cfg, WINDOW, &rounds).await;
    assert!(r.in_sync(), "{r:?}");
    assert!(r.windows > 1, "{r:?}");
    let tree = pair.converged().await;
    assert_eq!(
        tree.get("b/x/f1.txt").cloned().flatten().as_deref(),
        Some(&b"edited after its window"[..])
    );
    assert_eq!(read(&local.join("a/moved-in.txt")), b"b/x0");
    assert_eq!(read(&local.join("b/x/moved-back.txt")), b"a0");
    assert_eq!(read(&local.join("b/x/from-d.txt")), b"d0");
    let files = tree.values().filter(|v| v.is_some()).count();
    assert_eq!(files, FILES, "30 - 1 deleted + 1 new");
    assert_eq!(remote_files(&c).await, FILES, "nothing twice on the host");
    assert!(
        !local.join(".dcsync/trash").exists() || {
            let mut t = crate::sync::Snapshot::new();
            let trash = local.join(".dcsync/trash");
            crate::sync::walk(&trash, &trash, &mut t);
            t.values().all(|v| v.is_none())
        }
    );
}

/// A first sync killed in the middle of its windows resumes in windows
/// (its quick check off here: with few paths left it would narrow the
/// pass instead), sends each file once, and once it ended in sync the next
/// pass is an ordinary one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_first_sync_resumes_in_windows() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let (_, cfg) = library_pair(&host, TREE);
    let c = host.client();
    let killed = Arc::new(tokio::sync::Notify::new());
    let rounds = Rounds::default();
    let (k, mut n) = (killed.clone(), 0);
    *rounds.after.lock().unwrap() = Some(Box::new(move |op: &Op| {
        // Killed in `b/x`'s window, after some of its uploads.
        if op.path().as_str().starts_with("b/x/") {
            n += 1;
            if n == 3 {
                k.notify_one();
            }
        }
    }));
    let req = SyncRequest {
        window_entries: WINDOW,
        ..SyncRequest::default()
    };
    tokio::select! {
        biased;
        _ = killed.notified() => {}
        r = sync(&c, &cfg, req, Arc::new(SystemClock), &rounds) => panic!("not killed: {r:?}"),
    }
    let no_check = |window_entries| SyncRequest {
        window_entries,
        quick_check: false,
        ..SyncRequest::default()
    };
    let again = Rounds::default();
    let r = sync(&c, &cfg, no_check(WINDOW), Arc::new(SystemClock), &again)
        .await
        .unwrap();
    assert!(r.in_sync(), "{r:?}");
    assert!(r.windows > 1, "resumed in windows: {r:?}");
    assert!(again.largest.load(Ordering::Relaxed) <= WINDOW);
    pair.converged().await;
    assert_eq!(remote_files(&c).await, FILES, "each file once");
    let r = sync(&c, &cfg, no_check(WINDOW), Arc::new(SystemClock), &Quiet)
        .await
        .unwrap();
    assert!(r.in_sync() && r.windows == 0, "the windows are over: {r:?}");
}
