//! Crash safety: `dcsync sync` killed with SIGKILL at arbitrary points of a
//! large pass, then run again, converges with no duplicate remote files and
//! no partial local files.

use crate::util::*;
use dcsync::api::{Client, FolderId};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn config(host: &Host, local: &Path) -> std::path::PathBuf {
    host.sync_config("crash.toml", local, "/Sync", "transfers = 4")
}

/// Every file below `folder` by path, and whether any folder holds two
/// entries of one name.
async fn remote_files(c: &Client, folder: FolderId) -> (BTreeMap<String, u64>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut dups = Vec::new();
    let mut stack = vec![(folder, String::new())];
    while let Some((id, prefix)) = stack.pop() {
        let l = c.folder_listing(Some(id)).await.unwrap();
        let mut names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
        names.extend(l.folders.iter().map(|f| f.name.as_str()));
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != names.len() {
            dups.push(format!("{prefix}: {names:?}"));
        }
        for f in &l.files {
            files.insert(format!("{prefix}{}", f.name), f.size);
        }
        for d in l.folders {
            stack.push((d.id, format!("{prefix}{}/", d.name)));
        }
    }
    (files, dups)
}

fn local_files(root: &Path) -> BTreeMap<String, u64> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
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
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, m.len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_sync_then_rerun_converges_without_duplicates() {
    // Latency makes a pass long enough to be interrupted at many points.
    let host = Host::start_with(|c| c.latency_ms = 15).await;
    let local = host.path("local");
    for i in 0..120 {
        let p = local.join(format!("d{}/f{i}.bin", i % 6));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes(1_000 + i * 37, i as u8)).unwrap();
    }
    // Files only on the host, to be downloaded.
    let c = host.client();
    let sync_root = c
        .folder_create("Sync", None, &Default::default())
        .await
        .unwrap();
    let inbox = c
        .folder_create("inbox", Some(sync_root.id), &Default::default())
        .await
        .unwrap();
    for i in 0..30 {
        let p = host.write(
            &format!("up/r{i}.bin"),
            &bytes(5_000 + i * 11, 200 - i as u8),
        );
        c.upload_file(&p, &format!("r{i}.bin"), Some(inbox.id), None)
            .await
            .unwrap();
    }
    let cfg = config(&host, &local);

    // Kill at spread-out points: each delay is an input of the test.
    let mut killed = 0;
    for (n, delay_ms) in [60u64, 150, 250, 400, 550, 700, 900, 1200]
        .into_iter()
        .enumerate()
    {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
            .arg("--config")
            .arg(&cfg)
            .arg("-q")
            .arg("sync")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(delay_ms), child.wait()).await {
            Ok(status) => {
                // Finished before the kill: fine, the rest is already synced.
                let s = status.unwrap();
                assert!(s.code() == Some(0) || s.code() == Some(1), "run {n}: {s:?}");
            }
            Err(_) => {
                child.kill().await.unwrap(); // SIGKILL
                killed += 1;
            }
        }
    }
    assert!(
        killed >= 4,
        "only {killed} runs were interrupted; the test did not test much"
    );

    // A full run afterwards converges.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .arg("--config")
        .arg(&cfg)
        .arg("sync")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let (remote, dups) = remote_files(&c, sync_root.id).await;
    assert!(dups.is_empty(), "duplicate names on the host: {dups:#?}");
    let local_now = local_files(&local);
    assert_eq!(
        local_now, remote,
        "both sides hold the same files and sizes"
    );
    assert_eq!(local_now.len(), 150);
    // No partial download left anywhere in the tree.
    assert!(local_now.keys().all(|k| !k.ends_with(".dcsync-part")));
    for (k, size) in &local_now {
        if let Some(i) = k
            .strip_prefix("inbox/r")
            .and_then(|r| r.strip_suffix(".bin"))
        {
            let i: u64 = i.parse().unwrap();
            assert_eq!(*size, 5_000 + i * 11, "{k} complete");
            assert_eq!(
                read(&local.join(k)),
                bytes((5_000 + i * 11) as usize, 200 - i as u8)
            );
        }
    }
    // And a further pass has nothing to do.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .arg("--config")
        .arg(&cfg)
        .arg("sync")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted"),
        "{text}"
    );
}
