//! `dcsync sync` end to end: the real binary against the emulator over
//! loopback. Each scenario sets up both sides, syncs, changes things,
//! syncs again and states the outcome; `converge` checks that both trees
//! hold the same paths and bytes.

use crate::util::*;
use dcsync::api::{Client, FileId, FileStatus, FolderId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Path → `None` for a folder, `Some(bytes)` for a file.
pub(crate) type Snapshot = BTreeMap<String, Option<Vec<u8>>>;

/// A sync pair: a local folder and `/Sync` on the host.
pub(crate) struct Pair {
    /// A client of the same host (the port survives emulator restarts).
    pub(crate) client: Client,
    /// The test's scratch directory.
    pub(crate) scratch: PathBuf,
    pub(crate) local: PathBuf,
    pub(crate) cfg: PathBuf,
}

impl Pair {
    pub(crate) fn new(host: &Host) -> Pair {
        Pair::with(host, "")
    }

    /// `extra`: more config lines (mode, limits, ...).
    pub(crate) fn with(host: &Host, extra: &str) -> Pair {
        Pair::with_remote(host, "/Sync", extra)
    }

    pub(crate) fn with_remote(host: &Host, remote: &str, extra: &str) -> Pair {
        let local = host.path("local");
        std::fs::create_dir_all(&local).unwrap();
        let cfg = host.sync_config("sync.toml", &local, remote, extra);
        Pair {
            client: host.client(),
            scratch: host.path(""),
            local,
            cfg,
        }
    }

    pub(crate) async fn sync(&self, args: &[&str]) -> Run {
        let mut a = vec!["sync"];
        a.extend_from_slice(args);
        run_dcsync(&self.cfg, &a, &[]).await
    }

    pub(crate) async fn dcsync(&self, args: &[&str]) -> Run {
        run_dcsync(&self.cfg, args, &[]).await
    }

    pub(crate) fn lp(&self, rel: &str) -> PathBuf {
        self.local.join(rel)
    }

    pub(crate) fn write(&self, rel: &str, content: &[u8]) {
        let p = self.lp(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub(crate) fn local_tree(&self) -> Snapshot {
        let mut out = Snapshot::new();
        walk(&self.local, &self.local, &mut out);
        out
    }

    /// The remote `/Sync` tree with contents.
    pub(crate) async fn remote_tree(&self) -> Snapshot {
        let c = &self.client;
        let mut out = Snapshot::new();
        let Some(root) = find_folder(c, None, "Sync").await else {
            return out;
        };
        let mut stack = vec![(root, String::new())];
        while let Some((id, prefix)) = stack.pop() {
            let l = c.folder_listing(Some(id)).await.unwrap();
            for d in l.folders {
                let p = format!("{prefix}{}", d.name);
                out.insert(p.clone(), None);
                stack.push((d.id, format!("{p}/")));
            }
            for f in l.files {
                let tmp = self.scratch.join(format!("dl-{}", f.id));
                c.download_file(f.id, &tmp, &Default::default(), None)
                    .await
                    .unwrap();
                out.insert(format!("{prefix}{}", f.name), Some(read(&tmp)));
                std::fs::remove_file(tmp).unwrap();
            }
        }
        out
    }

    /// Asserts both sides are identical and returns the tree.
    pub(crate) async fn converged(&self) -> Snapshot {
        let l = self.local_tree();
        let r = self.remote_tree().await;
        assert_eq!(l, r, "local and remote differ");
        l
    }

    /// The remote id of a file at `rel` below /Sync.
    pub(crate) async fn remote_id(&self, rel: &str) -> Option<FileId> {
        let c = &self.client;
        let mut parent = find_folder(c, None, "Sync").await?;
        let parts: Vec<&str> = rel.split('/').collect();
        let (name, dirs) = parts.split_last()?;
        for part in dirs {
            parent = find_folder(c, Some(parent), part).await?;
        }
        let l = c.folder_listing(Some(parent)).await.ok()?;
        l.files.into_iter().find(|f| f.name == *name).map(|f| f.id)
    }

    /// Runs the CLI's remote commands on the pair's host.
    pub(crate) async fn remote(&self, args: &[&str]) -> Run {
        let mut a = vec!["remote"];
        a.extend_from_slice(args);
        self.dcsync(&a).await
    }

    pub(crate) fn trash_has(&self, content: &[u8]) -> bool {
        let mut t = Snapshot::new();
        let trash = self.local.join(".dcsync/trash");
        if trash.exists() {
            walk(&trash, &trash, &mut t);
        }
        t.values().any(|v| v.as_deref() == Some(content))
    }
}

pub(crate) async fn find_folder(
    c: &Client,
    parent: Option<FolderId>,
    name: &str,
) -> Option<FolderId> {
    let l = c.folder_listing(parent).await.ok()?;
    l.folders.into_iter().find(|f| f.name == name).map(|f| f.id)
}

pub(crate) fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == ".dcsync" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            out.insert(rel, None);
            walk(root, &e.path(), out);
        } else {
            out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
        }
    }
}

