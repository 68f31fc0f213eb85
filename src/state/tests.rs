use super::schema::{MIGRATIONS, Migration};
use super::*;
use crate::model::{Hashes, Kind, LocalMeta, RelPath, SyncedEntry};
use maintain::{INCREMENTAL_MIN_PAGES, WAL_LIMIT_BYTES};
use tempfile::TempDir;

fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

fn file(id: u64) -> SyncedEntry {
    SyncedEntry {
        kind: Kind::File,
        local: LocalMeta {
            dev: 1,
            ino: id,
            size: 10,
            mtime_ns: 1_700_000_000_000_000_000,
        },
        hashes: Hashes {
            sha256: crate::model::Sha256::from_hex(&"ab".repeat(32)),
            md5: crate::model::Md5::from_hex(&"cd".repeat(16)),
        },
        remote_id: id,
        remote_parent: Some(1),
        remote_name: format!("f{id}"),
        size: 10,
    }
}

fn dir(id: u64) -> SyncedEntry {
    SyncedEntry {
        kind: Kind::Dir,
        local: LocalMeta::default(),
        hashes: Hashes::default(),
        remote_id: id,
        remote_parent: None,
        remote_name: format!("d{id}"),
        size: 0,
    }
}

fn tmp() -> (TempDir, std::path::PathBuf) {
    let d = TempDir::new().unwrap();
    let path = db_path_for(d.path(), "k");
    (d, path)
}

fn paths(db: &StateDb) -> Vec<String> {
    db.load_synced()
        .unwrap()
        .keys()
        .map(|k| k.as_str().to_owned())
        .collect()
}

fn put_all(db: &mut StateDb, ps: &[&str]) {
    let changes: Vec<Change> = ps
        .iter()
        .enumerate()
        .map(|(i, s)| Change::Put(p(s), file(i as u64 + 100)))
        .collect();
    db.apply(&changes).unwrap();
}

#[test]
fn paths_and_keys() {
    let d = std::path::Path::new("/s");
    assert_eq!(
        db_path_for(d, "abc"),
        std::path::Path::new("/s/pairs/abc.db")
    );
    let k = pair_key(
        std::path::Path::new("/home/u/Sync"),
        "https://h/api/v2",
        "/backup",
    );
    assert_eq!(k.len(), 16);
    assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        k,
        pair_key(
            std::path::Path::new("/home/u/Sync"),
            "https://h/api/v2",
            "/backup"
        )
    );
    assert_ne!(
        k,
        pair_key(
            std::path::Path::new("/home/u/Sync"),
            "https://h/api/v2",
            "/backup2"
        )
    );
    // Length prefixes: moving a character between parts changes the key.
    assert_ne!(
        pair_key(std::path::Path::new("/a"), "bc", "d"),
        pair_key(std::path::Path::new("/ab"), "c", "d")
    );
}

