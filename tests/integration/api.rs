//! The API client against the emulator: every endpoint, the documented
//! errors, the host quirks of API-NOTES.md, token handling and faults.

use crate::util::*;
use dcsync::api::*;
use dcsync_emulator::{AuthMode, FaultKind};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_endpoints() {
    let host = Host::start().await;
    let c = host.client();
    let info = c.account_info().await.unwrap();
    assert_eq!(info.username.as_deref(), Some("admin"));
    assert!(info.id.is_some());
    let pkg = c.account_package().await.unwrap();
    assert!(pkg.uploads_allowed());
    assert!(pkg.upload_limit().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_bad_credentials_and_never_printed() {
    let host = Host::start().await;
    let mut o = host.client_opts();
    let wrong = "9".repeat(64);
    o.credentials = Credentials::Keys {
        key1: Secret::new(wrong.clone()),
        key2: Secret::new(wrong.clone()),
    };
    o.token_store = TokenStore::Memory;
    let c = Client::new(o).unwrap();
    let e = c.account_info().await.unwrap_err();
    assert!(matches!(e, ApiError::BadCredentials { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let shown = format!("{e} {e:?} {c:?}");
    assert!(!shown.contains(&wrong), "{shown}");
    assert!(shown.contains("key1/key2"), "says what to do: {shown}");

    // Keys of the wrong length: the host's own message, same class.
    let mut o = host.client_opts();
    o.credentials = Credentials::Keys {
        key1: Secret::new("short"),
        key2: Secret::new("short"),
    };
    o.token_store = TokenStore::Memory;
    let e = Client::new(o).unwrap().account_info().await.unwrap_err();
    assert!(matches!(e, ApiError::BadCredentials { .. }), "{e:?}");
    assert!(e.to_string().contains("64 characters"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authorization() {
    let host = Host::start_with(|c| {
        c.auth = AuthMode::Password;
        c.username = "alice".into();
        c.password = "correct horse".into();
    })
    .await;
    let mut o = host.client_opts();
    o.credentials = Credentials::Password {
        username: "alice".into(),
        password: Secret::new("correct horse"),
    };
    let c = Client::new(o.clone()).unwrap();
    assert_eq!(
        c.account_info().await.unwrap().username.as_deref(),
        Some("alice")
    );

    o.credentials = Credentials::Password {
        username: "alice".into(),
        password: Secret::new("wrong"),
    };
    o.token_store = TokenStore::Memory;
    let e = Client::new(o).unwrap().account_info().await.unwrap_err();
    assert!(matches!(e, ApiError::BadCredentials { .. }), "{e:?}");
    assert!(!format!("{e:?}").contains("wrong\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_create_list_info_edit_move_delete() {
    let host = Host::start().await;
    let c = host.client();
    let a = c
        .folder_create("A", None, &FolderOptions::default())
        .await
        .unwrap();
    assert_eq!(a.name, "A");
    assert_eq!(a.parent_id, None);
    let b = c
        .folder_create(
            "B",
            Some(a.id),
            &FolderOptions {
                is_public: Some(1),
                access_password_md5: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(b.parent_id, Some(a.id));

    let root = c.folder_listing(None).await.unwrap();
    assert_eq!(
        root.folders
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["A"]
    );
    let inside = c.folder_listing(Some(a.id)).await.unwrap();
    assert_eq!(inside.folders.len(), 1);
    assert_eq!(inside.folders[0].id, b.id);

    let info = c.folder_info(b.id).await.unwrap();
    assert_eq!(info.name, "B");
    assert_eq!(info.is_public, Some(1));

    let renamed = c.folder_rename(b.id, "B2").await.unwrap();
    assert_eq!(renamed.name, "B2");

    // Move to the root (the literal `null`), then back.
    let moved = c.folder_move(b.id, None).await.unwrap();
    assert_eq!(moved.parent_id, None);
    assert_eq!(c.folder_listing(None).await.unwrap().folders.len(), 2);
    c.folder_move(b.id, Some(a.id)).await.unwrap();
    assert_eq!(c.folder_info(b.id).await.unwrap().parent_id, Some(a.id));

    // Not found is its own class.
    let e = c.folder_info(FolderId(987_654)).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(e.to_string().contains("Could not find folder"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trashed_folder_reappears_in_root_without_its_files() {
    let host = Host::start().await;
    let c = host.client();
    let top = c
        .folder_create("top", None, &Default::default())
        .await
        .unwrap();
    let sub = c
        .folder_create("sub", Some(top.id), &Default::default())
        .await
        .unwrap();
    let f = host.write("x.txt", b"hello");
    let up = c
        .upload_file(&f, "x.txt", Some(sub.id), None)
        .await
        .unwrap();

    c.folder_delete(sub.id).await.unwrap();
    // Detached to the root, listed there like a live folder...
    let root = c.folder_listing(None).await.unwrap();
    assert!(root.folders.iter().any(|d| d.id == sub.id), "{root:?}");
    assert_eq!(c.folder_info(sub.id).await.unwrap().parent_id, None);
    // ...but its files are in the trash, which is the only way to tell.
    assert!(
        c.folder_listing(Some(sub.id))
            .await
            .unwrap()
            .files
            .is_empty()
    );
    assert_eq!(c.file_info(up.id).await.unwrap().status, FileStatus::Trash);
    assert!(
        c.folder_listing(Some(top.id))
            .await
            .unwrap()
            .folders
            .is_empty()
    );
}

/// Files up to 64 KiB are read whole and sent as one chunk, bigger ones
/// streamed: both sides of the edge arrive whole, with their MD5 checked,
/// and the progress callback ends at the file's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_on_both_sides_of_the_small_file_edge_arrive_whole() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let host = Host::start().await;
    let c = host.client();
    for (i, n) in [1, 65_535, 65_536, 65_537, 200_000].into_iter().enumerate() {
        let data = bytes(n, i as u8 + 3);
        let name = format!("f{n}.bin");
        let p = host.write(&name, &data);
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = Arc::clone(&seen);
        let progress: dcsync::api::Progress = Arc::new(move |d| s2.store(d, Ordering::SeqCst));
        let up = c
            .upload_file(&p, &name, None, Some(progress))
            .await
            .unwrap();
        assert_eq!(
            (up.size, up.md5.as_str()),
            (n as u64, md5_hex(&data).as_str())
        );
        assert_eq!(seen.load(Ordering::SeqCst), n as u64, "{name}: progress");
        let back = host.path(&format!("back-{name}"));
        c.download_file(up.id, &back, &Default::default(), None)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), data, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_checks_md5_and_reports_host_names() {
    let host = Host::start().await;
    let c = host.client();
    let data = bytes(300_000, 1);
    let p = host.write("photo.jpg", &data);
    let up = c.upload_file(&p, "photo.jpg", None, None).await.unwrap();
    assert_eq!(up.name, "photo.jpg");
    assert_eq!(up.size, data.len() as u64);
    assert_eq!(up.md5, md5_hex(&data));

    // Same name again: the host renames the upload.
    let up2 = c.upload_file(&p, "photo.jpg", None, None).await.unwrap();
    assert_eq!(up2.name, "photo (2).jpg");
    let up3 = c.upload_file(&p, "photo.jpg", None, None).await.unwrap();
    assert_eq!(up3.name, "photo (3).jpg");

    // Quotes are stripped on upload; an edit restores them.
    let q = c
        .upload_file(&p, "it's \"q\".jpg", None, None)
        .await
        .unwrap();
    assert_eq!(q.name, "its q.jpg");
    let fixed = c.file_rename(q.id, "it's \"q\".jpg").await.unwrap();
    assert_eq!(fixed.name, "it's \"q\".jpg");

    // Non-ASCII names survive the multipart encoding.
    let u = c
        .upload_file(&p, "résumé ü 日本.jpg", None, None)
        .await
        .unwrap();
    assert_eq!(u.name, "résumé ü 日本.jpg");

    // Empty files cannot be stored.
    let empty = host.write("empty", b"");
    let e = c
        .upload_file(&empty, "empty", None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("empty files"), "{e}");

    // Progress reaches the full size.
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s2 = seen.clone();
    let progress: Progress = Arc::new(move |n| {
        s2.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
    });
    c.upload_file(&p, "p2.jpg", None, Some(progress))
        .await
        .unwrap();
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        data.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_into_missing_folder_lands_in_root() {
    let host = Host::start().await;
    let c = host.client();
    let p = host.write("a.txt", b"abc");
    let up = c
        .upload_file(&p, "a.txt", Some(FolderId(424_242)), None)
        .await
        .unwrap();
    assert_eq!(c.file_info(up.id).await.unwrap().folder_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_info_edit_move_copy_delete() {
    let host = Host::start().await;
    let c = host.client();
    let d = c
        .folder_create("d", None, &Default::default())
        .await
        .unwrap();
    let p = host.write("doc.txt", b"document body");
    let up = c.upload_file(&p, "doc.txt", None, None).await.unwrap();

    let info = c.file_info(up.id).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.size, info.folder_id),
        ("doc.txt", 13, None)
    );
    assert_eq!(info.status, FileStatus::Active);

    let e = c
        .file_edit(up.id, Some("doc.md"), Some("text/markdown"))
        .await
        .unwrap();
    assert_eq!(e.name, "doc.md");
    assert_eq!(e.file_type.as_deref(), Some("text/markdown"));

    let m = c.file_move(up.id, Some(d.id)).await.unwrap();
    assert_eq!(m.folder_id, Some(d.id));
    let back = c.file_move(up.id, None).await.unwrap();
    assert_eq!(back.folder_id, None);

    let cp = c.file_copy(up.id, Some(d.id)).await.unwrap();
    assert_eq!(cp.original.id, up.id);
    assert_ne!(cp.copy.id, up.id);
    assert_eq!(cp.copy.folder_id, Some(d.id));
    assert_eq!(cp.copy.name, "doc.md");
    // Copy and edit create duplicates: the host does not check names.
    c.file_copy(cp.copy.id, Some(d.id)).await.unwrap();
    let l = c.folder_listing(Some(d.id)).await.unwrap();
    assert_eq!(l.files.iter().filter(|f| f.name == "doc.md").count(), 2);

    c.file_delete(up.id).await.unwrap();
    let t = c.file_info(up.id).await.unwrap();
    assert_eq!(t.status, FileStatus::Trash);
    assert_eq!(t.folder_id, None);
    assert!(c.folder_listing(None).await.unwrap().files.is_empty());
    // A trashed file cannot be moved or deleted again.
    let e = c.file_move(up.id, Some(d.id)).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    let e = c.file_info(FileId(999_999)).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let e = c
        .file_move(cp.copy.id, Some(FolderId(777_777)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("destination folder"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_is_byte_identical_and_resumes() {
    let host = Host::start().await;
    let c = host.client();
    let data = bytes(1_000_000, 2);
    let p = host.write("big.bin", &data);
    let up = c.upload_file(&p, "big.bin", None, None).await.unwrap();

    let link = c.download_link(up.id).await.unwrap();
    assert_eq!(link.filename, "big.bin");
    assert!(!format!("{link:?}").contains("download_token"));

    let out = host.path("out.bin");
    let exp = Expected {
        size: Some(data.len() as u64),
        md5: Some(up.md5.clone()),
    };
    let got = c.download_file(up.id, &out, &exp, None).await.unwrap();
    assert_eq!(got.md5, up.md5);
    assert_eq!(read(&out), data);

    // A partial file is resumed with a Range request, not fetched again.
    let part = host.path("part.bin");
    std::fs::write(&part, &data[..400_000]).unwrap();
    let got = c.download_file(up.id, &part, &exp, None).await.unwrap();
    assert_eq!(got.size, data.len() as u64);
    assert_eq!(read(&part), data);

    // A wrong expected MD5 is an integrity failure, not silent success.
    let bad = Expected {
        size: Some(data.len() as u64),
        md5: Some("0".repeat(32)),
    };
    let e = c
        .download_file(up.id, &host.path("o2"), &bad, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Integrity { .. }), "{e:?}");
    // A wrong expected size too.
    let bad = Expected {
        size: Some(5),
        md5: None,
    };
    let e = c
        .download_file(up.id, &host.path("o3"), &bad, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Integrity { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_import_fetches_in_the_background() {
    let host = Host::start().await;
    let c = host.client();
    let data = bytes(50_000, 3);
    let p = host.write("src.bin", &data);
    let up = c.upload_file(&p, "src.bin", None, None).await.unwrap();
    let dir = c
        .folder_create("imports", None, &Default::default())
        .await
        .unwrap();
    // The emulator's own download URL is a reachable local URL.
    let link = c.download_link(up.id).await.unwrap();
    let s = c.url_upload_add(&link.url, Some(dir.id)).await.unwrap();
    let id = s.scheduled_item_id.unwrap();
    let done = wait_for(Duration::from_secs(20), || async {
        c.url_upload_status(id).await.unwrap().status.as_deref() == Some("complete")
    })
    .await;
    assert!(done, "import did not complete");
    let st = c.url_upload_status(id).await.unwrap();
    let f = st.downloaded_file.unwrap();
    assert_eq!(f.size, Some(data.len() as u64));
    let l = c.folder_listing(Some(dir.id)).await.unwrap();
    assert_eq!(l.files.len(), 1);
    let out = host.path("imported");
    c.download_file(l.files[0].id, &out, &Expected::default(), None)
        .await
        .unwrap();
    assert_eq!(read(&out), data);

    let e = c.url_upload_status(999_999).await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_shared_between_processes_not_reauthorized() {
    let host = Host::start().await;
    let a = host.client();
    a.account_info().await.unwrap();
    let token_file = std::fs::read_dir(host.token_dir())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .unwrap()
        .path();
    let first = std::fs::read(&token_file).unwrap();
    // A second "process" (its own client, same store) reuses the token...
    let b = host.client();
    b.account_info().await.unwrap();
    // ...so the first is still logged in and nobody authorized again.
    a.account_info().await.unwrap();
    assert_eq!(std::fs::read(&token_file).unwrap(), first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_token_is_replaced_transparently() {
    let host = Host::start().await;
    let a = host.client();
    a.account_info().await.unwrap();
    // Another program with its own token store authorizes: that logs `a` out.
    let mut o = host.client_opts();
    o.token_store = TokenStore::Memory;
    let other = Client::new(o).unwrap();
    other.account_info().await.unwrap();
    // `a` re-authorizes once and carries on.
    a.folder_listing(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_token_expiry_is_survived() {
    let clock = dcsync_emulator::clock::ManualClock::new();
    let shared: dcsync_emulator::clock::SharedClock = clock.clone();
    let host = Host::start_with(|c| {
        c.clock = shared;
        c.token_idle_secs = 3600;
    })
    .await;
    let c = host.client();
    c.account_info().await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    c.account_info().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_disables_the_shared_token() {
    let host = Host::start().await;
    let c = host.client();
    c.account_info().await.unwrap();
    c.disable_access_token().await.unwrap();
    let left = std::fs::read_dir(host.token_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(left, 0, "the token file is gone");
    // A later call simply authorizes again.
    c.account_info().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out() {
    let host = Host::start_with(|c| c.rate_limit_rps = Some(20)).await;
    let mut o = host.client_opts();
    o.retry = RetryPolicy {
        max_attempts: 40,
        max_timeouts: 40,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
    };
    let c = Client::new(o.clone()).unwrap();
    for _ in 0..60 {
        c.folder_listing(None).await.unwrap();
    }
    // Without retries the class is visible.
    o.retry.max_attempts = 1;
    let c1 = Client::new(o).unwrap();
    let mut saw = None;
    for _ in 0..100 {
        if let Err(e) = c1.folder_listing(None).await {
            saw = Some(e);
            break;
        }
    }
    let e = saw.expect("some request is limited");
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e:?}");
    assert!(e.is_retryable());
}

/// Authorizes against a clean emulator, then restarts it with faults on.
async fn faulty(kinds: Vec<FaultKind>, rate: f64) -> Host {
    let mut host = Host::start().await;
    host.client().account_info().await.unwrap();
    host.restart_with(|c| {
        c.fault_rate = rate;
        c.fault_kinds = kinds;
        c.seed = 7;
    })
    .await;
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_kind_gets_the_right_error_class() {
    for (kind, check) in [
        (FaultKind::BadGateway, "502"),
        (FaultKind::ServerError, "500"),
        (FaultKind::Drop, "could not reach"),
    ] {
        let host = faulty(vec![kind], 1.0).await;
        let mut o = host.client_opts();
        o.retry.max_attempts = 2;
        let c = Client::new(o).unwrap();
        let e = c.folder_listing(None).await.unwrap_err();
        assert!(e.is_retryable(), "{kind:?}: {e:?}");
        assert!(e.to_string().contains(check), "{kind:?}: {e}");
        assert!(
            matches!(e, ApiError::Server { .. } | ApiError::Transport { .. }),
            "{kind:?}: {e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermittent_faults_are_retried_through() {
    let host = faulty(
        vec![
            FaultKind::BadGateway,
            FaultKind::ServerError,
            FaultKind::Drop,
        ],
        0.3,
    )
    .await;
    let c = host.client();
    for i in 0..20 {
        c.folder_create(&format!("f{i}"), None, &Default::default())
            .await
            .map(|_| ())
            .or_else(|e| match e {
                // A create whose answer was lost is reported, not repeated.
                ApiError::OutcomeUnknown { .. } => Ok(()),
                e => Err(e),
            })
            .unwrap();
        c.folder_listing(None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_downloads_resume_to_identical_bytes() {
    let mut host = Host::start().await;
    let data = bytes(2_000_000, 4);
    let p = host.write("t.bin", &data);
    let up = host
        .client()
        .upload_file(&p, "t.bin", None, None)
        .await
        .unwrap();
    host.restart_with(|c| {
        c.fault_rate = 0.6;
        c.fault_kinds = vec![FaultKind::Truncate];
        c.seed = 3;
    })
    .await;
    let c = host.client();
    let out = host.path("t.out");
    let exp = Expected {
        size: Some(data.len() as u64),
        md5: Some(up.md5.clone()),
    };
    c.download_file(up.id, &out, &exp, None).await.unwrap();
    assert_eq!(read(&out), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_outcome_unknown_for_unsafe_calls() {
    let host = faulty(vec![FaultKind::LostAnswer], 1.0).await;
    let c = host.client();
    let p = host.write("u.txt", b"uploaded once");
    let e = c.upload_file(&p, "u.txt", None, None).await.unwrap_err();
    assert!(matches!(e, ApiError::OutcomeUnknown { .. }), "{e:?}");
    assert!(e.to_string().contains("check the remote"), "{e}");
    // The work was done exactly once (reads get no fault of this kind).
    let l = c.folder_listing(None).await.unwrap();
    assert_eq!(l.files.len(), 1, "{l:?}");

    let e = c
        .folder_create("x", None, &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(c.folder_listing(None).await.unwrap().folders.len(), 1);

    // Idempotent calls are simply repeated until they get an answer...
    let id = l.files[0].id;
    let r = c.file_rename(id, "v.txt").await;
    assert!(r.is_err(), "every answer is lost at rate 1.0");
    assert_eq!(c.file_info(id).await.unwrap().name, "v.txt");
    // ...and a delete whose answer was lost is confirmed by looking.
    c.file_delete(id).await.unwrap();
    assert_eq!(c.file_info(id).await.unwrap().status, FileStatus::Trash);
}

/// The one "create a folder, adopt it if the answer was lost" helper
/// (engine, snapshot and `remote mkdir` use it): a lost answer never turns
/// into a second create, and a folder the caller knew is never taken for
/// the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_whose_create_answer_was_lost_is_adopted_not_made_again() {
    use dcsync::api::folders::{Made, create_folder};
    let host = faulty(vec![FaultKind::LostAnswer], 1.0).await;
    let c = host.client();
    let opts = Default::default();
    let first = create_folder(&c, "d", None, &opts, &|_| false)
        .await
        .unwrap();
    let Made::Found(first) = first else {
        panic!("every answer is lost: {first:?}")
    };
    assert_eq!(c.folder_listing(None).await.unwrap().folders.len(), 1);
    // The caller knows `first`: the second create made another, and that
    // one (not the known namesake) is the answer.
    let known = |id| id == first.id;
    let second = create_folder(&c, "d", None, &opts, &known).await.unwrap();
    let Made::Found(second) = second else {
        panic!("{second:?}")
    };
    assert_ne!(second.id, first.id);
    assert_eq!(c.folder_listing(None).await.unwrap().folders.len(), 2);

    let plain = Host::start().await;
    let made = create_folder(&plain.client(), "d", None, &opts, &|_| false)
        .await
        .unwrap();
    assert!(
        matches!(made, Made::Created(ref f) if f.name == "d"),
        "{made:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_an_emulator_restart() {
    let mut host = Host::start().await;
    let data = bytes(10_000, 5);
    let p = host.write("keep.bin", &data);
    let up = host
        .client()
        .upload_file(&p, "keep.bin", None, None)
        .await
        .unwrap();
    host.restart().await;
    let c = host.client();
    let out = host.path("keep.out");
    c.download_file(up.id, &out, &Expected::default(), None)
        .await
        .unwrap();
    assert_eq!(read(&out), data);
}
