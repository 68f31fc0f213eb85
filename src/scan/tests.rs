use super::*;
use crate::model::SyncedEntry;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// The Synced tree a successful sync of `view` would record.
fn synced_from(view: &LocalView) -> Tree<SyncedEntry> {
    view.entries
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                SyncedEntry {
                    kind: e.kind,
                    local: e.meta,
                    hashes: e.hashes.clone(),
                    remote_id: 1,
                    remote_parent: None,
                    remote_name: k.name().to_owned(),
                    size: e.meta.size,
                },
            )
        })
        .collect()
}

fn scan_defaults(root: &Path, synced: &Tree<SyncedEntry>) -> ScanOutcome {
    scan(root, synced, &IgnoreRules::load(root).unwrap()).unwrap()
}

/// Whether this process can read a folder without read permission (root can).
fn permissions_are_enforced(dir: &Path) -> bool {
    let probe = dir.join("probe");
    fs::create_dir(&probe).unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    let enforced = fs::read_dir(&probe).is_err();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_dir(&probe).unwrap();
    enforced
}

#[test]
fn entries_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", b"abc");
    write(root, "d/e/b.bin", b"");
    fs::create_dir(root.join("empty")).unwrap();
    let out = scan_defaults(root, &Tree::new());
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["a.txt", "d", "d/e", "d/e/b.bin", "empty"]);
    let a = &out.view.entries[&p("a.txt")];
    assert_eq!(a.kind, Kind::File);
    assert_eq!(a.meta.size, 3);
    assert_eq!(
        a.hashes.sha256.map(|h| h.to_hex()).as_deref(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(a.hashes.md5, None);
    let md = fs::metadata(root.join("a.txt")).unwrap();
    assert_eq!(a.meta.ino, md.ino());
    assert_eq!(a.meta.dev, md.dev());
    assert_eq!(
        a.meta.mtime_ns,
        md.mtime() * 1_000_000_000 + md.mtime_nsec()
    );
    let d = &out.view.entries[&p("d")];
    assert_eq!((d.kind, d.meta.size), (Kind::Dir, 0));
    assert_eq!(d.hashes, Hashes::default());
    assert_eq!(
        out.stats,
        ScanStats {
            files: 2,
            dirs: 3,
            hashed_files: 2,
            hashed_bytes: 3
        }
    );
    assert!(out.skipped.is_empty() && out.view.unknown.is_empty());
}

#[test]
fn fast_check_skips_hashing_and_mtime_change_rehashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", b"hello");
    write(root, "sub/b.txt", b"world!");
    let first = scan_defaults(root, &Tree::new());
    assert_eq!(first.stats.hashed_files, 2);

    // Synced hashes (with an MD5 the scanner never computes) are copied.
    let mut synced = synced_from(&first.view);
    let m = crate::model::Md5::from_hex(&"0d".repeat(16));
    synced.get_mut(&p("a.txt")).unwrap().hashes.md5 = m;
    let second = scan_defaults(root, &synced);
    assert_eq!(second.stats.hashed_files, 0);
    assert_eq!(second.stats.hashed_bytes, 0);
    assert_eq!(second.stats.files, 2);
    assert_eq!(second.view.entries[&p("a.txt")].hashes.md5, m);
    assert_eq!(second.view.entries, {
        let mut e = first.view.entries.clone();
        e.get_mut(&p("a.txt")).unwrap().hashes.md5 = m;
        e
    });

    // Same size and content, new mtime: read again, the MD5 is dropped.
    let f = fs::File::options()
        .write(true)
        .open(root.join("a.txt"))
        .unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    let third = scan_defaults(root, &synced);
    assert_eq!(third.stats.hashed_files, 1);
    assert_eq!(third.stats.hashed_bytes, 5);
    let a = &third.view.entries[&p("a.txt")];
    assert_eq!(a.hashes.md5, None);
    assert_eq!(
        a.hashes.sha256,
        first.view.entries[&p("a.txt")].hashes.sha256
    );

    // A Synced folder at a file's path is no fast-check match.
    let mut synced = synced_from(&third.view);
    synced.get_mut(&p("sub/b.txt")).unwrap().kind = Kind::Dir;
    assert_eq!(scan_defaults(root, &synced).stats.hashed_files, 1);
}