#[test]
fn round_trip_every_field() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let big = SyncedEntry {
        kind: Kind::File,
        local: LocalMeta {
            dev: u64::MAX,
            ino: u64::MAX - 1,
            size: 7,
            mtime_ns: -5,
        },
        hashes: Hashes {
            sha256: crate::model::Sha256::from_hex(&"00ff".repeat(16)),
            md5: None,
        },
        remote_id: u64::MAX - 2,
        remote_parent: Some(u64::MAX - 3),
        remote_name: "Ünïcode name.txt".into(),
        size: 9,
    };
    let entries = vec![
        (p("a"), dir(1)),
        (p("a/x y"), big.clone()),
        (p("a/f"), file(3)),
        (RelPath::root(), dir(0)),
    ];
    db.apply(
        &entries
            .iter()
            .map(|(k, v)| Change::Put(k.clone(), v.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    drop(db);
    let db = StateDb::open(&path).unwrap();
    let tree = db.load_synced().unwrap();
    assert_eq!(tree.len(), 4);
    for (k, v) in &entries {
        assert_eq!(tree.get(k), Some(v), "{k}");
        assert_eq!(db.get_synced(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(db.get_synced(&p("nope")).unwrap(), None);
    assert_eq!(db.synced_len().unwrap(), 4);
}

#[test]
fn remove_tree_is_exact_on_components() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let all = ["a", "a/b", "a/b/c", "ab", "a.txt", "a0", "a-b", "b", "b/a"];
    put_all(&mut db, &all);
    db.apply(&[Change::RemoveTree(p("a"))]).unwrap();
    assert_eq!(paths(&db), ["a-b", "a.txt", "a0", "ab", "b", "b/a"]);
    db.apply(&[Change::RemoveTree(p("nothing/here"))]).unwrap();
    assert_eq!(db.synced_len().unwrap(), 6);
    db.apply(&[Change::RemoveTree(RelPath::root())]).unwrap();
    assert_eq!(db.synced_len().unwrap(), 0);
}

#[test]
fn move_tree_is_exact_and_replaces_destinations() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    put_all(
        &mut db,
        &["a", "a/b", "a/b/c", "ab", "ab/x", "a.txt", "z", "z/b"],
    );
    let moved = db.get_synced(&p("a/b/c")).unwrap().unwrap();
    db.apply(&[Change::MoveTree {
        from: p("a"),
        to: p("z"),
    }])
    .unwrap();
    assert_eq!(paths(&db), ["a.txt", "ab", "ab/x", "z", "z/b", "z/b/c"]);
    assert_eq!(db.get_synced(&p("z/b/c")).unwrap(), Some(moved.clone()));
    // z/b was replaced by the moved a/b.
    assert_eq!(db.get_synced(&p("z/b")).unwrap().unwrap().remote_id, 101);

    // Into its own subtree, out of it, and to and from the root.
    db.apply(&[Change::MoveTree {
        from: p("z"),
        to: p("z/q"),
    }])
    .unwrap();
    assert_eq!(
        paths(&db),
        ["a.txt", "ab", "ab/x", "z/q", "z/q/b", "z/q/b/c"]
    );
    db.apply(&[Change::MoveTree {
        from: p("z/q/b"),
        to: RelPath::root(),
    }])
    .unwrap();
    assert_eq!(db.get_synced(&p("c")).unwrap(), Some(moved));
    db.apply(&[Change::MoveTree {
        from: p("ab"),
        to: p("ab"),
    }])
    .unwrap();
    assert!(db.get_synced(&p("ab/x")).unwrap().is_some());
    // A missing source moves nothing.
    db.apply(&[Change::MoveTree {
        from: p("none"),
        to: p("x"),
    }])
    .unwrap();
    assert!(db.get_synced(&p("x")).unwrap().is_none());
}

#[test]
fn apply_is_atomic() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    put_all(&mut db, &["keep"]);
    // Sabotage the second statement of the batch: a trigger makes it fail.
    db.conn
        .execute_batch(
            "CREATE TRIGGER no_bad BEFORE INSERT ON synced WHEN NEW.path = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let r = db.apply(&[
        Change::RemoveTree(p("keep")),
        Change::Put(p("bad"), file(1)),
    ]);
    assert!(matches!(r, Err(StateError::Sqlite { .. })), "{r:?}");
    assert_eq!(paths(&db), ["keep"]);
}

#[test]
fn journal_done_is_atomic_and_pending_survives_crash() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let a = db
        .journal_begin(r#"{"op":"upload","path":"a"}"#, "t1")
        .unwrap();
    let b = db
        .journal_begin(r#"{"op":"mkdir","path":"d"}"#, "t2")
        .unwrap();
    let c = db
        .journal_begin(r#"{"op":"delete","path":"x"}"#, "t3")
        .unwrap();
    assert!(a < b && b < c);
    // Nothing in Synced until done.
    assert_eq!(db.synced_len().unwrap(), 0);
    db.journal_done(a, &[Change::Put(p("a"), file(7))], "t4")
        .unwrap();
    assert_eq!(db.get_synced(&p("a")).unwrap(), Some(file(7)));
    db.journal_abandon(c, "t5").unwrap();

    // Done twice, abandon after done, unknown id: refused, nothing applied.
    let r = db.journal_done(a, &[Change::Put(p("again"), file(8))], "t6");
    assert!(
        matches!(&r, Err(StateError::NotPending { found, .. }) if found == "done"),
        "{r:?}"
    );
    assert!(db.get_synced(&p("again")).unwrap().is_none());
    let r = db.journal_abandon(a, "t6");
    assert!(matches!(&r, Err(StateError::NotPending { .. })));
    let r = db.journal_done(999, &[], "t6");
    assert!(matches!(&r, Err(StateError::NotPending { found, .. }) if found == "missing"));

    // A failing change rolls back the done mark too.
    db.conn
        .execute_batch(
            "CREATE TRIGGER no_bad BEFORE INSERT ON synced WHEN NEW.path = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let r = db.journal_done(
        b,
        &[Change::Put(p("d"), dir(2)), Change::Put(p("bad"), dir(3))],
        "t7",
    );
    assert!(r.is_err());
    assert!(db.get_synced(&p("d")).unwrap().is_none());

    // Crash: drop with b still an intent.
    drop(db);
    let mut db = StateDb::open(&path).unwrap();
    assert_eq!(
        db.journal_pending().unwrap(),
        vec![(b, r#"{"op":"mkdir","path":"d"}"#.to_owned())]
    );
    assert_eq!(db.status_counts().unwrap().pending_ops, 1);
    db.journal_done(b, &[Change::Put(p("d"), dir(2))], "t8")
        .unwrap();
    assert!(db.journal_pending().unwrap().is_empty());
    let (created, updated): (String, String) = db
        .conn
        .query_row(
            "SELECT created_at, updated_at FROM journal WHERE id = ?1",
            [b],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((created.as_str(), updated.as_str()), ("t2", "t8"));
}

#[test]
fn journal_prune_keeps_newest_finished_and_all_intents() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let ids: Vec<i64> = (0..6)
        .map(|i| db.journal_begin(&format!("{i}"), "t").unwrap())
        .collect();
    for &id in &ids[..4] {
        db.journal_done(id, &[], "t").unwrap();
    }
    db.journal_abandon(ids[4], "t").unwrap();
    // Finished: 0..=4; intent: 5.
    assert_eq!(db.journal_prune(2).unwrap(), 3);
    let left: Vec<i64> = db
        .conn
        .prepare("SELECT id FROM journal ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left, vec![ids[3], ids[4], ids[5]]);
    assert_eq!(db.journal_prune(0).unwrap(), 2);
    assert_eq!(
        db.journal_pending().unwrap(),
        vec![(ids[5], "5".to_owned())]
    );
}

#[test]
fn status_meta_skipped_conflicts() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    assert_eq!(db.get_meta("last_pass").unwrap(), None);
    db.set_meta("last_pass", "t1").unwrap();
    db.set_meta("last_pass", "t2").unwrap();
    assert_eq!(db.get_meta("last_pass").unwrap().as_deref(), Some("t2"));

    db.set_skipped(
        Side::Local,
        &[
            (p("a:b"), "name invalid remotely".into()),
            (p("c"), "too long".into()),
        ],
        "t1",
    )
    .unwrap();
    db.set_skipped(Side::Remote, &[(p("c"), "mangled".into())], "t1")
        .unwrap();
    // Replace the local set: a:b unchanged keeps its since, c's reason changes,
    // d is new, and nothing of the remote side is touched.
    db.set_skipped(
        Side::Local,
        &[
            (p("a:b"), "name invalid remotely".into()),
            (p("c"), "other".into()),
            (p("d"), "x".into()),
        ],
        "t2",
    )
    .unwrap();
    let s = db.skipped().unwrap();
    let got: Vec<(&str, Side, &str, &str)> = s
        .iter()
        .map(|e| (e.path.as_str(), e.side, e.reason.as_str(), e.since.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a:b", Side::Local, "name invalid remotely", "t1"),
            ("c", Side::Local, "other", "t2"),
            ("c", Side::Remote, "mangled", "t1"),
            ("d", Side::Local, "x", "t2"),
        ]
    );
    db.set_skipped(Side::Local, &[], "t3").unwrap();
    assert_eq!(db.skipped().unwrap().len(), 1);

    let id = db
        .add_conflict(&p("doc.txt"), &p("doc (conflict 1).txt"), Side::Local, "t4")
        .unwrap();
    assert_eq!(
        db.conflicts().unwrap(),
        vec![ConflictEntry {
            id,
            path: p("doc.txt"),
            copy_path: p("doc (conflict 1).txt"),
            copy_from: Side::Local,
            created_at: "t4".into()
        }]
    );

    db.apply(&[
        Change::Put(p("d"), dir(1)),
        Change::Put(p("d/f"), file(2)),
        Change::Put(p("g"), file(3)),
    ])
    .unwrap();
    db.journal_begin("{}", "t5").unwrap();
    assert_eq!(
        db.status_counts().unwrap(),
        StatusCounts {
            files: 2,
            folders: 1,
            bytes: 20,
            pending_ops: 1,
            skipped: 1,
            conflicts: 1
        }
    );
    assert!(db.remove_conflict(id).unwrap());
    assert!(!db.remove_conflict(id).unwrap());
}

#[cfg(unix)]
#[test]
fn file_modes_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new().unwrap();
    let state = d.path().join("state");
    let path = db_path_for(&state, "k");
    let mut db = StateDb::open(&path).unwrap();
    db.set_meta("x", "y").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    assert!(wal.exists(), "WAL mode is on");
    assert_eq!(mode(&wal), 0o600);
    drop(db);

    // A pre-existing file with loose permissions is tightened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _db = StateDb::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn pragmas_are_set() {
    let (_d, path) = tmp();
    let db = StateDb::open(&path).unwrap();
    let q = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let mode: String = db
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(q("PRAGMA synchronous"), 1); // NORMAL
    assert_eq!(q("PRAGMA foreign_keys"), 1);
    assert_eq!(q("PRAGMA busy_timeout"), 5000);
    assert_eq!(q("PRAGMA user_version"), MIGRATIONS.len() as i64);
}

#[test]
fn too_new_is_refused_and_left_untouched() {
    let (_d, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let e = StateDb::open(&path).unwrap_err();
    match &e {
        StateError::TooNew {
            found, supported, ..
        } => {
            assert_eq!(*found, 99);
            assert_eq!(*supported as usize, MIGRATIONS.len());
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("upgrade dcsync"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(!e.is_retryable());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    assert!(!wal.exists());
}

#[test]
fn garbage_file_is_corrupt() {
    let (_d, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let e = StateDb::open(&path).unwrap_err();
    assert!(matches!(e, StateError::Corrupt { .. }), "{e:?}");
    assert!(
        e.to_string().contains("delete it to resync from scratch"),
        "{e}"
    );
}

#[test]
fn reopen_is_idempotent() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    put_all(&mut db, &["a"]);
    drop(db);
    for _ in 0..3 {
        let db = StateDb::open(&path).unwrap();
        assert_eq!(paths(&db), ["a"]);
        let v: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }
}

/// The v1 schema as it shipped, written by hand (never by the migration
/// code): opening such a file must keep its data and bring it up to date.
const V1_SCHEMA: &str = include_str!("../../migrations/0001_init.sql");

fn make_v1(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(V1_SCHEMA).unwrap();
    c.execute_batch(
        "INSERT INTO synced VALUES ('a', 'dir', 0, 0, 0, 0, 0, NULL, NULL, 5, NULL, 'a');
         INSERT INTO synced VALUES ('a/f', 'file', 1, 2, 3, 3, 4, 'AA' || printf('%.62c', 'a'), printf('%.32c', 'b'), 6, 5, 'f');
         INSERT INTO journal (op, state, created_at, updated_at) VALUES ('{}', 'intent', 't', 't');
         PRAGMA user_version = 1;",
    )
    .unwrap();
}

#[test]
fn upgrade_from_v1() {
    let (_d, path) = tmp();
    make_v1(&path);
    // With today's migrations.
    let db = StateDb::open(&path).unwrap();
    assert_eq!(paths(&db), ["a", "a/f"]);
    let f = db.get_synced(&p("a/f")).unwrap().unwrap();
    assert_eq!(
        (
            f.local.dev,
            f.local.ino,
            f.size,
            f.local.mtime_ns,
            f.remote_parent
        ),
        (1, 2, 3, 4, Some(5))
    );
    // Stored as text, read as digests (either case), written back lower-case.
    assert_eq!(f.hashes.sha256.map(|h| h.to_hex()), Some("a".repeat(64)));
    assert_eq!(f.hashes.md5.map(|h| h.to_hex()), Some("b".repeat(32)));
    assert_eq!(db.journal_pending().unwrap().len(), 1);
    drop(db);

    // With a later migration: only it runs, and data survives.
    let mut later: Vec<Migration> = MIGRATIONS.to_vec();
    later.push(Migration {
        name: "9999_test.sql",
        sql: "ALTER TABLE synced ADD COLUMN note TEXT; UPDATE synced SET note = 'n';",
    });
    let db = StateDb::open_with(&path, &later).unwrap();
    let v: i64 = db
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, later.len() as i64);
    let notes: i64 = db
        .conn
        .query_row("SELECT count(*) FROM synced WHERE note = 'n'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(notes, 2);
    assert_eq!(paths(&db), ["a", "a/f"]);
    drop(db);
    // The older binary now refuses it.
    assert!(matches!(
        StateDb::open(&path),
        Err(StateError::TooNew { .. })
    ));
}

#[test]
fn failed_migration_changes_nothing() {
    let (_d, path) = tmp();
    make_v1(&path);
    let mut later: Vec<Migration> = MIGRATIONS.to_vec();
    later.push(Migration {
        name: "9999_broken.sql",
        sql: "ALTER TABLE synced ADD COLUMN note TEXT; THIS IS NOT SQL;",
    });
    assert!(StateDb::open_with(&path, &later).is_err());
    let db = StateDb::open(&path).unwrap();
    let v: i64 = db
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // The good migrations ran; the broken one left nothing behind.
    assert_eq!(v, MIGRATIONS.len() as i64);
    let has_note: i64 = db
        .conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('synced') WHERE name = 'note'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_note, 0);
}

#[test]
fn migrations_are_numbered_in_order() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert!(m.name.starts_with(&format!("{:04}_", i + 1)), "{}", m.name);
        assert!(m.name.ends_with(".sql"));
        let upper = m.sql.to_ascii_uppercase();
        assert!(
            !upper.contains("BEGIN TRANSACTION") && !upper.contains("COMMIT"),
            "{}",
            m.name
        );
    }
}

#[test]
fn busy_is_retryable() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    db.conn
        .busy_timeout(std::time::Duration::from_millis(10))
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta VALUES ('k', 'v');")
        .unwrap();
    let e = db.set_meta("x", "y").unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    other.execute_batch("COMMIT").unwrap();
    db.set_meta("x", "y").unwrap();
}

/// 100k entries: one batch and one load. Timed loosely (debug builds run
/// the tests); `cargo test --release` shows the real numbers.
#[test]
fn large_batch() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let changes: Vec<Change> = (0..100_000u64)
        .map(|i| Change::Put(p(&format!("d{}/f{i}", i % 100)), file(i)))
        .collect();
    let t = std::time::Instant::now();
    db.apply(&changes).unwrap();
    let applied = t.elapsed();
    let t = std::time::Instant::now();
    let tree = db.load_synced().unwrap();
    let loaded = t.elapsed();
    eprintln!("apply 100k: {applied:?}, load 100k: {loaded:?}");
    assert_eq!(tree.len(), 100_000);
    let t = std::time::Instant::now();
    db.apply(&[
        Change::MoveTree {
            from: p("d7"),
            to: p("e7"),
        },
        Change::RemoveTree(p("d8")),
    ])
    .unwrap();
    eprintln!("move+remove 2k: {:?}", t.elapsed());
    assert_eq!(db.synced_len().unwrap(), 99_000);
    assert!(applied.as_secs() < 20 && loaded.as_secs() < 20);
}

#[test]
fn scoped_loads_equal_the_cut_of_the_whole_tree() {
    use crate::model::{Scope, restrict};
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    put_all(
        &mut db,
        &[
            "a", "a/b", "a/b/c", "a/b/c/d", "a/b.txt", "a/b-1/e", "a/x", "x", "x/y", "y",
        ],
    );
    let whole = db.load_synced().unwrap();
    for scopes in [
        vec![Scope {
            base: p("a/b"),
            deep: true,
        }],
        vec![Scope {
            base: RelPath::root(),
            deep: false,
        }],
        vec![
            Scope {
                base: p("a"),
                deep: false,
            },
            Scope {
                base: p("x"),
                deep: true,
            },
        ],
        vec![Scope {
            base: RelPath::root(),
            deep: true,
        }],
        vec![Scope {
            base: p("nowhere/deep"),
            deep: true,
        }],
    ] {
        assert_eq!(
            db.load_synced_scoped(&scopes).unwrap(),
            restrict(&whole, &scopes),
            "{scopes:?}"
        );
    }
    assert_eq!(db.synced_files().unwrap(), 10);
}

#[test]
fn skipped_notes_of_a_part_replace_only_that_part() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let notes = |v: &[(&str, &str)]| -> Vec<(RelPath, String)> {
        v.iter().map(|(a, b)| (p(a), (*b).to_owned())).collect()
    };
    db.set_skipped(
        Side::Local,
        &notes(&[("d/a", "r1"), ("d/b", "r2"), ("e/c", "r3")]),
        "t1",
    )
    .unwrap();
    // A pass that looked only below d: d/a is gone, d/b stays (keeps its
    // since), d/n is new, e/c is untouched.
    db.set_skipped_where(
        Side::Local,
        &notes(&[("d/b", "r2"), ("d/n", "r4")]),
        "t2",
        |s| s.starts_with("d/"),
    )
    .unwrap();
    let got: Vec<(String, String)> = db
        .skipped()
        .unwrap()
        .into_iter()
        .map(|e| (e.path.as_str().to_owned(), e.since))
        .collect();
    let want: Vec<(String, String)> = [("d/b", "t1"), ("d/n", "t2"), ("e/c", "t1")]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_damaged_hash_is_reported_not_guessed() {
    let (_d, path) = tmp();
    make_v1(&path);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("UPDATE synced SET sha256 = 'zz' WHERE path = 'a/f'", [])
            .unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    let err = db.load_synced().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("a/f"), "{err}");
}

#[test]
fn an_open_intent_learns_what_its_op_made() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    let id = db.journal_begin(r#"{"op":"upload"}"#, "t1").unwrap();
    db.journal_update(id, r#"{"op":"upload","placed":7}"#, "t2")
        .unwrap();
    assert_eq!(
        db.journal_pending().unwrap(),
        [(id, r#"{"op":"upload","placed":7}"#.to_owned())]
    );
    db.journal_done(id, &[], "t3").unwrap();
    assert!(matches!(
        db.journal_update(id, "{}", "t4"),
        Err(StateError::NotPending { .. })
    ));
}

#[test]
fn conflicts_recorded_before_sides_existed_read_as_local_copies() {
    let (_d, path) = tmp();
    let first: Vec<Migration> = MIGRATIONS[..1].to_vec();
    {
        let db = StateDb::open_with(&path, &first).unwrap();
        db.conn
            .execute(
                "INSERT INTO conflicts (path, copy_path, created_at) VALUES ('a', 'a (c)', 't')",
                [],
            )
            .unwrap();
    }
    let mut db = StateDb::open(&path).unwrap();
    let c = db.conflicts().unwrap();
    assert_eq!(c[0].copy_from, Side::Local);
    db.add_conflict(&p("b"), &p("b (c)"), Side::Remote, "t2")
        .unwrap();
    assert_eq!(db.conflicts().unwrap()[1].copy_from, Side::Remote);
}

/// Files and folders have separate id spaces on the host: a folder 6 must
/// not stand for the file 6 that dcsync made and no listing showed yet.
#[test]
fn unlisted_entries_are_kept_per_kind() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    db.apply(&[Change::Made(Kind::File, 6), Change::Made(Kind::Dir, 7)])
        .unwrap();
    let got = db.unlisted().unwrap();
    assert!(got.contains(&(Kind::File, 6)) && got.contains(&(Kind::Dir, 7)));
    // A folder 6 listed says nothing about the file 6.
    db.drop_unlisted(&[(Kind::Dir, 6), (Kind::Dir, 7)]).unwrap();
    let got = db.unlisted().unwrap();
    assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(Kind::File, 6)]);
    // Kept across a reopen (it is in the database, not in memory).
    drop(db);
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.unlisted().unwrap().len(), 1);
}

/// One host file is at one path: recording it at a path forgets a stale
/// entry of the same file elsewhere (seed 40438 of the simulation: a stale
/// entry made the plan trash the only local copy as "moved onto another
/// Synced path"). Folders and other files are untouched.
#[test]
fn a_host_file_is_recorded_at_one_path_only() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    db.apply(&[
        Change::Put(p("d0/e/b.txt"), file(7)),
        Change::Put(p("other.txt"), file(8)),
        Change::Put(p("d0"), dir(7)),
    ])
    .unwrap();
    db.apply(&[Change::Put(p("d1/e/b.txt"), file(7))]).unwrap();
    let t = db.load_synced().unwrap();
    assert!(!t.contains_key(&p("d0/e/b.txt")), "the stale entry is gone");
    assert_eq!(t.get(&p("d1/e/b.txt")).map(|e| e.remote_id), Some(7));
    assert!(t.contains_key(&p("other.txt")) && t.contains_key(&p("d0")));
    // Recording it again at the same path keeps it.
    db.apply(&[Change::Put(p("d1/e/b.txt"), file(7))]).unwrap();
    assert!(db.load_synced().unwrap().contains_key(&p("d1/e/b.txt")));
}

