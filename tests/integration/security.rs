//! Regression tests for the security rules (issue 10): nothing written
//! outside the sync root through symlinks, nothing the host or another
//! local user planted is trusted.

use crate::sync::Pair;
use crate::util::*;

// ---------------------------------------------------------------- rule 1

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_state_folder_stops_the_pass() {
    for sub in ["trash", "tmp"] {
        let host = Host::start().await;
        let pair = Pair::new(&host);
        pair.write("a.txt", b"a");
        pair.sync(&[]).await.ok();
        let outside = host.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let p = pair.lp(&format!(".dcsync/{sub}"));
        let _ = std::fs::remove_dir_all(&p);
        std::os::unix::fs::symlink(&outside, &p).unwrap();
        // The host deletes a.txt: the local copy would go to the trash.
        let id = pair.remote_id("a.txt").await.unwrap();
        pair.client.file_delete(id).await.unwrap();
        pair.sync(&[]).await.fails_with(3, "symbolic link");
        assert_eq!(read(&pair.lp("a.txt")), b"a", "{sub}: nothing moved");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{sub}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_probe_never_writes_through_a_planted_link() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    let victim = host.path("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, pair.lp(".dcsync/CaseProbe")).unwrap();
    pair.write("a.txt", b"a");
    pair.sync(&[]).await.ok();
    assert_eq!(read(&victim), b"precious");
}

/// A reporter that runs `act` once, when the first transfer's bytes have
/// arrived (a download is in the temp folder, not yet put in place).
struct AfterFirstBytes {
    act: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl dcsync::engine::Reporter for AfterFirstBytes {
    fn bytes(&self, _n: u64) {
        if let Some(act) = self.act.lock().unwrap().take() {
            act();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_never_follows_a_folder_swapped_for_a_symlink() {
    use dcsync::engine::{SyncRequest, sync};
    let lib = crate::safety::Lib::new(&[("d", 1)]).await;
    let (host, local, cfg, c, clock) = (&lib.host, &lib.local, &lib.cfg, &lib.c, lib.clock.clone());
    // A new file on the host, to be downloaded into d/.
    let f = host.write("h/new.txt", b"from the host");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync/d"])
        .await
        .ok();
    let outside = host.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // While it downloads, d/ is swapped for a symlink to a folder outside.
    let (d, out2) = (local.join("d"), outside.clone());
    let reporter = AfterFirstBytes {
        act: std::sync::Mutex::new(Some(Box::new(move || {
            std::fs::rename(&d, d.with_extension("moved")).unwrap();
            std::os::unix::fs::symlink(&out2, &d).unwrap();
        }))),
    };
    let _ = sync(c, cfg, SyncRequest::default(), clock, &reporter).await;
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside the root"
    );
}

// ---------------------------------------------------------------- rule 4

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_folder_named_like_the_state_folder_is_left_alone() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("a.txt", b"a");
    pair.sync(&[]).await.ok();
    // The host has /Sync/.dcsync/trash (a file) and /Sync/.dcsync/lock.
    for name in ["trash", "lock"] {
        let f = host.write(&format!("h/{name}"), b"planted by the host");
        host.dcsync(&["remote", "mkdir", "-p", "/Sync/.dcsync"])
            .await
            .ok();
        host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync/.dcsync"])
            .await
            .ok();
    }
    for _ in 0..2 {
        pair.sync(&[]).await.ok();
    }
    assert!(pair.lp(".dcsync/trash").is_dir(), "the trash is still ours");
    assert_ne!(read(&pair.lp(".dcsync/lock")), b"planted by the host");
    let remote = pair.remote_tree().await;
    assert!(
        remote.contains_key(".dcsync/lock"),
        "and the host's folder stays"
    );
    let st = pair.dcsync(&["status"]).await;
    assert!(
        st.ok().stdout.contains(".dcsync"),
        "listed as skipped: {st:?}"
    );
}

// ---------------------------------------------------------------- rule 5

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Another origin that counts what reaches it.
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let thief = axum::Router::new().fallback(move || {
        let seen = seen2.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    });
    let thief_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_addr = thief_l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(thief_l, thief).await });
    // The "host" answers every API call with a 307 to the other origin.
    let to = format!("http://{thief_addr}/api/v2/authorize");
    let host = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, to)],
            )
        }
    });
    let host_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_addr = host_l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(host_l, host).await });

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "api_url = \"http://{host_addr}/api/v2/\"\nkey1 = \"{KEY1}\"\nkey2 = \"{KEY2}\"\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let r = run_dcsync(&cfg, &["remote", "ls", "/"], &[]).await;
    r.fails_with(2, "redirect");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing reached the other origin"
    );
}

