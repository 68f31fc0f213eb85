//! The Remote tree (`dcsync::snapshot`) against the emulator: nested
//! listings, duplicate names, listing failures, resolving the remote root.

use crate::util::*;
use dcsync::api::*;
use dcsync::model::{Kind, RelPath, RemoteEntry};
use dcsync::snapshot::{SnapshotError, resolve_root, snapshot};
use dcsync_emulator::FaultKind;

fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

async fn mkdir(c: &Client, name: &str, parent: Option<FolderId>) -> FolderId {
    c.folder_create(name, parent, &FolderOptions::default())
        .await
        .unwrap()
        .id
}

async fn upload(host: &Host, c: &Client, name: &str, body: &[u8], to: Option<FolderId>) -> FileId {
    let src = host.write(&format!("src/{name}"), body);
    c.upload_file(&src, name, to, None).await.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_tree_is_listed_with_ids_and_parents() {
    let host = Host::start().await;
    let c = host.client();
    let top = mkdir(&c, "top", None).await;
    let sub = mkdir(&c, "sub", Some(top)).await;
    let empty = mkdir(&c, "empty", None).await;
    let a = upload(&host, &c, "a.txt", b"aaa", None).await;
    let b = upload(&host, &c, "b.bin", &bytes(5000, 1), Some(top)).await;
    let d = upload(&host, &c, "deep.txt", b"deep", Some(sub)).await;

    let out = snapshot(&c, None, 3).await;
    assert!(out.view.unknown.is_empty(), "{:?}", out.skipped);
    assert!(out.skipped.is_empty());
    let e = &out.view.entries;
    let keys: Vec<_> = e.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "a.txt",
            "empty",
            "top",
            "top/b.bin",
            "top/sub",
            "top/sub/deep.txt"
        ]
    );
    let file = |id: FileId, parent: Option<FolderId>, size| RemoteEntry {
        kind: Kind::File,
        id: id.0,
        parent: parent.map(|f| f.0),
        size,
    };
    let dir = |id: FolderId, parent: Option<FolderId>| RemoteEntry {
        kind: Kind::Dir,
        id: id.0,
        parent: parent.map(|f| f.0),
        size: 0,
    };
    assert_eq!(e[&p("a.txt")], file(a, None, 3));
    assert_eq!(e[&p("empty")], dir(empty, None));
    assert_eq!(e[&p("top")], dir(top, None));
    assert_eq!(e[&p("top/b.bin")], file(b, Some(top), 5000));
    assert_eq!(e[&p("top/sub")], dir(sub, Some(top)));
    assert_eq!(e[&p("top/sub/deep.txt")], file(d, Some(sub), 4));
    assert_eq!(out.stats.folders_listed, 4);
    assert_eq!(out.stats.api_calls, 4);
    assert_eq!((out.stats.files, out.stats.folders), (3, 3));

    // Rooted at a folder: paths relative to it, parents are real ids.
    let out = snapshot(&c, Some(top), 1).await;
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["b.bin", "sub", "sub/deep.txt"]);
    assert_eq!(out.view.entries[&p("b.bin")].parent, Some(top.0));
    assert_eq!(out.stats.folders_listed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_names_get_distinct_stable_local_names() {
    let host = Host::start().await;
    let c = host.client();
    let d1 = mkdir(&c, "dup", None).await;
    let d2 = mkdir(&c, "dup", None).await;
    upload(&host, &c, "inside.txt", b"i", Some(d1)).await;
    upload(&host, &c, "other.txt", b"o", Some(d2)).await;
    let f = upload(&host, &c, "same.txt", b"same", None).await;
    let copy = c.file_copy(f, None).await.unwrap().copy.id;
    upload(&host, &c, "alone.txt", b"alone", None).await;

    let out = snapshot(&c, None, 4).await;
    let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "alone.txt",
            "dup",
            "dup (duplicate 2)",
            "dup (duplicate 2)/other.txt",
            "dup/inside.txt",
            "same (duplicate 2).txt",
            "same.txt"
        ]
    );
    // The older entry keeps the name; the mapping is by id, so it is stable.
    assert_eq!(out.view.entries[&p("dup")].id, d1.0);
    assert_eq!(out.view.entries[&p("same (duplicate 2).txt")].id, copy.0);
    assert!(out.view.unknown.is_empty());
    assert!(out.skipped.is_empty());
    assert_eq!(out.mapped.len(), 2, "{:?}", out.mapped);
    let again = snapshot(&c, None, 4).await;
    assert_eq!(again.view.entries, out.view.entries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_root_listing_makes_everything_unknown() {
    let mut host = Host::start().await;
    let c = host.client();
    mkdir(&c, "x", None).await;
    upload(&host, &c, "a.txt", b"a", None).await;
    host.restart_with(|cfg| {
        cfg.fault_rate = 1.0;
        cfg.fault_kinds = vec![FaultKind::BadGateway];
    })
    .await;
    let mut o = host.client_opts();
    o.retry.max_attempts = 2;
    let c = Client::new(o).unwrap();
    let out = snapshot(&c, None, 4).await;
    assert!(out.view.entries.is_empty());
    assert_eq!(out.view.unknown, [RelPath::root()]);
    assert!(out.view.is_unknown(&p("a.txt")));
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].0, "/");
    assert!(out.skipped[0].1.contains("502"), "{:?}", out.skipped);
    assert_eq!((out.stats.folders_listed, out.stats.api_calls), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_root_finds_creates_and_refuses_ambiguity() {
    let host = Host::start().await;
    let c = host.client();
    assert_eq!(resolve_root(&c, "", false).await.unwrap(), None);
    assert_eq!(resolve_root(&c, "/", false).await.unwrap(), None);

    let e = resolve_root(&c, "/backup/photos", false).await.unwrap_err();
    assert!(
        matches!(&e, SnapshotError::NotFound { path } if path == "/backup"),
        "{e:?}"
    );
    assert!(c.folder_listing(None).await.unwrap().folders.is_empty());

    let id = resolve_root(&c, "/backup/photos/", true)
        .await
        .unwrap()
        .unwrap();
    let backup = c.folder_listing(None).await.unwrap().folders;
    assert_eq!(backup.len(), 1);
    let photos = c.folder_listing(Some(backup[0].id)).await.unwrap().folders;
    assert_eq!((photos.len(), photos[0].id), (1, id));
    // Resolving again finds the same folder and creates nothing.
    assert_eq!(
        resolve_root(&c, "backup//photos", true).await.unwrap(),
        Some(id)
    );
    assert_eq!(c.folder_listing(None).await.unwrap().folders.len(), 1);

    // Two folders of one name: refuse, naming both ids.
    let a1 = mkdir(&c, "amb", Some(id)).await;
    let a2 = mkdir(&c, "amb", Some(id)).await;
    let e = resolve_root(&c, "/backup/photos/amb/x", true)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SnapshotError::Ambiguous { .. }), "{e:?}");
    assert!(
        msg.contains(&a1.to_string()) && msg.contains(&a2.to_string()),
        "{msg}"
    );
    assert!(msg.contains("/backup/photos/amb"), "{msg}");

    // A file in the way is not a folder.
    upload(&host, &c, "f.txt", b"f", Some(id)).await;
    let e = resolve_root(&c, "/backup/photos/f.txt", true)
        .await
        .unwrap_err();
    assert!(matches!(e, SnapshotError::NotAFolder { .. }), "{e:?}");

    let e = resolve_root(&c, "/a/../b", true).await.unwrap_err();
    assert!(matches!(e, SnapshotError::Invalid { .. }), "{e:?}");
}