/// `n` files below `dir`, with long names so a few thousand fill megabytes.
fn many(dir: &str, n: u64) -> Vec<Change> {
    (0..n)
        .map(|i| {
            let name = format!("{dir}/{}-{i:06}.jpg", "long-name".repeat(30));
            Change::Put(p(&name), file(10_000 + i))
        })
        .collect()
}

fn wal_bytes(db: &std::path::Path) -> u64 {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    std::fs::metadata(std::path::PathBuf::from(s))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn file_bytes(db: &std::path::Path) -> u64 {
    std::fs::metadata(db).unwrap().len()
}

/// A new database gives the pages a big delete freed back to the file
/// system after the pass (incremental vacuum), instead of keeping the file
/// at its high-water mark for ever.
#[test]
fn maintain_gives_back_the_pages_a_delete_freed() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    assert_eq!(
        db.size().unwrap().auto_vacuum,
        2,
        "incremental from the start"
    );
    db.apply(&many("big", 20_000)).unwrap();
    db.apply(&[Change::Put(p("keep.txt"), file(1))]).unwrap();
    db.maintain().unwrap();
    let full = file_bytes(&path);
    assert!(full > 8 << 20, "the rows fill megabytes: {full}");
    db.apply(&[Change::RemoveTree(p("big"))]).unwrap();
    let m = db.maintain().unwrap();
    assert!(m.pages_freed >= INCREMENTAL_MIN_PAGES, "{m:?}");
    let s = db.size().unwrap();
    assert!(s.free_pages < INCREMENTAL_MIN_PAGES, "{s:?}");
    let after = file_bytes(&path);
    assert!(after * 4 < full, "the file shrank: {full} -> {after}");
    assert_eq!(paths(&db), vec!["keep.txt"]);
}

