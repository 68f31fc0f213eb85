//! The Local tree (`dcsync::scan`) through the public API, as the engine
//! uses it: load rules, scan on a blocking thread, rescan with Synced.

use dcsync::model::{Kind, RelPath, SyncedEntry, Tree};
use dcsync::scan::{IgnoreRules, ScanError, md5_file, scan, sha256_file};
use std::path::PathBuf;

fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_then_rescan_with_synced() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_owned();
    let body = crate::util::bytes(3 << 20, 9);
    std::fs::create_dir_all(root.join("docs/old")).unwrap();
    std::fs::write(root.join("docs/big.bin"), &body).unwrap();
    std::fs::write(root.join("docs/old/x.tmp"), b"x").unwrap();
    std::fs::write(root.join(".dcsyncignore"), "old/\n").unwrap();
    std::fs::create_dir_all(root.join(".dcsync/trash")).unwrap();

    let r = root.clone();
    let out = tokio::task::spawn_blocking(move || {
        let rules = IgnoreRules::load(&r)?;
        scan(&r, &Tree::new(), &rules)
    })
    .await
    .unwrap()
    .unwrap();
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, [".dcsyncignore", "docs", "docs/big.bin"]);
    let big = &out.view.entries[&p("docs/big.bin")];
    let (sha, n) = sha256_file(&root.join("docs/big.bin")).unwrap();
    assert_eq!(big.hashes.sha256, Some(sha));
    assert_eq!((n, big.meta.size), (body.len() as u64, body.len() as u64));
    assert_eq!(
        md5_file(&root.join("docs/big.bin")).unwrap().to_hex(),
        crate::util::md5_hex(&body)
    );
    assert_eq!(out.stats.hashed_bytes, body.len() as u64 + 5);

    let synced: Tree<SyncedEntry> = out
        .view
        .entries
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                SyncedEntry {
                    kind: e.kind,
                    local: e.meta,
                    hashes: e.hashes.clone(),
                    remote_id: 7,
                    remote_parent: None,
                    remote_name: k.name().into(),
                    size: e.meta.size,
                },
            )
        })
        .collect();
    let again = scan(&root, &synced, &IgnoreRules::load(&root).unwrap()).unwrap();
    assert_eq!(again.stats.hashed_files, 0);
    assert_eq!(again.view.entries, out.view.entries);
    assert_eq!(again.view.entries[&p("docs")].kind, Kind::Dir);
}

#[test]
fn unusable_ignore_file_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".dcsyncignore"), "*.o\nfoo\\\n").unwrap();
    let e = IgnoreRules::load(dir.path()).unwrap_err();
    assert!(
        matches!(e, ScanError::IgnoreSyntax { line: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(".dcsyncignore:2"), "{e}");
}