// ---------------------------------------------------------------- rule 6

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_keep_the_permissions_of_the_file_they_replace() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("secret.env", b"TOKEN=1");
    std::fs::set_permissions(
        pair.lp("secret.env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    pair.sync(&[]).await.ok();
    // A newer version arrives from the host, and a new file.
    for (name, text) in [("secret.env", &b"TOKEN=2"[..]), ("new.txt", b"new")] {
        let f = host.write(&format!("h/{name}"), text);
        host.dcsync(&["remote", "put", "--overwrite", f.to_str().unwrap(), "/Sync"])
            .await
            .ok();
    }
    pair.sync(&[]).await.ok();
    assert_eq!(read(&pair.lp("secret.env")), b"TOKEN=2");
    let mode = |p: &str| std::fs::metadata(pair.lp(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("secret.env"), 0o600, "kept private");
    let umask = dcsync::engine::new_file_mode();
    assert_eq!(mode("new.txt"), umask, "a new file follows the umask");
}

// ---------------------------------------------------------------- rule 3

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_get_never_trusts_a_partial_file_it_did_not_make() {
    let host = Host::start().await;
    let content = bytes(200_000, 7);
    let f = host.write("up/big.bin", &content);
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/"])
        .await
        .ok();
    let dir = host.path("dl");
    std::fs::create_dir_all(&dir).unwrap();
    // Planted: a part file of the full size with other bytes.
    std::fs::write(dir.join(".big.bin.dcsync-part"), vec![b'X'; 200_000]).unwrap();
    host.dcsync(&["remote", "get", "/big.bin", dir.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(
        read(&dir.join("big.bin")),
        content,
        "fetched, not taken from the plant"
    );
    // Planted: a symlink where the part file goes.
    let victim = host.path("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let dir2 = host.path("dl2");
    std::fs::create_dir_all(&dir2).unwrap();
    std::os::unix::fs::symlink(&victim, dir2.join(".big.bin.dcsync-part")).unwrap();
    host.dcsync(&["remote", "get", "/big.bin", dir2.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(read(&victim), b"precious");
    assert_eq!(read(&dir2.join("big.bin")), content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_get_does_not_overwrite_without_being_asked() {
    let host = Host::start().await;
    let f = host.write("up/a.txt", b"from the host");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/"])
        .await
        .ok();
    let mine = host.write("mine/a.txt", b"my only copy");
    let r = host
        .dcsync(&["remote", "get", "/a.txt", mine.to_str().unwrap()])
        .await;
    r.fails_with(1, "--overwrite");
    assert_eq!(read(&mine), b"my only copy");
    host.dcsync(&[
        "remote",
        "get",
        "--overwrite",
        "/a.txt",
        mine.to_str().unwrap(),
    ])
    .await
    .ok();
    assert_eq!(read(&mine), b"from the host");
}

// ---------------------------------------------------------------- rule 2

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_uses_a_fresh_private_folder() {
    use std::os::unix::fs::PermissionsExt;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .args(["demo", "--no-wait"])
        .env("DCSYNC_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let folder = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo folder:"))
        .map(|s| std::path::PathBuf::from(s.trim()))
        .expect("the demo names its folder");
    let dir = folder.parent().unwrap().to_path_buf();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let suffix = name
        .strip_prefix("dcsync-demo-")
        .expect("named dcsync-demo-...");
    assert!(
        !suffix.chars().all(|c| c.is_ascii_digit()),
        "not a predictable pid: {name}"
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode, 0o700, "{}", dir.display());
}

// ---------------------------------------------------------------- rule 8

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_names_are_printed_escaped() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("a.txt", b"a");
    pair.sync(&[]).await.ok();
    host.write("h/x.txt", b"x");
    let f = host.path("h/x.txt");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    let evil = "evil\u{1b}[2J\u{7}\r.txt";
    let id = pair.remote_id("x.txt").await.unwrap();
    pair.client.file_rename(id, evil).await.unwrap();
    let raw = |s: &str| s.contains('\u{1b}') || s.contains('\u{7}') || s.contains('\r');
    for args in [
        &["remote", "ls", "/Sync"][..],
        &["remote", "tree", "/Sync"][..],
    ] {
        let r = pair.dcsync(args).await;
        r.ok();
        assert!(!raw(&r.stdout), "{args:?}: {:?}", r.stdout);
        assert!(
            r.stdout.contains("evil\\u{1b}[2J\\u{7}\\r.txt"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let r = pair.sync(&[]).await;
    assert!(!raw(&r.stdout) && !raw(&r.stderr), "{r:?}");
    let st = pair.dcsync(&["status"]).await;
    assert!(!raw(&st.stdout), "{st:?}");
    // JSON keeps the name as it is.
    let j = pair.dcsync(&["remote", "ls", "--json", "/Sync"]).await;
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert!(
        v.to_string().contains("evil\\u001b[2J\\u0007\\r.txt"),
        "{v}"
    );
    // The file itself synced under its real name.
    assert!(pair.lp(evil).exists());
}

// ---------------------------------------------------------------- rule 7

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_takes_keys_from_files_so_they_stay_out_of_the_process_list() {
    let host = Host::start().await;
    let k1 = host.write("keys/k1", format!("{KEY1}\n").as_bytes());
    let k2 = host.write("keys/k2", KEY2.as_bytes());
    let cfg = host.path("from-files.toml");
    let local = host.path("cloud");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .arg("--config")
        .arg(&cfg)
        .args(["init", "--api-url", &host.api_url(), "--key1-file"])
        .arg(&k1)
        .arg("--key2-file")
        .arg(&k2)
        .arg("--local-path")
        .arg(&local)
        .args(["--remote-path", "/Sync", "--state-dir"])
        .arg(host.path("state"))
        .env_remove("DCSYNC_KEY1")
        .env_remove("DCSYNC_KEY2")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The keys were read from the files, and the config works.
    std::fs::write(local.join("a.txt"), b"a").unwrap();
    run_dcsync(&cfg, &["sync"], &[]).await.ok();
    run_dcsync(&cfg, &["remote", "ls", "/Sync"], &[]).await.ok();
}

/// `.dcsync` (or its trash) owned by another user stops the pass: that user
/// could plant links there. Needs root to hand a folder to another user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to chown a folder to another user; .ci/run runs it as root (--ignored as_root_)"]
async fn as_root_a_state_folder_of_another_user_stops_the_pass() {
    let host = Host::start().await;
    let pair = Pair::new(&host);
    pair.write("a.txt", b"a");
    pair.sync(&[]).await.ok();
    let trash = pair.lp(".dcsync/trash");
    std::os::unix::fs::chown(&trash, Some(65534), Some(65534))
        .expect("chown needs root: run this test as root");
    pair.sync(&[])
        .await
        .fails_with(3, "belongs to another user");
    std::os::unix::fs::chown(&trash, Some(0), Some(0)).unwrap();
    pair.sync(&[]).await.ok();
}