/// A database made without incremental vacuum (before this policy) is
/// rewritten once when most of it is free, and keeps incremental vacuum
/// from then on; one that is mostly rows is left alone.
#[test]
fn maintain_vacuums_an_old_database_that_is_mostly_free() {
    let (_d, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        // What an older dcsync made: no auto_vacuum.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE x (y)")
            .unwrap();
    }
    let mut db = StateDb::open(&path).unwrap();
    assert_eq!(db.size().unwrap().auto_vacuum, 0);
    db.apply(&many("big", 20_000)).unwrap();
    db.apply(&many("small", 2_000)).unwrap();
    assert_eq!(
        db.maintain().unwrap().vacuumed,
        None,
        "all rows: nothing to do"
    );
    db.apply(&[Change::RemoveTree(p("big"))]).unwrap();
    let m = db.maintain().unwrap();
    let (before, after) = m.vacuumed.expect("rewritten");
    assert!(after * 4 < before, "{before} -> {after}");
    assert_eq!(db.size().unwrap().auto_vacuum, 2, "incremental from now on");
    assert_eq!(db.load_synced().unwrap().len(), 2_000);
    drop(db);
    let db = StateDb::open(&path).unwrap();
    assert_eq!(
        db.load_synced().unwrap().len(),
        2_000,
        "still there reopened"
    );
}

/// While another connection holds a read open, the checkpoint cannot
/// empty the WAL and it grows with the writes; once the read ends, the next
/// maintenance truncates it, so it never stays big.
#[test]
fn maintain_truncates_a_wal_that_grew_behind_a_long_read() {
    let (_d, path) = tmp();
    let mut db = StateDb::open(&path).unwrap();
    db.apply(&[Change::Put(p("a.txt"), file(1))]).unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM synced;")
        .unwrap();
    for round in 0..8 {
        db.apply(&many(&format!("r{round}"), 4_000)).unwrap();
        db.apply(&[Change::RemoveTree(p(&format!("r{round}")))])
            .unwrap();
    }
    let held = db.maintain().unwrap();
    assert!(held.wal_frames_left > 0, "the read holds frames: {held:?}");
    let grown = wal_bytes(&path);
    assert!(grown as i64 > WAL_LIMIT_BYTES, "the WAL grew: {grown}");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let m = db.maintain().unwrap();
    assert!(m.wal_truncated && m.wal_frames_left == 0, "{m:?}");
    assert_eq!(wal_bytes(&path), 0);
    assert_eq!(paths(&db), vec!["a.txt"]);
}