#[test]
fn symlinks_and_special_files_are_skipped_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write(&root, "real/x.txt", b"x");
    write(dir.path(), "outside/secret.txt", b"s");
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("link-dir")).unwrap();
    std::os::unix::fs::symlink("real/x.txt", root.join("link-file")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let out = scan_defaults(&root, &Tree::new());
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["real", "real/x.txt"]);
    let mut skipped = out.skipped.clone();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("dangling".to_string(), SYMLINK_REASON.to_string()),
            ("link-dir".into(), SYMLINK_REASON.into()),
            ("link-file".into(), SYMLINK_REASON.into()),
            ("sock".into(), "sockets are not synced".into()),
        ]
    );
    assert!(out.view.unknown.is_empty());
}

#[test]
fn non_utf8_names_are_skipped() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "ok.txt", b"1");
    let bad = root.join(OsStr::from_bytes(b"bad\xff.txt"));
    if fs::write(&bad, b"2").is_err() {
        eprintln!("filesystem refuses non-UTF-8 names; skipping");
        return;
    }
    let bad_dir = root.join(OsStr::from_bytes(b"dir\xfe"));
    fs::create_dir(&bad_dir).unwrap();
    fs::write(bad_dir.join("inner.txt"), b"3").unwrap();
    let out = scan_defaults(root, &Tree::new());
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["ok.txt"]);
    let paths: Vec<_> = out.skipped.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(paths, ["bad\u{fffd}.txt", "dir\u{fffd}"]);
    assert!(out.skipped[0].1.contains("UTF-8"));
    assert!(out.view.unknown.is_empty());
}

#[test]
fn unreadable_folder_and_file_are_unknown() {
    let dir = tempfile::tempdir().unwrap();
    if !permissions_are_enforced(dir.path()) {
        eprintln!("running with permission bypass (root?); skipping");
        return;
    }
    let root = dir.path();
    write(root, "locked/inner.txt", b"x");
    write(root, "secret.txt", b"y");
    write(root, "fine.txt", b"z");
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(root.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = scan_defaults(root, &Tree::new());
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    // The folder exists (it is listed), its content is unknown.
    assert!(out.view.entries.contains_key(&p("locked")));
    assert!(!out.view.entries.contains_key(&p("locked/inner.txt")));
    assert!(!out.view.entries.contains_key(&p("secret.txt")));
    assert!(out.view.entries.contains_key(&p("fine.txt")));
    assert!(out.view.is_unknown(&p("locked/inner.txt")));
    assert!(out.view.is_unknown(&p("secret.txt")));
    assert!(!out.view.is_unknown(&p("fine.txt")));
    assert_eq!(out.skipped.len(), 2, "{:?}", out.skipped);
}

#[test]
fn ignored_entries_are_absent_and_not_descended() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join(IGNORE_FILE), "*.log\n!keep.log\nbuild/\n").unwrap();
    for f in [
        "a.log",
        "keep.log",
        "x/keep.log",
        "build/out.bin",
        "src/build/o.bin",
        "doc.txt",
        "doc.txt~",
        ".doc.txt.swp",
        "movie.mkv.dcsync-part",
        ".DS_Store",
    ] {
        write(root, f, b"data");
    }
    // A file called `build` is not a folder: kept.
    write(root, "src/build2/build", b"f");
    let out = scan_defaults(root, &Tree::new());
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            ".dcsyncignore",
            "doc.txt",
            "keep.log",
            "src",
            "src/build2",
            "src/build2/build",
            "x",
            "x/keep.log"
        ]
    );
    assert!(out.skipped.is_empty());
    // Ignored files were not hashed.
    assert_eq!(out.stats.hashed_files, 5);
}

#[test]
fn state_folder_is_skipped_only_at_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".dcsync/state.db", b"db");
    write(root, ".dcsync/trash/old.txt", b"t");
    write(root, "sub/.dcsync/x", b"x");
    // Even a user rule cannot bring it back.
    fs::write(root.join(IGNORE_FILE), "!.dcsync\n!.dcsync/**\n").unwrap();
    let out = scan_defaults(root, &Tree::new());
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [".dcsyncignore", "sub", "sub/.dcsync", "sub/.dcsync/x"]
    );
}