fn ino(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_folders_with_overlapping_content_become_identical() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    // Local side.
    pair.write("docs/report.txt", b"report v1");
    pair.write("docs/same.txt", b"identical on both sides");
    pair.write("docs/clash.txt", b"local version");
    pair.write("photos/a.jpg", &bytes(50_000, 1));
    // Remote side, partly overlapping.
    let c = host.client();
    host.dcsync(&["remote", "mkdir", "-p", "/Sync/docs"])
        .await
        .ok();
    let same = host.write("r/same.txt", b"identical on both sides");
    let clash = host.write("r/clash.txt", b"remote version");
    let only = host.write("r/remote-only.txt", b"from the host");
    for f in [&same, &clash, &only] {
        host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync/docs"])
            .await
            .ok();
    }
    drop(c);

    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("in sync"), "{r:?}");
    let tree = pair.converged().await;
    assert_eq!(
        tree["docs/clash.txt"].as_deref(),
        Some(&b"remote version"[..])
    );
    let copies: Vec<_> = tree
        .iter()
        .filter(|(k, _)| k.starts_with("docs/clash (conflicted copy "))
        .collect();
    assert_eq!(copies.len(), 1, "one conflicted copy: {tree:#?}");
    assert_eq!(copies[0].1.as_deref(), Some(&b"local version"[..]));
    assert_eq!(
        tree["docs/remote-only.txt"].as_deref(),
        Some(&b"from the host"[..])
    );
    assert!(tree.contains_key("photos/a.jpg"));
    // The conflict is visible in status.
    let st = pair.dcsync(&["status"]).await;
    assert!(st.ok().stdout.contains("conflicts: 1"), "{st:?}");
    // A second pass has nothing to do.
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_and_folder_moves_propagate_without_retransfer() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("a/one.bin", &bytes(20_000, 2));
    pair.write("a/two.bin", &bytes(20_000, 3));
    pair.write("b/three.bin", &bytes(20_000, 4));
    pair.sync(&[]).await.ok();
    let id_one = pair.remote_id("a/one.bin").await.unwrap();
    let id_three = pair.remote_id("b/three.bin").await.unwrap();

    // Local: rename a file and move a whole folder into another.
    std::fs::rename(pair.lp("a/one.bin"), pair.lp("a/uno.bin")).unwrap();
    std::fs::create_dir(pair.lp("c")).unwrap();
    std::fs::rename(pair.lp("b"), pair.lp("c/b")).unwrap();
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("0 uploaded, 0 downloaded"), "{r:?}");
    pair.converged().await;
    assert_eq!(
        pair.remote_id("a/uno.bin").await,
        Some(id_one),
        "same file, moved"
    );
    assert_eq!(pair.remote_id("c/b/three.bin").await, Some(id_three));

    // Remote: rename a folder and move a file; local inodes survive.
    let ino_two = ino(&pair.lp("a/two.bin"));
    pair.remote(&["rename", "/Sync/a", "alpha"]).await.ok();
    pair.remote(&["mv", "/Sync/c/b/three.bin", "/Sync/alpha/three.bin"])
        .await
        .ok();
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("0 uploaded, 0 downloaded"), "{r:?}");
    pair.converged().await;
    assert_eq!(
        ino(&pair.lp("alpha/two.bin")),
        ino_two,
        "renamed, not re-downloaded"
    );
    assert!(pair.lp("alpha/three.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletes_on_both_sides() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("keep.txt", b"keep");
    pair.write("edit-local.txt", b"v1");
    pair.write("edit-remote.txt", b"v1");
    pair.write("del-local.txt", b"delete me locally");
    pair.write("del-remote.txt", b"delete me remotely");
    pair.write("modify-vs-delete.txt", b"v1");
    pair.sync(&[]).await.ok();
    let del_local_id = pair.remote_id("del-local.txt").await.unwrap();

    pair.write("edit-local.txt", b"v2 local");
    std::fs::remove_file(pair.lp("del-local.txt")).unwrap();
    let v2 = host.write("up/edit-remote.txt", b"v2 remote");
    pair.remote(&["put", "--overwrite", v2.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    pair.remote(&["rm", "/Sync/del-remote.txt"]).await.ok();
    // Deleted remotely, modified locally: modification wins.
    pair.remote(&["rm", "/Sync/modify-vs-delete.txt"])
        .await
        .ok();
    pair.write("modify-vs-delete.txt", b"v2 still wanted");

    pair.sync(&[]).await.ok();
    let tree = pair.converged().await;
    assert_eq!(tree["edit-local.txt"].as_deref(), Some(&b"v2 local"[..]));
    assert_eq!(tree["edit-remote.txt"].as_deref(), Some(&b"v2 remote"[..]));
    assert_eq!(
        tree["modify-vs-delete.txt"].as_deref(),
        Some(&b"v2 still wanted"[..])
    );
    assert!(!tree.contains_key("del-local.txt") && !tree.contains_key("del-remote.txt"));
    // Deletes went to trashes, not into the void.
    assert_eq!(
        host.client().file_info(del_local_id).await.unwrap().status,
        FileStatus::Trash
    );
    assert!(pair.trash_has(b"delete me remotely"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_deleted_on_one_side_keeps_files_added_on_the_other() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("proj/old.txt", b"old");
    pair.sync(&[]).await.ok();
    std::fs::remove_dir_all(pair.lp("proj")).unwrap();
    let new = host.write("n/new.txt", b"added remotely meanwhile");
    pair.remote(&["put", new.to_str().unwrap(), "/Sync/proj"])
        .await
        .ok();
    pair.sync(&[]).await.ok();
    let tree = pair.converged().await;
    assert_eq!(
        tree["proj/new.txt"].as_deref(),
        Some(&b"added remotely meanwhile"[..])
    );
    assert!(!tree.contains_key("proj/old.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_content_is_copied_on_the_host_not_uploaded() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("orig.bin", &bytes(100_000, 5));
    pair.sync(&[]).await.ok();
    std::fs::copy(pair.lp("orig.bin"), pair.lp("copy.bin")).unwrap();
    let r = pair.sync(&[]).await;
    assert!(
        r.ok().stdout.contains("0 uploaded, 0 downloaded, 1 copied"),
        "{r:?}"
    );
    pair.converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_folder_moves_terminate_without_loss() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("A/a.txt", b"in A");
    pair.write("B/b.txt", b"in B");
    pair.sync(&[]).await.ok();
    std::fs::rename(pair.lp("A"), pair.lp("B/A")).unwrap();
    pair.remote(&["mv", "/Sync/B", "/Sync/A/B"]).await.ok();
    pair.sync(&[]).await.ok();
    let tree = pair.converged().await;
    let contents: Vec<_> = tree.values().flatten().cloned().collect();
    assert!(
        contents.contains(&b"in A".to_vec()) && contents.contains(&b"in B".to_vec()),
        "{tree:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_without_its_marker_is_refused() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("f.txt", b"data");
    pair.sync(&[]).await.ok();
    // The volume "unmounts": the folder is there but empty.
    std::fs::remove_dir_all(&pair.local).unwrap();
    std::fs::create_dir(&pair.local).unwrap();
    let r = pair.sync(&[]).await;
    r.fails_with(3, "is the volume mounted");
    assert!(
        pair.remote_tree().await.contains_key("f.txt"),
        "nothing deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_deletes_stop_until_confirmed() {
    let host = Host::start().await;
    let pair = Pair::with(&host, "max_delete_count = 5");
    for i in 0..8 {
        pair.write(&format!("f{i}.txt"), format!("file {i}").as_bytes());
    }
    pair.sync(&[]).await.ok();
    for i in 0..8 {
        std::fs::remove_file(pair.lp(&format!("f{i}.txt"))).unwrap();
    }
    let r = pair.sync(&[]).await;
    r.fails_with(3, "--allow-mass-delete");
    assert_eq!(pair.remote_tree().await.len(), 8, "nothing deleted yet");
    pair.sync(&["--allow-mass-delete"]).await.ok();
    assert!(pair.converged().await.is_empty());
}

/// `sync --dry-run` prints the pass plan (#12): the ops, what is held
/// back and why, and the deletes the guard counts; it changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_pass_plan_and_changes_nothing() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("x.txt", b"x");
    let r = pair.sync(&["--dry-run"]).await;
    assert!(r.ok().stdout.contains("upload        x.txt"), "{r:?}");
    assert!(pair.remote_tree().await.is_empty());

    pair.write("gone.txt", b"g");
    pair.sync(&[]).await.ok();
    // Written before the delete, so it cannot reuse gone.txt's inode (a
    // reused inode reads as a rename).
    pair.write("new.txt", b"n");
    pair.write("empty.txt", b"");
    std::fs::remove_file(pair.lp("gone.txt")).unwrap();
    let r = pair.sync(&["--dry-run"]).await;
    let out = &r.ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "trash remote  gone.txt",
        "upload        new.txt",
        "deletes (with the last hour's): 0 files here, 1 on the host, of 2 tracked",
        "dry run: 2 operations planned, nothing changed",
    ] {
        assert!(lines.contains(&want), "{want:?} in {out}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("skipped: empty.txt (") && l.contains("empty")),
        "{out}"
    );
    let remote = pair.remote_tree().await;
    let names: Vec<&str> = remote.keys().map(String::as_str).collect();
    assert_eq!(names, ["gone.txt", "x.txt"], "nothing changed on the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_rules_keep_temp_files_local() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write(".dcsyncignore", b"build/\n*.log\n");
    pair.write("src/main.c", b"int main;");
    pair.write("src/.main.c.swp", b"vim swap");
    pair.write("build/out.o", b"object");
    pair.write("run.log", b"log");
    pair.write("~$report.docx", b"office lock");
    pair.sync(&[]).await.ok();
    let remote = pair.remote_tree().await;
    let names: Vec<&str> = remote.keys().map(String::as_str).collect();
    assert_eq!(names, [".dcsyncignore", "src", "src/main.c"], "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_modes() {
    // Backup: a local delete is not carried over; remote-only files stay.
    let host = Host::start().await;
    let pair = Pair::with(&host, "mode = \"upload-only\"");
    pair.write("a.txt", b"a");
    pair.write("b.txt", b"b");
    pair.sync(&[]).await.ok();
    std::fs::remove_file(pair.lp("a.txt")).unwrap();
    let extra = host.write("x/remote.txt", b"remote only");
    pair.remote(&["put", extra.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    pair.sync(&[]).await.ok();
    let remote = pair.remote_tree().await;
    assert!(
        remote.contains_key("a.txt") && remote.contains_key("remote.txt"),
        "{remote:?}"
    );
    assert!(
        !pair.lp("remote.txt").exists(),
        "backup mode never writes locally"
    );

    // Mirror: remote is the source; local edits are kept aside, not uploaded.
    let host = Host::start().await;
    let pair = Pair::with(&host, "mode = \"download-only\"");
    let f = host.write("x/m.txt", b"master");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    pair.write("local-only.txt", b"mine");
    pair.sync(&[]).await.ok();
    assert_eq!(read(&pair.lp("m.txt")), b"master");
    assert!(!pair.remote_tree().await.contains_key("local-only.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_faults_and_rate_limits() {
    let mut host = Host::start().await;
    let pair_cfg_extra = "transfers = 4";
    {
        let pair = Pair::with(&host, pair_cfg_extra);
        for i in 0..30 {
            pair.write(
                &format!("d{}/f{i}.bin", i % 4),
                &bytes(3_000 + i * 100, i as u8),
            );
        }
        pair.sync(&[]).await.ok();
    }
    host.restart_with(|c| {
        c.fault_rate = 0.15;
        c.seed = 11;
        c.rate_limit_rps = Some(200);
    })
    .await;
    let pair = Pair::with(&host, pair_cfg_extra);
    for i in 0..30 {
        pair.write(
            &format!("d{}/f{i}.bin", i % 4),
            &bytes(2_000 + i * 50, 100 + i as u8),
        );
    }
    for i in 0..10 {
        pair.write(&format!("new/n{i}.txt"), format!("new {i}").as_bytes());
    }
    std::fs::rename(pair.lp("d0"), pair.lp("d0-renamed")).unwrap();
    // Each pass may stop with exit 1 on a fault; running again is safe.
    let mut last = None;
    for _ in 0..12 {
        let r = pair.sync(&[]).await;
        assert!(r.code == 0 || r.code == 1, "{r:?}");
        if r.code == 0 {
            last = Some(r);
            break;
        }
    }
    assert!(last.is_some(), "did not converge through faults");
    host.restart_with(|c| {
        c.fault_rate = 0.0;
        c.rate_limit_rps = None;
    })
    .await;
    pair.converged().await;
    // No duplicates were left on the host by lost answers.
    let c = host.client();
    let sync = find_folder(&c, None, "Sync").await.unwrap();
    let l = c.folder_listing(Some(sync)).await.unwrap();
    let mut names: Vec<_> = l.folders.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), l.folders.len(), "duplicate folders: {l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_files_are_skipped_reported_and_picked_up_later() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("empty.txt", b"");
    pair.write("full.txt", b"content");
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("1 skipped"), "{r:?}");
    let st = pair.dcsync(&["status"]).await;
    assert!(
        st.ok()
            .stdout
            .contains("empty.txt: the host cannot store empty files"),
        "{st:?}"
    );
    assert!(!pair.remote_tree().await.contains_key("empty.txt"));
    // A second pass is quiet about it (no error, no retry storm).
    pair.sync(&[]).await.ok();
    // With content it syncs.
    pair.write("empty.txt", b"now with content");
    pair.sync(&[]).await.ok();
    pair.converged().await;
    // A synced file emptied locally is held back, not deleted remotely.
    pair.write("full.txt", b"");
    pair.sync(&[]).await.ok();
    assert_eq!(
        pair.remote_tree().await["full.txt"].as_deref(),
        Some(&b"content"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_host_would_change_are_restored_or_skipped() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("it's \"quoted\".txt", b"quotes are restored after upload");
    pair.write("trailing space ", b"the host would trim it");
    pair.write("a<b>c.txt", b"the host would strip the tag");
    pair.write("dir <x>/inside.txt", b"under a held-back folder");
    pair.write("plain.txt", b"plain");
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("3 skipped"), "{r:?}");
    let remote = pair.remote_tree().await;
    let names: Vec<&str> = remote.keys().map(String::as_str).collect();
    assert_eq!(names, ["it's \"quoted\".txt", "plain.txt"], "{names:?}");
    let st = pair.dcsync(&["status"]).await;
    let out = &st.ok().stdout;
    assert!(
        out.contains("trailing space : the host removes leading and trailing spaces"),
        "{out}"
    );
    assert!(
        out.contains("dir <x>: the host removes text like <...>"),
        "{out}"
    );
    // Nothing ping-pongs: the next pass does nothing.
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_limits_are_respected() {
    // Files over the package's upload limit are skipped and reported.
    let host = Host::start_with(|c| c.max_upload_size = 1000).await;
    let pair = Pair::new(&host);
    pair.write("small.txt", &bytes(500, 1));
    pair.write("big.bin", &bytes(5000, 2));
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("1 skipped"), "{r:?}");
    let remote = pair.remote_tree().await;
    assert!(remote.contains_key("small.txt") && !remote.contains_key("big.bin"));
    let st = pair.dcsync(&["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&st.ok().stdout).unwrap();
    let reason = v["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("upload limit of 1000 bytes"), "{v}");

    // No uploads allowed: download-only, local files stay put.
    let host = Host::start_with(|c| c.can_upload = false).await;
    let pair = Pair::new(&host);
    host.client()
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    pair.write("local.txt", b"stays local");
    let r = pair.sync(&[]).await;
    assert!(r.ok().stderr.contains("does not allow uploads"), "{r:?}");
    assert!(pair.remote_tree().await.is_empty());
    assert!(pair.lp("local.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trashed_folders_reappearing_in_the_account_root_are_not_synced_back() {
    let host = Host::start().await;
    let pair = Pair::with_remote(&host, "/", "");
    pair.write("proj/readme.txt", b"project");
    pair.write("a/b/deep.txt", b"deep");
    pair.write("keep.txt", b"keep");
    pair.sync(&[]).await.ok();

    // dcsync trashes a folder: the host lists it in the root again.
    std::fs::remove_dir_all(pair.lp("proj")).unwrap();
    pair.sync(&[]).await.ok();
    let root = host.client().folder_listing(None).await.unwrap();
    assert!(
        root.folders.iter().any(|f| f.name == "proj"),
        "the host quirk is there"
    );
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("0 uploaded, 0 downloaded"), "{r:?}");
    assert!(!pair.lp("proj").exists(), "not resurrected locally");

    // The user trashes a nested folder on the site: a delete, not a move
    // into the root.
    pair.remote(&["rm", "-r", "/a/b"]).await.ok();
    pair.sync(&[]).await.ok();
    assert!(!pair.lp("a/b").exists(), "deleted locally (to the trash)");
    assert!(!pair.lp("b").exists(), "not moved into the root");
    assert!(pair.trash_has(b"deep"));
    assert!(pair.lp("keep.txt").exists());
}

/// A corpus of hostile names and cases on both sides (issue #4): synced
/// twice, the second pass does nothing; every path is synced or listed as
/// skipped with a reason; nothing outside the root is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_sync_or_are_skipped_and_nothing_ping_pongs() {
    use std::os::unix::ffi::OsStrExt;
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let outside = host.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("canary.txt"), b"untouched").unwrap();

    // Local names that sync as they are.
    let faithful = [
        "it's.txt",
        "say \"hi\".txt",
        "tab\tinside.txt",
        "café.txt",
        "😀 emoji.txt",
        "שלום.txt",
        "日本語のファイル.txt",
        ".hidden",
        "..dots",
        "a..b",
        "trailing.dot.",
        "-dash",
        "#hash",
        "%percent%20",
        "&amp;",
        "+plus=eq@at",
        "[brackets]{braces}",
        "semi;colon,comma",
        "CON",
        "aux.txt",
        "nul.c",
        "a > b.txt",
        "ümlaut/ünder.txt",
        "spaces in  the middle.txt",
        "UPPER.TXT",
        "upper.txt",
        &"n".repeat(250),
    ];
    for (i, name) in faithful.iter().enumerate() {
        pair.write(name, format!("content {i}").as_bytes());
    }
    let mut deep = String::new();
    for i in 0..40 {
        deep.push_str(&format!("level{i}/"));
    }
    pair.write(&format!("{deep}bottom.txt"), b"deep down");
    // Local cases that are skipped with a reason.
    let skipped = [
        "trailing space ",
        " leading space",
        "a<b>c.txt",
        "line\nbreak.txt",
        "empty.txt",
        "link",
    ];
    pair.write("trailing space ", b"x");
    pair.write(" leading space", b"x");
    pair.write("a<b>c.txt", b"x");
    pair.write("line\nbreak.txt", b"x");
    pair.write("empty.txt", b"");
    std::os::unix::fs::symlink("/etc/hostname", pair.lp("link")).unwrap();
    let bad_utf8 = std::ffi::OsStr::from_bytes(b"bad-\xff-name.txt");
    std::fs::write(pair.local.join(bad_utf8), b"x").unwrap();
    // Ignored by default: never uploaded, not reported.
    for name in ["x.swp", "~$doc.docx", ".DS_Store", "Thumbs.db", "dl.part"] {
        pair.write(name, b"temp");
    }
    // Remote cases: duplicate names (the host allows them via copy/edit)
    // and names that cannot exist locally.
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let rdir = c
        .folder_create("from-host", Some(sync.id), &Default::default())
        .await
        .unwrap();
    let f = host.write("h/dup.txt", b"one of two");
    let up = c
        .upload_file(&f, "dup.txt", Some(rdir.id), None)
        .await
        .unwrap();
    c.file_copy(up.id, Some(rdir.id)).await.unwrap();
    let g = host.write("h/g.txt", b"slash");
    let s1 = c
        .upload_file(&g, "g.txt", Some(rdir.id), None)
        .await
        .unwrap();
    c.file_rename(s1.id, "a/b.txt").await.unwrap();
    let s2 = c
        .upload_file(&g, "h.txt", Some(rdir.id), None)
        .await
        .unwrap();
    c.file_rename(s2.id, "..").await.unwrap();
    let ok = host.write("h/ok.txt", b"fine");
    c.upload_file(&ok, "ok.txt", Some(rdir.id), None)
        .await
        .unwrap();

    let r = pair.sync(&[]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "the second pass does nothing: {r:?}"
    );

    let remote = pair.remote_tree().await;
    for name in faithful {
        assert!(remote.contains_key(name), "{name:?} synced as it is");
    }
    assert!(remote.contains_key(&format!("{deep}bottom.txt")));
    assert!(pair.lp("from-host/ok.txt").exists());
    let st = pair.dcsync(&["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&st.ok().stdout).unwrap();
    let listed: Vec<(String, String)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for name in skipped {
        assert!(
            listed.iter().any(|(p, why)| p == name && !why.is_empty()),
            "{name:?} listed as skipped with a reason: {listed:#?}"
        );
    }
    assert!(
        listed.iter().any(|(p, _)| p.starts_with("bad-")),
        "{listed:#?}"
    );
    // Duplicate names on the host: both files arrive, under distinct names.
    assert_eq!(read(&pair.lp("from-host/dup.txt")), b"one of two");
    assert_eq!(
        read(&pair.lp("from-host/dup (duplicate 2).txt")),
        b"one of two"
    );
    assert!(
        listed.iter().any(|(p, why)| {
            p.ends_with("dup (duplicate 2).txt") && why.contains("synced locally as")
        }),
        "{listed:#?}"
    );
    assert!(
        listed.iter().any(|(p, _)| p.contains("a/b.txt")),
        "{listed:#?}"
    );
    for name in ["x.swp", "~$doc.docx", ".DS_Store", "Thumbs.db", "dl.part"] {
        assert!(!remote.contains_key(name), "{name} ignored");
    }
    // Nothing outside the root was touched.
    assert_eq!(read(&outside.join("canary.txt")), b"untouched");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert!(!host.path("b.txt").exists() && !host.path("..").join("b.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_remote_names_sync_under_distinct_names_both_ways() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let f = host.write("h/report.txt", b"first");
    let a = c
        .upload_file(&f, "report.txt", Some(sync.id), None)
        .await
        .unwrap();
    let g = host.write("h/other.txt", b"second");
    let b = c
        .upload_file(&g, "other.txt", Some(sync.id), None)
        .await
        .unwrap();
    c.file_rename(b.id, "report.txt").await.unwrap(); // now two of one name
    pair.sync(&[]).await.ok();
    assert_eq!(read(&pair.lp("report.txt")), b"first");
    assert_eq!(read(&pair.lp("report (duplicate 2).txt")), b"second");
    let st = pair.dcsync(&["status"]).await;
    assert!(st.ok().stdout.contains("synced locally as"), "{st:?}");

    // Editing the renamed copy locally gives it that name on the host too.
    pair.write("report (duplicate 2).txt", b"second, edited");
    pair.sync(&[]).await.ok();
    let l = c.folder_listing(Some(sync.id)).await.unwrap();
    let mut names: Vec<_> = l.files.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["report (duplicate 2).txt", "report.txt"]);
    assert_eq!(
        pair.remote_id("report.txt").await,
        Some(a.id),
        "the first is untouched"
    );
    pair.converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfd_locally_and_nfc_remotely_are_the_same_file() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    // The host has NFC names (a folder and a file in it)...
    let dir = c
        .folder_create("Café", Some(sync.id), &Default::default())
        .await
        .unwrap();
    let f = host.write("h/x", b"same bytes");
    c.upload_file(&f, "Résumé.txt", Some(dir.id), None)
        .await
        .unwrap();
    c.upload_file(&f, "new.txt", Some(dir.id), None)
        .await
        .unwrap();
    // ...and the local disk the same names in NFD, as macOS writes them.
    let nfd_dir = "Cafe\u{301}";
    let nfd_file = "Re\u{301}sume\u{301}.txt";
    pair.write(&format!("{nfd_dir}/{nfd_file}"), b"same bytes");
    pair.sync(&[]).await.ok();
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "no ping-pong: {r:?}"
    );
    let names: Vec<String> = std::fs::read_dir(&pair.local)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".dcsync")
        .collect();
    assert_eq!(names, [nfd_dir], "one folder, no NFC twin");
    let inside: Vec<String> = std::fs::read_dir(pair.lp(nfd_dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(inside, [nfd_file.to_string(), "new.txt".to_string()]);
    let remote = c.folder_listing(Some(dir.id)).await.unwrap();
    assert_eq!(remote.files.len(), 2, "no duplicate uploaded: {remote:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_insensitive_disks_get_distinct_names_for_case_twins() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let f = host.write("h/1", b"upper");
    let g = host.write("h/2", b"lower");
    let n = host.write("h/3", b"notes");
    c.upload_file(&f, "Report.txt", Some(sync.id), None)
        .await
        .unwrap();
    c.upload_file(&g, "report.txt", Some(sync.id), None)
        .await
        .unwrap();
    c.upload_file(&n, "NOTES.txt", Some(sync.id), None)
        .await
        .unwrap();
    pair.write("notes.txt", b"notes");
    let run = || async {
        let r = run_dcsync(
            &pair.cfg,
            &["sync"],
            &[("DCSYNC_ASSUME_CASE_INSENSITIVE", "1")],
        )
        .await;
        r.ok();
        r.stdout
    };
    run().await;
    let second = run().await;
    assert!(
        second.contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "{second}"
    );
    assert_eq!(read(&pair.lp("Report.txt")), b"upper");
    assert_eq!(read(&pair.lp("report (case conflict).txt")), b"lower");
    assert!(
        !pair.lp("NOTES.txt").exists(),
        "same file as notes.txt on such a disk"
    );
    let remote = c.folder_listing(Some(sync.id)).await.unwrap();
    assert_eq!(remote.files.len(), 3, "nothing uploaded twice: {remote:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_account_stops_uploads_with_one_clear_message() {
    let host = Host::start_with(|c| c.max_storage_bytes = 14_000).await;
    // 5,000 bytes already in the account, outside the synced folder.
    let c = host.client();
    let other = host.write("h/other.bin", &bytes(5_000, 9));
    c.upload_file(&other, "other.bin", None, None)
        .await
        .unwrap();
    let pair = Pair::with(&host, "transfers = 1");
    for i in 0..6 {
        pair.write(&format!("f{i}.bin"), &bytes(4_000, i));
    }
    let r = pair.sync(&[]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr
            .matches("would exceed the account's storage limit")
            .count(),
        1,
        "said once, before the host had to refuse: {r:?}"
    );
    assert!(!r.stderr.contains("the host refused"), "{r:?}");
    assert!(r.stdout.contains("2 uploaded"), "{r:?}");
    // Nothing was lost or half-done: the rest is still local for a later pass.
    assert_eq!(pair.remote_tree().await.len(), 2);
    // `status` says what the pass left: its last plan (#12).
    let st = pair.dcsync(&["status"]).await;
    let out = &st.ok().stdout;
    assert!(out.contains("(incomplete)"), "{out}");
    let left: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "left by the last pass:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        left.iter()
            .filter(|l| l.trim_start().starts_with("upload"))
            .count()
            >= 4,
        "the uploads that did not fit: {out}"
    );
    // A pass in sync leaves nothing to show.
    let more = Host::start().await;
    let ok = Pair::new(&more);
    ok.write("a.txt", b"a");
    ok.sync(&[]).await.ok();
    let st = ok.dcsync(&["status"]).await;
    assert!(!st.ok().stdout.contains("left by the last pass"), "{st:?}");
}

/// A small tmpfs mounted for a test (root only); unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` when mounting is not allowed here (not root, no tmpfs).
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?
            .success();
        ok.then(|| SmallDisk(at.to_path_buf()))
    }

    fn remount_read_only(&self) -> bool {
        std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it as root (--ignored as_root_)"]
async fn as_root_disk_full_and_read_only_roots_are_reported_and_the_rest_goes_on() {
    let host = Host::start().await;
    let disk = SmallDisk::mount(&host.path("local"), "1m")
        .expect("mounting a tmpfs needs root: run this test as root");
    let pair = Pair::new(&host);
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let big = host.write("h/big.bin", &bytes(3 * 1024 * 1024, 1));
    c.upload_file(&big, "big.bin", Some(sync.id), None)
        .await
        .unwrap();
    for i in 0..3 {
        let f = host.write(&format!("h/s{i}.txt"), format!("small {i}").as_bytes());
        c.upload_file(&f, &format!("s{i}.txt"), Some(sync.id), None)
            .await
            .unwrap();
    }
    // Disk full: the big download fails cleanly, the small ones arrive.
    let r = pair.sync(&[]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("big.bin"),
        "the failure names the file: {r:?}"
    );
    assert!(!pair.lp("big.bin").exists(), "no partial target");
    for i in 0..3 {
        assert_eq!(
            read(&pair.lp(&format!("s{i}.txt"))),
            format!("small {i}").as_bytes()
        );
    }
    let tmp = pair.local.join(".dcsync/tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the temp file was removed");

    // Read-only root: reported, nothing breaks, nothing is lost.
    c.file_delete(
        c.folder_listing(Some(sync.id))
            .await
            .unwrap()
            .files
            .iter()
            .find(|f| f.name == "big.bin")
            .unwrap()
            .id,
    )
    .await
    .unwrap();
    pair.sync(&[]).await.ok();
    let more = host.write("h/more.txt", b"arrives later");
    c.upload_file(&more, "more.txt", Some(sync.id), None)
        .await
        .unwrap();
    assert!(disk.remount_read_only());
    let r = pair.sync(&[]).await;
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Read-only file system") || r.stderr.contains("read-only"),
        "says why: {r:?}"
    );
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert!(!pair.lp("more.txt").exists());
}

/// Runs `dcsync` as root without the capabilities that let root ignore
/// file permissions, so permission bits apply as for any user.
async fn sync_without_dac_override(cfg: &Path) -> Option<Run> {
    let out = tokio::process::Command::new("setpriv")
        .args(["--bounding-set", "-dac_override,-dac_read_search", "--"])
        .arg(env!("CARGO_BIN_EXE_dcsync"))
        .arg("--config")
        .arg(cfg)
        .arg("sync")
        .output()
        .await
        .ok()?;
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Clears the immutable flag again so the test folder can be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(p: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .ok()?
            .success();
        ok.then(|| Immutable(p.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root (setpriv, chattr); .ci/run runs it as root (--ignored as_root_)"]
async fn as_root_permission_denied_on_read_and_write_is_reported_and_the_rest_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("ok.txt", b"readable");
    pair.write("secret.txt", b"cannot be read");
    std::fs::set_permissions(
        pair.lp("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    // Make the config and state usable without root's override.
    std::fs::set_permissions(&pair.cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = sync_without_dac_override(&pair.cfg)
        .await
        .expect("setpriv (util-linux) is needed");
    assert!(
        !r.stderr.contains("setpriv"),
        "setpriv refused (run as root): {r:?}"
    );
    // Read denied: skipped with a reason, the rest synced, no error storm;
    // the sides are not equal, so the exit code says so, naming the file.
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("could not look at") && r.stderr.contains("secret.txt"),
        "{r:?}"
    );
    let remote = pair.remote_tree().await;
    assert!(remote.contains_key("ok.txt") && !remote.contains_key("secret.txt"));
    let st = pair.dcsync(&["status"]).await;
    assert!(st.ok().stdout.contains("secret.txt"), "{st:?}");

    // Write denied: a local file that cannot be replaced (immutable) while
    // the host has a new version; a new remote file still arrives.
    let _guard = Immutable::set(&pair.lp("ok.txt"))
        .expect("chattr +i needs root and e2fsprogs on a filesystem that supports it");
    let v2 = host.write("h/ok.txt", b"new version");
    pair.remote(&["put", "--overwrite", v2.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    let n = host.write("h/new.txt", b"new file");
    pair.remote(&["put", n.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    let r = pair.sync(&[]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("ok.txt"),
        "the failure names the file: {r:?}"
    );
    assert!(r.stderr.contains("not permitted"), "and says why: {r:?}");
    assert_eq!(read(&pair.lp("ok.txt")), b"readable", "left intact");
    assert_eq!(read(&pair.lp("new.txt")), b"new file");
    // The refused download left no temp file behind (#9 rule 8).
    let tmp: Vec<_> = std::fs::read_dir(pair.lp(".dcsync/tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_trees_big_folders_and_too_long_paths() {
    let host = Host::start().await;
    let pair = Pair::with(&host, "transfers = 8");
    // 100 levels of nesting.
    let mut deep = String::new();
    for i in 0..100 {
        deep.push_str(&format!("{i}/"));
    }
    pair.write(&format!("{deep}bottom.txt"), b"100 levels down");
    // 10,000 files in one folder (the host's listing has no pagination).
    for i in 0..10_000 {
        pair.write(&format!("big/f{i:05}.txt"), format!("{i}").as_bytes());
    }
    // On the host, a chain of long folder names whose local path would pass
    // the system's 4096-byte limit.
    let c = host.client();
    let sync = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let mut parent = sync.id;
    let mut rel = String::new();
    for i in 0..21 {
        let name = format!("{i:02}{}", "x".repeat(198));
        parent = c
            .folder_create(&name, Some(parent), &Default::default())
            .await
            .unwrap()
            .id;
        rel.push_str(&name);
        rel.push('/');
    }
    let leaf = host.write("h/leaf.txt", b"too deep to live locally");
    c.upload_file(&leaf, "leaf.txt", Some(parent), None)
        .await
        .unwrap();

    let r = pair.sync(&[]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "{r:?}"
    );
    assert!(pair.remote_id(&format!("{deep}bottom.txt")).await.is_some());
    let big = c
        .folder_listing(Some(
            c.folder_listing(Some(sync.id))
                .await
                .unwrap()
                .folders
                .iter()
                .find(|f| f.name == "big")
                .unwrap()
                .id,
        ))
        .await
        .unwrap();
    assert_eq!(big.files.len(), 10_000);
    let st = pair.dcsync(&["status"]).await;
    assert!(
        st.ok()
            .stdout
            .contains("longer than the system's 4096 bytes"),
        "{st:?}"
    );
    assert!(!pair.local.join(&rel).join("leaf.txt").exists());
}

/// The daemon's request after local events at `paths`, from the view of
/// the pass `last`.
pub(crate) fn focused_request(
    last: &dcsync::engine::SyncReport,
    paths: &[&str],
) -> dcsync::engine::SyncRequest {
    dcsync::engine::SyncRequest {
        focus: Some(dcsync::engine::Focus {
            remote: last
                .remote_view
                .clone()
                .expect("a converged pass returns its view"),
            paths: paths
                .iter()
                .map(|p| dcsync::model::RelPath::new(p).unwrap())
                .collect(),
            folders: Vec::new(),
        }),
        ..Default::default()
    }
}

/// For tests that drive the library: `n` files `d/f{i}.txt` in each folder
/// `d` of a new local tree, and the engine config that syncs it with `/Sync`.
pub(crate) fn library_pair(
    host: &Host,
    folders: &[(&str, usize)],
) -> (PathBuf, dcsync::engine::EngineConfig) {
    let local = host.path("local");
    std::fs::create_dir_all(local.join(".dcsync")).unwrap();
    for (d, n) in folders {
        for i in 0..*n {
            let p = local.join(format!("{d}/f{i}.txt"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{d}{i}")).unwrap();
        }
    }
    let cfg = dcsync::engine::EngineConfig {
        local_root: local.clone(),
        remote_path: "/Sync".into(),
        db_path: host.path("state/pair.db"),
        plan: Default::default(),
        transfers: 2,
        listing_concurrency: 2,
        max_delete_percent: 50,
        max_delete_count: 1000,
        trash: Default::default(),
    };
    (local, cfg)
}

/// Many new folders in one folder: the listings of the parent that look
/// for a namesake before each create and settle namesakes after it are
/// shared by runs of creates (before, each folder made listed its parent
/// twice: 10,000 new folders in one folder, 20,000 listings of it). Each
/// folder is made once, children after their parents, all with their files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_folders_in_one_folder_share_the_listings_of_their_parent() {
    use dcsync::engine::{Quiet, SyncRequest, sync};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let host = Host::start().await;
    let mut folders: Vec<(String, usize)> = (0..150).map(|i| (format!("big/a{i:03}"), 1)).collect();
    folders.extend((0..3).map(|j| (format!("big/a007/s{j}"), 1)));
    let folders: Vec<(&str, usize)> = folders.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let (local, cfg) = library_pair(&host, &folders);
    let c = host.client();
    let listings = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&listings);
    let hooked = Hooked {
        inner: c.clone(),
        hook: move |call, when| {
            if call == "folder/listing" && matches!(when, When::Before) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            None
        },
    };
    let clock = Arc::new(dcsync::clock::SystemClock);
    let r = sync(&hooked, &cfg, SyncRequest::default(), clock, &Quiet)
        .await
        .unwrap();
    assert!(r.in_sync(), "{r:?}");
    assert_eq!((r.created_dirs, r.uploaded), (154, 153), "{r:?}");
    let n = listings.load(Ordering::SeqCst);
    // The pass lists every folder it knows once per round besides (the
    // round after the creates: 154).
    assert!(n < 200, "{n} listings for 154 new folders (466 before)");

    let top = find_folder(&c, None, "Sync").await.unwrap();
    let big = find_folder(&c, Some(top), "big").await.unwrap();
    let l = c.folder_listing(Some(big)).await.unwrap();
    let mut names: Vec<&str> = l.folders.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!((names.len(), l.folders.len()), (150, 150), "each made once");
    let a007 = find_folder(&c, Some(big), "a007").await.unwrap();
    let inside = c.folder_listing(Some(a007)).await.unwrap();
    assert_eq!((inside.folders.len(), inside.files.len()), (3, 1));
    assert!(local.join("big/a007/s2/f0.txt").exists());
}

/// The daemon's focused passes, through the library: only the folders
/// around the changed paths are scanned and listed again, only ops inside
/// them run, and changes elsewhere wait for a full pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focused_passes_list_and_act_only_around_the_change() {
    use dcsync::engine::{Focus, Quiet, SyncRequest, sync};
    use dcsync::model::RelPath;
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("a", 5), ("b", 5), ("c", 5)]);
    let c = host.client();
    let clock = std::sync::Arc::new(dcsync::clock::SystemClock);
    let full = sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet)
        .await
        .unwrap();
    assert!(full.converged);
    let cached = full
        .remote_view
        .clone()
        .expect("a converged pass returns its view");

    // A change the watcher saw, one it missed, and one on the host.
    std::fs::write(local.join("a/f0.txt"), "a0 edited").unwrap();
    std::fs::write(local.join("b/f0.txt"), "b0 edited, unseen").unwrap();
    let up = host.write("h/new.txt", b"from the host");
    let sync_dir = c.folder_listing(None).await.unwrap().folders[0].id;
    let cdir = c
        .folder_listing(Some(sync_dir))
        .await
        .unwrap()
        .folders
        .into_iter()
        .find(|f| f.name == "c")
        .unwrap();
    c.upload_file(&up, "new.txt", Some(cdir.id), None)
        .await
        .unwrap();

    let before = c.requests_sent();
    let focus = Focus {
        remote: cached,
        paths: vec![RelPath::new("a/f0.txt").unwrap()],
        folders: Vec::new(),
    };
    let req = SyncRequest {
        focus: Some(focus),
        ..SyncRequest::default()
    };
    let r = sync(&c, &cfg, req, clock.clone(), &Quiet).await.unwrap();
    assert_eq!(r.uploaded, 1, "{r:?}");
    // A second round confirms, over the scopes only (#9 rule 12: what is
    // remembered is a listing a plan was made from).
    assert_eq!(r.rounds, 2, "one confirming round over the scopes");
    assert_eq!(r.downloaded, 0, "the host's change is outside the focus");
    // The edit the watcher missed is not even looked at: the scheduled full
    // pass is there for that.
    assert!(!r.needs_full_pass, "{r:?}");
    let focused_calls = c.requests_sent() - before;

    let before = c.requests_sent();
    let r = sync(&c, &cfg, SyncRequest::default(), clock, &Quiet)
        .await
        .unwrap();
    assert_eq!((r.uploaded, r.downloaded), (1, 1), "{r:?}");
    assert!(!r.needs_full_pass);
    let full_calls = c.requests_sent() - before;
    assert!(
        focused_calls < full_calls,
        "focused {focused_calls} API calls vs full {full_calls}"
    );
    assert_eq!(read(&local.join("c/new.txt")), b"from the host");
}

/// Focused passes on changes directly in the synced folder (one-level
/// scope: files act at once, a new folder asks for a full pass), and the
/// mass-delete share of a focused pass counts everything tracked, not only
/// the part it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focused_passes_at_the_top_and_their_delete_share() {
    use dcsync::engine::{Quiet, SyncRequest, sync};
    let host = Host::start().await;
    let (local, cfg) = library_pair(&host, &[("m", 12), ("a", 10), ("b", 10)]);
    std::fs::write(local.join("top.txt"), "top").unwrap();
    let c = host.client();
    let clock = std::sync::Arc::new(dcsync::clock::SystemClock);
    let full = sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet)
        .await
        .unwrap();
    assert!(full.converged);

    // A file saved and a file added at the top: one-level scope, no full pass.
    std::fs::write(local.join("top.txt"), "top, edited").unwrap();
    std::fs::write(local.join("new-top.txt"), "new").unwrap();
    let r = sync(
        &c,
        &cfg,
        focused_request(&full, &["top.txt", "new-top.txt"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(r.uploaded, 2, "{r:?}");
    assert!(!r.needs_full_pass, "{r:?}");
    assert!(r.converged && r.remote_view.is_some(), "{r:?}");

    // A new folder at the top cannot be handled from one level: full pass.
    std::fs::create_dir(local.join("newdir")).unwrap();
    std::fs::write(local.join("newdir/x.txt"), "x").unwrap();
    let r2 = sync(
        &c,
        &cfg,
        focused_request(&r, &["newdir"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(r2.uploaded, 0, "{r2:?}");
    assert!(r2.needs_full_pass, "{r2:?}");
    let r3 = sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet)
        .await
        .unwrap();
    assert_eq!(r3.uploaded, 1, "{r3:?}");

    // A folder renamed at the top: the new name is outside what a one-level
    // scope can plan (its content is not read), so the focused pass must do
    // nothing at all (not trash the content it sees gone from the old
    // name) and leave the move to a full pass.
    std::fs::rename(local.join("b"), local.join("b-renamed")).unwrap();
    std::fs::write(local.join("b-renamed/f0.txt"), "b0 edited after the move").unwrap();
    std::fs::remove_file(local.join("b-renamed/f1.txt")).unwrap();
    let rb = sync(
        &c,
        &cfg,
        focused_request(&r3, &["b", "b-renamed"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(
        (rb.deleted_remote, rb.uploaded, rb.moved),
        (0, 0, 0),
        "{rb:?}"
    );
    assert!(rb.needs_full_pass, "{rb:?}");
    let r3 = sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet)
        .await
        .unwrap();
    assert_eq!(
        (r3.moved, r3.uploaded, r3.deleted_remote),
        (1, 1, 1),
        "{r3:?}"
    );
    std::fs::rename(local.join("b-renamed"), local.join("b")).unwrap();
    let r3 = sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet)
        .await
        .unwrap();
    assert_eq!(r3.moved, 1, "{r3:?}");

    // 12 of the 34 tracked files (35 %, under the 50 % limit) deleted in
    // one folder: all the focused pass read, but not a mass delete.
    for i in 0..12 {
        std::fs::remove_file(local.join(format!("m/f{i}.txt"))).unwrap();
    }
    let r4 = sync(
        &c,
        &cfg,
        focused_request(&r3, &["m/f0.txt"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(r4.deleted_remote, 12, "{r4:?}");
    // Whereas 10 + 9 of the remaining 22 are.
    for d in ["a", "b"] {
        for i in (0..10).filter(|&i| d == "a" || i != 1) {
            std::fs::remove_file(local.join(format!("{d}/f{i}.txt"))).unwrap();
        }
    }
    let err = sync(
        &c,
        &cfg,
        focused_request(&r4, &["a/f0.txt", "b/f0.txt"]),
        clock,
        &Quiet,
    )
    .await
    .unwrap_err();
    assert!(err.is_safety_stop(), "{err}");
}

/// Syncing the whole account: a file saved at the top is a one-level
/// focused pass too, although the account root's listing also shows the
/// folders in the host's trash; those a full pass found are left out, and
/// a folder that is really new asks for a full pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focused_passes_at_the_top_of_the_account() {
    use dcsync::engine::{Quiet, SyncRequest, sync};
    let host = Host::start().await;
    let (local, mut cfg) = library_pair(&host, &[("proj", 3), ("a", 3)]);
    cfg.remote_path = "/".into();
    std::fs::write(local.join("top.txt"), "top").unwrap();
    let c = host.client();
    let clock = std::sync::Arc::new(dcsync::clock::SystemClock);
    let full = || sync(&c, &cfg, SyncRequest::default(), clock.clone(), &Quiet);
    full().await.unwrap();
    // dcsync trashes a folder; the host keeps listing it in the root.
    std::fs::remove_dir_all(local.join("proj")).unwrap();
    assert_eq!(full().await.unwrap().deleted_remote, 1);
    let root = c.folder_listing(None).await.unwrap();
    assert!(
        root.folders.iter().any(|f| f.name == "proj"),
        "the host quirk"
    );
    let r = full().await.unwrap();
    assert!(r.converged, "{r:?}");

    std::fs::write(local.join("top.txt"), "top, edited").unwrap();
    let r2 = sync(
        &c,
        &cfg,
        focused_request(&r, &["top.txt"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!((r2.uploaded, r2.downloaded), (1, 0), "{r2:?}");
    assert!(!r2.needs_full_pass, "the trashed folder is not new: {r2:?}");
    assert!(!local.join("proj").exists());

    // A folder made on the site in the meantime: the one-level listing
    // does not know its content (unknown, so nothing is done about it);
    // the file still goes out, and a full pass brings the folder.
    c.folder_create("from-site", None, &Default::default())
        .await
        .unwrap();
    std::fs::write(local.join("top.txt"), "top, edited again").unwrap();
    let r3 = sync(
        &c,
        &cfg,
        focused_request(&r2, &["top.txt"]),
        clock.clone(),
        &Quiet,
    )
    .await
    .unwrap();
    assert!(r3.needs_full_pass, "{r3:?}");
    assert_eq!((r3.uploaded, r3.created_dirs), (1, 0), "{r3:?}");
    assert!(!local.join("from-site").exists());
    let r4 = full().await.unwrap();
    assert_eq!((r4.uploaded, r4.created_dirs), (0, 1), "{r4:?}");
    assert!(local.join("from-site").is_dir());
    assert!(!local.join("proj").exists());
}

/// Progress moves as ops finish: each transfer is reported done before a
/// later one starts (with one transfer at a time), not all at the end of
/// the stage (#11 item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_are_reported_as_they_finish() {
    use dcsync::engine::{Reporter, SyncRequest, TransferSink, sync};
    use std::sync::{Arc, Mutex};
    struct Log(Arc<Mutex<Vec<String>>>);
    impl Reporter for Log {
        fn op_done(&self, op: &dcsync::plan::Op, _r: &Result<(), String>) {
            self.0.lock().unwrap().push(format!("done {}", op.path()));
        }
        fn transfer_sink(&self) -> Option<TransferSink> {
            let log = self.0.clone();
            Some(Arc::new(move |p, _done, total| {
                let line = format!("start {p}");
                let mut l = log.lock().unwrap();
                if total.is_some() && !l.contains(&line) {
                    l.push(line);
                }
            }))
        }
    }
    let host = Host::start().await;
    let (_local, mut cfg) = library_pair(&host, &[("d", 4)]);
    cfg.transfers = 1;
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = host.client();
    let r = sync(
        &c,
        &cfg,
        SyncRequest::default(),
        Arc::new(dcsync::clock::SystemClock),
        &Log(log.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.uploaded, 4);
    let log = log.lock().unwrap().clone();
    let uploads: Vec<&String> = log.iter().filter(|l| l.contains("d/f")).collect();
    assert_eq!(uploads.len(), 8, "{log:?}");
    for pair in uploads.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.starts_with("start") && b.starts_with("done"), "{log:?}");
        assert_eq!(
            a.trim_start_matches("start "),
            b.trim_start_matches("done "),
            "{log:?}"
        );
    }
}

/// A one-way pass does not say "in sync" while the sides differ by design
/// (#11 item 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_passes_say_up_to_date_and_what_they_leave() {
    let host = Host::start().await;
    let pair = Pair::with(&host, "mode = \"upload-only\"");
    pair.write("a.txt", b"a");
    let f = host.write("h/only-on-host.txt", b"h");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    let r = pair.sync(&[]).await;
    assert!(r.ok().stdout.contains("up to date (upload-only"), "{r:?}");
    assert!(!r.stdout.contains("in sync"), "{r:?}");
}

/// A warning about a path (a symlink skipped, an empty file held back) is
/// given once, not on every pass; `status` keeps listing it (#11 item 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_warning_is_not_repeated_every_pass() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("a.txt", b"a");
    pair.write("empty.txt", b"");
    std::os::unix::fs::symlink("/etc/hostname", pair.lp("link")).unwrap();
    let first = pair.sync(&[]).await;
    assert!(first.stderr.contains("symbolic links"), "{first:?}");
    assert!(first.stderr.contains("empty files"), "{first:?}");
    let second = pair.sync(&[]).await;
    assert!(!second.stderr.contains("symbolic links"), "{second:?}");
    assert!(!second.stderr.contains("empty files"), "{second:?}");
    let st = pair.dcsync(&["status"]).await;
    assert!(
        st.ok().stdout.contains("link") && st.stdout.contains("empty.txt"),
        "{st:?}"
    );
}

/// Plan lines are in the user's words: a path that stops being tracked says
/// so, and that nothing is deleted (#11 item 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lines_use_plain_words() {
    let host = Host::start().await;
    let pair = Pair::with(&host, "mode = \"upload-only\"");
    pair.write("p1.jpg", b"photo");
    pair.sync(&[]).await.ok();
    std::fs::remove_file(pair.lp("p1.jpg")).unwrap();
    let r = pair.sync(&[]).await;
    assert!(
        r.ok()
            .stdout
            .contains("stop tracking p1.jpg (nothing is deleted)"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("forget"), "{r:?}");
}

/// The local trash: `trash list` shows what a sync moved there, `trash
/// restore` puts it back (beside it when the place is taken) and the next
/// sync uploads it; old trash is pruned at the end of a sync (#14 item 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_trash_can_be_listed_restored_and_pruned() {
    let host = Host::start().await;
    let pair = Pair::with(&host, "trash_retention = \"30d\"");
    pair.write("docs/a.txt", b"precious");
    pair.write("keep.txt", b"keep");
    pair.sync(&[]).await.ok();
    // Deleted on the host: the local copy goes to the trash.
    let id = pair.remote_id("docs/a.txt").await.unwrap();
    pair.client.file_delete(id).await.unwrap();
    pair.sync(&[]).await.ok();
    assert!(!pair.lp("docs/a.txt").exists());
    let l = pair.dcsync(&["trash", "list"]).await;
    assert!(l.ok().stdout.contains("docs/a.txt"), "{l:?}");
    let j = pair.dcsync(&["trash", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["entries"][0]["path"], "docs/a.txt", "{v}");
    // Put back, and synced up again.
    let r = pair.dcsync(&["trash", "restore", "docs/a.txt"]).await;
    assert!(r.ok().stdout.contains("restored docs/a.txt"), "{r:?}");
    assert_eq!(read(&pair.lp("docs/a.txt")), b"precious");
    pair.sync(&[]).await.ok();
    assert_eq!(
        pair.remote_tree().await["docs/a.txt"].as_deref(),
        Some(&b"precious"[..])
    );
    // A restore never replaces: a second one (nothing left) fails clearly.
    pair.dcsync(&["trash", "restore", "docs/a.txt"])
        .await
        .fails_with(1, "not in the trash");
    // An old slot is pruned at the end of the next sync.
    let old = pair.lp(".dcsync/trash/20200101-000000/old.txt");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, b"old").unwrap();
    pair.sync(&[]).await.ok();
    assert!(!old.exists(), "older than trash_retention: pruned");
}

/// `dcsync conflicts` lists the kept pairs of versions and which side each
/// came from (#14 item 5, listing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_listed_with_their_sides() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("doc.txt", b"local words");
    let f = host.write("h/doc.txt", b"host words!");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    pair.sync(&[]).await.ok();
    let r = pair.dcsync(&["conflicts"]).await;
    assert!(r.ok().stdout.contains("1 conflicts"), "{r:?}");
    assert!(r.stdout.contains("doc.txt (remote version, 11 B)"), "{r:?}");
    let j = pair.dcsync(&["conflicts", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let c = &v["conflicts"][0];
    assert_eq!(c["path"], "doc.txt", "{v}");
    assert_eq!(c["copy_version"], "local", "{v}");
    assert_eq!(c["copy_size"], 11, "{v}");
    assert!(
        c["copy"].as_str().unwrap().contains("conflicted copy"),
        "{v}"
    );
}

/// `dcsync resolve PATH --keep local|remote|both` settles a kept conflict;
/// the next sync carries it to the host, and nothing is deleted outright
/// (#14 item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_can_be_resolved() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    for (name, local, remote) in [
        ("a.txt", "local a", "remote a!"),
        ("b.txt", "local b", "remote b!"),
        ("c.txt", "local c", "remote c!"),
    ] {
        pair.write(name, local.as_bytes());
        let f = host.write(&format!("h/{name}"), remote.as_bytes());
        host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
            .await
            .ok();
    }
    pair.sync(&[]).await.ok();
    pair.sync(&[]).await.ok();
    let r = pair.dcsync(&["resolve", "a.txt", "--keep", "local"]).await;
    assert!(r.ok().stdout.contains("kept the local version"), "{r:?}");
    pair.dcsync(&["resolve", "b.txt", "--keep", "remote"])
        .await
        .ok();
    pair.dcsync(&["resolve", "c.txt", "--keep", "both"])
        .await
        .ok();
    pair.dcsync(&["resolve", "c.txt", "--keep", "both"])
        .await
        .fails_with(2, "no kept conflict");
    pair.sync(&[]).await.ok();
    let tree = pair.converged().await;
    assert_eq!(tree["a.txt"].as_deref(), Some(&b"local a"[..]));
    assert_eq!(tree["b.txt"].as_deref(), Some(&b"remote b!"[..]));
    assert_eq!(tree["c.txt"].as_deref(), Some(&b"remote c!"[..]));
    let copies: Vec<&String> = tree
        .keys()
        .filter(|k| k.contains("conflicted copy"))
        .collect();
    assert_eq!(copies.len(), 1, "only c keeps its copy: {copies:?}");
    assert!(copies[0].starts_with("c "), "{copies:?}");
    // What was not kept is in the local trash.
    assert!(pair.trash_has(b"remote a!") && pair.trash_has(b"local b"));
    let r = pair.dcsync(&["conflicts"]).await;
    assert!(r.ok().stdout.contains("0 conflicts"), "{r:?}");
}