#[test]
fn bad_roots_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = scan(&missing, &Tree::new(), &IgnoreRules::defaults()).unwrap_err();
    assert!(matches!(e, ScanError::RootMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("nope"));
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let e = scan(&file, &Tree::new(), &IgnoreRules::defaults()).unwrap_err();
    assert!(matches!(e, ScanError::RootNotDir { .. }), "{e:?}");
    assert!(e.to_string().contains("file"));
}

#[test]
fn large_folders_and_subfolders_match_synced_and_are_deterministic() {
    // More entries than one batch in one folder, subfolders (whose content
    // lies between their siblings in Synced order) and names that sort
    // around `/`: every file must still find its Synced entry.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..(BATCH * 2 + 7) {
        write(root, &format!("big/f{i:04}"), b"x");
    }
    for sub in [
        "big/a",
        "big/a b",
        "big/a-c",
        "big/a.d",
        "big/a0",
        "big/f0001.d",
    ] {
        for i in 0..12 {
            write(root, &format!("{sub}/g{i:02}"), b"y");
        }
    }
    write(root, "big/a/deeper/z", b"z");
    std::os::unix::fs::symlink("nowhere", root.join("big/link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("a-link")).unwrap();
    let first = scan_defaults(root, &Tree::new());
    let files = (BATCH * 2 + 7 + 6 * 12 + 1) as u64;
    assert_eq!(first.stats.files, files);
    assert_eq!(first.stats.hashed_files, files);
    assert_eq!(first.stats.dirs, 1 + 6 + 1);
    assert_eq!(
        first.skipped,
        [
            ("a-link".to_string(), SYMLINK_REASON.to_string()),
            ("big/link".into(), SYMLINK_REASON.into()),
        ]
    );
    let synced = synced_from(&first.view);
    for _ in 0..3 {
        let again = scan_defaults(root, &synced);
        assert_eq!(again.stats.hashed_files, 0);
        assert_eq!(again.stats.files, files);
        assert_eq!(again.view.entries, first.view.entries);
        assert_eq!(again.skipped, first.skipped);
    }
    // Only some files in Synced: the others are hashed, nothing else.
    let partial: Tree<SyncedEntry> = synced
        .iter()
        .filter(|(k, _)| !k.as_str().ends_with('3'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let missing = synced.len() - partial.len();
    let out = scan_defaults(root, &partial);
    assert_eq!(out.stats.hashed_files, missing as u64);
    assert_eq!(out.view.entries, first.view.entries);
}

/// Scanner micro-benchmark (not run by default): a no-change scan (every file
/// matches Synced, nothing hashed) beside `find ROOT -printf '%s %T@\n'` on the
/// same tree, best of `DCSYNC_SCAN_BENCH_RUNS` (5) each. `DCSYNC_SCAN_BENCH_FILES`
/// (100000) files of a few bytes in files/100 folders, in a temp folder (`TMPDIR`)
/// or kept in `DCSYNC_SCAN_BENCH_DIR`.
///
/// `cargo test --release -p dcsync --lib scan::tests::bench_no_change_scan -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run explicitly with --release --ignored --nocapture"]
fn bench_no_change_scan() {
    use std::time::Instant;
    let files: usize = std::env::var("DCSYNC_SCAN_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dirs = files.div_ceil(100).max(1);
    let dir = tempfile::tempdir().unwrap();
    // `DCSYNC_SCAN_BENCH_DIR`: keep the tree there and reuse it on later runs.
    let root = match std::env::var_os("DCSYNC_SCAN_BENCH_DIR") {
        Some(d) => Path::new(&d).join(format!("files-{files}")),
        None => dir.path().join("root"),
    };
    if !root.exists() {
        let tmp = root.with_extension("tmp");
        let _ = fs::remove_dir_all(&tmp);
        for d in 0..dirs {
            let sub = tmp.join(format!("dir-{d:05}"));
            fs::create_dir_all(&sub).unwrap();
            for f in (d * 100)..((d + 1) * 100).min(files) {
                fs::write(sub.join(format!("file-{f:07}.txt")), f.to_string()).unwrap();
            }
        }
        fs::rename(&tmp, &root).unwrap();
    }
    let rules = IgnoreRules::load(&root).unwrap();
    let t = Instant::now();
    let first = scan(&root, &Tree::new(), &rules).unwrap();
    println!(
        "scan bench: first scan (hashes every file): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(first.stats.files, files as u64);
    let synced = synced_from(&first.view);

    let runs: usize = std::env::var("DCSYNC_SCAN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // CPU time (user + sys, clock ticks) of this process and of its waited-for
    // children, from /proc/self/stat (fields 14-17); 0 where unavailable.
    let cpu = || -> (f64, f64) {
        let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        if f.len() < 4 {
            return (0.0, 0.0);
        }
        // USER_HZ is 100 on Linux.
        ((f[0] + f[1]) * 10.0, (f[2] + f[3]) * 10.0)
    };
    let mut best_scan = Duration::MAX;
    let mut best_find = Duration::MAX;
    let (mut cpu_scan, mut cpu_find) = (0.0, 0.0);
    for _ in 0..runs {
        let c0 = cpu();
        let t = Instant::now();
        let out = scan(&root, &synced, &rules).unwrap();
        best_scan = best_scan.min(t.elapsed());
        cpu_scan += cpu().0 - c0.0;
        assert_eq!(out.stats.hashed_files, 0);
        assert_eq!(out.view.entries.len(), first.view.entries.len());
        drop(out);

        let c0 = cpu();
        let t = Instant::now();
        let st = std::process::Command::new("find")
            .arg(&root)
            .args(["-printf", "%s %T@\\n"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        best_find = best_find.min(t.elapsed());
        cpu_find += cpu().1 - c0.1;
        assert!(st.success());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "scan bench: {files} files in {dirs} folders: scan {:.1} ms, find {:.1} ms, ratio {:.2}x \
         (wall, best of {runs}); CPU per pass (mean): scan {:.0} ms, find {:.0} ms",
        ms(best_scan),
        ms(best_find),
        best_scan.as_secs_f64() / best_find.as_secs_f64(),
        cpu_scan / runs as f64,
        cpu_find / runs as f64,
    );
}

/// A scoped scan is the same cut of a whole scan, whatever the scopes and
/// whatever sits on their spines.
#[test]
fn scoped_scans_equal_the_cut_of_a_whole_scan() {
    use crate::model::{Scope, restrict};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for f in [
        "top.txt",
        "a/b/c/d.txt",
        "a/b/e.txt",
        "a/b.txt",
        "a/b-1/f.txt",
        "a/x.txt",
        "x/y/z.txt",
        "ign/q.txt",
        "a/b/ign/r.txt",
    ] {
        write(root, f, f.as_bytes());
    }
    write(root, IGNORE_FILE, b"ign/\n");
    std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
    let rules = IgnoreRules::load(root).unwrap();
    let whole = scan(root, &Tree::new(), &rules).unwrap();
    let synced = synced_from(&whole.view);
    // With Synced the fast check keeps the hashes: same result again.
    let whole = scan(root, &synced, &rules).unwrap();
    let scope = |b: &str, deep| Scope { base: p(b), deep };
    for scopes in [
        vec![scope("a/b", true)],
        vec![scope("", false)],
        vec![scope("", false), scope("a/b", true), scope("x", true)],
        vec![scope("a", false)],
        vec![scope("missing/deeper", true)],
        vec![scope("a/b.txt", true)],
        vec![scope("link", true)],
        vec![scope("ign", true)],
        vec![scope("a/b/ign", true)],
    ] {
        let part = scan_scoped(root, &restrict(&synced, &scopes), &rules, &scopes).unwrap();
        assert_eq!(
            part.view.entries,
            restrict(&whole.view.entries, &scopes),
            "{scopes:?}"
        );
        assert!(part.view.unknown.is_empty(), "{scopes:?}");
        assert_eq!(
            part.stats.hashed_files, 0,
            "{scopes:?}: the fast check applies"
        );
    }
}
