//! Scenario tests of the planner: small trees as data, expected ops.
//!
//! Each case builds a Synced tree and the two sides with a tiny builder,
//! then states the exact plan. The property test (`proptest.rs`) covers the
//! general guarantees; these pin down the behaviours users see.

use super::*;

fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

/// A world where every entry is (path, kind, ino/id, content).
#[derive(Default)]
struct W {
    local: LocalView,
    remote: RemoteView,
    synced: Tree<SyncedEntry>,
}

fn lmeta(ino: u64, content: u64) -> LocalMeta {
    LocalMeta {
        dev: 1,
        ino,
        size: content,
        mtime_ns: content as i64,
    }
}

impl W {
    /// An entry present and agreed on both sides: local inode `ino`,
    /// remote id `id`, content `c` (0 for folders).
    fn both(mut self, path: &str, kind: Kind, ino: u64, id: u64, c: u64) -> Self {
        self = self.local(path, kind, ino, c).remote(path, kind, id, c);
        self.synced.insert(
            p(path),
            SyncedEntry {
                kind,
                local: lmeta(ino, c),
                hashes: hashes(kind, c),
                remote_id: id,
                remote_parent: None,
                remote_name: p(path).name().into(),
                size: c,
            },
        );
        self
    }
    fn local(mut self, path: &str, kind: Kind, ino: u64, c: u64) -> Self {
        self.local.entries.insert(
            p(path),
            LocalEntry {
                kind,
                meta: lmeta(ino, c),
                hashes: hashes(kind, c),
            },
        );
        self
    }
    fn remote(mut self, path: &str, kind: Kind, id: u64, c: u64) -> Self {
        self.remote.entries.insert(
            p(path),
            RemoteEntry {
                kind,
                id,
                parent: None,
                size: c,
            },
        );
        self
    }
    fn no_local(mut self, path: &str) -> Self {
        let path = p(path);
        self.local.entries.retain(|k, _| !k.starts_with(&path));
        self
    }
    fn no_remote(mut self, path: &str) -> Self {
        let path = p(path);
        self.remote.entries.retain(|k, _| !k.starts_with(&path));
        self
    }
    fn plan(&self) -> Vec<Op> {
        plan(
            &self.local,
            &self.remote,
            &self.synced,
            PlanOptions::default(),
        )
        .ops
    }
}

/// A stand-in digest that identifies content `c`.
fn digest<const N: usize>(c: u64) -> Digest<N> {
    let mut b = [0u8; N];
    b[..8].copy_from_slice(&c.to_le_bytes());
    Digest(b)
}

fn hashes(kind: Kind, c: u64) -> Hashes {
    match kind {
        Kind::File => Hashes {
            sha256: Some(digest(c)),
            md5: Some(digest(c)),
        },
        Kind::Dir => Hashes::default(),
    }
}

use Kind::{Dir, File};

#[test]
fn nothing_changed_plans_nothing() {
    let w = W::default()
        .both("docs", Dir, 1, 10, 0)
        .both("docs/a.txt", File, 2, 11, 5);
    assert!(w.plan().is_empty());
}

#[test]
fn local_rename_is_a_remote_move_not_a_transfer() {
    let w = W::default()
        .both("a.txt", File, 2, 11, 5)
        .no_local("a.txt")
        .local("b.txt", File, 2, 5);
    assert_eq!(
        w.plan(),
        [Op::MoveRemote {
            kind: File,
            id: 11,
            synced: p("a.txt"),
            from: p("a.txt"),
            to: p("b.txt"),
        }]
    );
}

#[test]
fn a_local_move_of_a_file_replaced_on_the_host_keeps_both() {
    // Moved locally; at the old path the host has a new version (new id).
    let w = W::default()
        .both("a.txt", File, 2, 11, 5)
        .no_local("a.txt")
        .local("b.txt", File, 2, 5)
        .no_remote("a.txt")
        .remote("a.txt", File, 12, 6);
    assert_eq!(w.plan(), [Op::Forget { path: p("a.txt") }]);
}

#[test]
fn remote_folder_move_is_one_local_rename() {
    let w = W::default()
        .both("x", Dir, 1, 10, 0)
        .both("x/a", File, 2, 11, 5)
        .both("x/b", File, 3, 12, 6)
        .both("y", Dir, 4, 13, 0)
        .no_remote("x")
        .remote("y/x", Dir, 10, 0)
        .remote("y/x/a", File, 11, 5)
        .remote("y/x/b", File, 12, 6);
    let ops = w.plan();
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert!(
        matches!(&ops[0], Op::MoveLocal { from, to, .. } if *from == p("x") && *to == p("y/x"))
    );
}

#[test]
fn new_local_copy_of_known_content_is_a_server_side_copy() {
    let w = W::default()
        .both("a.bin", File, 2, 11, 500)
        .local("copy.bin", File, 9, 500);
    let ops = w.plan();
    assert!(
        matches!(&ops[..], [Op::RemoteCopy { path, source: 11, .. }] if *path == p("copy.bin")),
        "{ops:#?}"
    );
}

#[test]
fn both_sides_created_the_same_path_are_compared() {
    let w = W::default()
        .local("n.txt", File, 2, 5)
        .remote("n.txt", File, 11, 6);
    assert!(matches!(&w.plan()[..], [Op::Reconcile { .. }]));
}

#[test]
fn both_sides_changed_the_same_file_are_compared() {
    let w = W::default()
        .both("n.txt", File, 2, 11, 5)
        .local("n.txt", File, 2, 7)
        .remote("n.txt", File, 12, 8);
    assert!(matches!(&w.plan()[..], [Op::Reconcile { .. }]));
}

#[test]
fn modification_beats_deletion() {
    // Deleted locally, changed remotely: download it again.
    let w = W::default()
        .both("f", File, 2, 11, 5)
        .no_local("f")
        .remote("f", File, 12, 9);
    assert!(matches!(
        &w.plan()[..],
        [Op::Download { replaces: None, .. }]
    ));
    // Changed locally, deleted remotely: upload it again.
    let w = W::default()
        .both("f", File, 2, 11, 5)
        .local("f", File, 2, 9)
        .no_remote("f");
    assert!(matches!(&w.plan()[..], [Op::Upload { replaces: None, .. }]));
}

#[test]
fn unchanged_deletions_propagate_to_the_trash() {
    let w = W::default().both("f", File, 2, 11, 5).no_local("f");
    assert!(matches!(&w.plan()[..], [Op::DeleteRemote { id: 11, .. }]));
    let w = W::default().both("f", File, 2, 11, 5).no_remote("f");
    assert!(matches!(&w.plan()[..], [Op::DeleteLocal { .. }]));
}

#[test]
fn deleted_folder_keeps_a_file_added_inside_on_the_other_side() {
    let w = W::default()
        .both("d", Dir, 1, 10, 0)
        .both("d/old", File, 2, 11, 5)
        .no_local("d")
        .remote("d/new", File, 12, 6);
    let ops = w.plan();
    assert!(
        ops.iter()
            .all(|o| !matches!(o, Op::DeleteRemote { kind: Dir, .. })),
        "{ops:#?}"
    );
    assert!(
        ops.contains(&Op::CreateLocalDir {
            path: p("d"),
            remote_id: 10
        }),
        "{ops:#?}"
    );
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::Download { path, .. } if *path == p("d/new")))
    );
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::DeleteRemote { path, .. } if *path == p("d/old")))
    );
}

#[test]
fn a_whole_deleted_folder_is_one_delete() {
    let w = W::default()
        .both("d", Dir, 1, 10, 0)
        .both("d/a", File, 2, 11, 5)
        .both("d/b", File, 3, 12, 6)
        .no_local("d");
    assert_eq!(
        w.plan(),
        [Op::DeleteRemote {
            kind: Dir,
            path: p("d"),
            id: 10
        }]
    );
}

#[test]
fn unknown_is_not_absent() {
    let mut w = W::default()
        .both("d", Dir, 1, 10, 0)
        .both("d/a", File, 2, 11, 5)
        .no_remote("d");
    w.remote.unknown.push(p("d"));
    assert!(w.plan().is_empty());
    let mut w = W::default().both("d", Dir, 1, 10, 0).no_local("d");
    w.local.unknown.push(RelPath::root());
    assert!(w.plan().is_empty());
}

#[test]
fn new_trees_are_created_parents_first_in_one_round() {
    let w = W::default()
        .local("a", Dir, 1, 0)
        .local("a/b", Dir, 2, 0)
        .local("a/b/f", File, 3, 5);
    let ops = w.plan();
    let paths: Vec<_> = ops.iter().map(|o| o.path().as_str()).collect();
    assert_eq!(paths, ["a", "a/b", "a/b/f"], "{ops:#?}");
}

#[test]
fn crossing_folder_moves_resolve_in_favour_of_local() {
    // Local: A moved into B. Remote: B moved into A.
    let w = W::default()
        .both("A", Dir, 1, 10, 0)
        .both("B", Dir, 2, 20, 0)
        .no_local("A")
        .local("B/A", Dir, 1, 0)
        .no_remote("B")
        .remote("A/B", Dir, 20, 0);
    let ops = w.plan();
    // Round one moves remote B back; local A's move waits for it.
    assert_eq!(
        ops,
        [Op::MoveRemote {
            kind: Dir,
            id: 20,
            synced: p("B"),
            from: p("A/B"),
            to: p("B"),
        }]
    );
}

#[test]
fn mass_delete_count_counts_files_below_folders() {
    let w = W::default()
        .both("d", Dir, 1, 10, 0)
        .both("d/a", File, 2, 11, 5)
        .both("d/b", File, 3, 12, 6)
        .both("e", File, 4, 13, 7)
        .no_local("d");
    let plan = plan(&w.local, &w.remote, &w.synced, PlanOptions::default());
    let c = plan.delete_count(&w.synced);
    assert_eq!((c.remote_files, c.local_files, c.tracked_files), (2, 0, 3));
}

#[test]
fn conflict_names() {
    assert_eq!(
        conflict_name("report.pdf", "2024-09-19 044819", 1),
        "report (conflicted copy 2024-09-19 044819).pdf"
    );
    assert_eq!(
        conflict_name("Makefile", "2024-09-19 044819", 2),
        "Makefile (conflicted copy 2024-09-19 044819 2)"
    );
    assert_eq!(
        conflict_name(".bashrc", "2024-09-19 044819", 1),
        ".bashrc (conflicted copy 2024-09-19 044819)"
    );
    // Long names are cut to fit 255 bytes, at a character boundary, and
    // keep their extension.
    let long = format!("{}.txt", "é".repeat(124));
    let c = conflict_name(&long, "2024-09-19 044819", 12);
    assert!(c.len() <= 255, "{}", c.len());
    assert!(
        c.ends_with(" (conflicted copy 2024-09-19 044819 12).txt"),
        "{c}"
    );
    assert!(c.starts_with("éé"));
    let odd = format!("a.{}", "x".repeat(300));
    assert!(conflict_name(&odd, "2024-09-19 044819", 1).len() <= 255);
}

#[test]
fn one_way_modes() {
    let opts = |mode, propagate_deletes| PlanOptions {
        mode,
        propagate_deletes,
    };
    // Backup: a local delete is not carried over unless asked.
    let w = W::default().both("f", File, 2, 11, 5).no_local("f");
    let ops = plan(
        &w.local,
        &w.remote,
        &w.synced,
        opts(Mode::UploadOnly, false),
    )
    .ops;
    assert_eq!(ops, [Op::Forget { path: p("f") }]);
    let ops = plan(&w.local, &w.remote, &w.synced, opts(Mode::UploadOnly, true)).ops;
    assert!(matches!(&ops[..], [Op::DeleteRemote { .. }]));
    // Backup: a remote-only file is left alone.
    let w = W::default().remote("r", File, 11, 5);
    assert!(
        plan(
            &w.local,
            &w.remote,
            &w.synced,
            opts(Mode::UploadOnly, false)
        )
        .ops
        .is_empty()
    );
    // Backup, with or without propagated deletes: what the host has that
    // was never synced is never removed (#9 rule 5): a remote-only folder,
    // a remote folder where a local file is, a remote folder or file where
    // a synced entry of the other kind was.
    let untracked = W::default()
        .local("keep", File, 1, 3)
        .remote("r", Dir, 10, 0)
        .remote("r/a", File, 11, 5)
        .local("x", File, 2, 4)
        .remote("x", Dir, 12, 0)
        .remote("x/b", File, 13, 6)
        .both("f", File, 3, 14, 7)
        .no_remote("f")
        .remote("f", Dir, 15, 0)
        .both("d", Dir, 4, 16, 0)
        .no_remote("d")
        .remote("d", File, 17, 8);
    for propagate in [false, true] {
        let plan = plan(
            &untracked.local,
            &untracked.remote,
            &untracked.synced,
            opts(Mode::UploadOnly, propagate),
        );
        assert!(
            !plan.ops.iter().any(|o| o.is_delete()),
            "propagate {propagate}: {:#?}",
            plan.ops
        );
        for held in ["x", "f", "d"] {
            assert!(
                plan.deferred.contains(&(p(held), BACKUP_IN_THE_WAY)),
                "{held}: {:?}",
                plan.deferred
            );
        }
    }
    // Mirror: a local edit is kept as a conflicted copy, never overwritten.
    let w = W::default()
        .both("f", File, 2, 11, 5)
        .local("f", File, 2, 9);
    let ops = plan(
        &w.local,
        &w.remote,
        &w.synced,
        opts(Mode::DownloadOnly, false),
    )
    .ops;
    assert!(matches!(&ops[..], [Op::Reconcile { .. }]), "{ops:#?}");
}

#[test]
fn remote_move_into_a_new_remote_folder_waits_for_it_locally() {
    let w = W::default()
        .both("a.txt", File, 2, 11, 5)
        .no_remote("a.txt")
        .remote("new", Dir, 20, 0)
        .remote("new/a.txt", File, 11, 5);
    let ops = w.plan();
    assert_eq!(
        ops,
        [Op::CreateLocalDir {
            path: p("new"),
            remote_id: 20
        }],
        "{ops:#?}"
    );
}

/// `d.txt`, `d-x` and `d x` sort between `d` and `d/...` (`.`, `-` and space
/// are below `/`): the folder's content must still be seen past them.
#[test]
fn siblings_sorting_between_a_folder_and_its_content_do_not_hide_it() {
    for sib in ["d.txt", "d-x", "d x", "d!"] {
        // Deleted locally, a file added inside remotely: keep the new file.
        let w = W::default()
            .both("d", Dir, 1, 10, 0)
            .both("d/old", File, 2, 11, 5)
            .both(sib, File, 3, 12, 7)
            .no_local("d")
            .remote("d/new", File, 13, 6);
        let ops = w.plan();
        assert!(
            ops.iter()
                .all(|o| !matches!(o, Op::DeleteRemote { kind: Dir, .. })),
            "{sib}: {ops:#?}"
        );
        assert!(
            ops.iter()
                .any(|o| matches!(o, Op::Download { path, .. } if *path == p("d/new"))),
            "{sib}: {ops:#?}"
        );
        // The mirror image: deleted remotely, a file added inside locally.
        let w = W::default()
            .both("d", Dir, 1, 10, 0)
            .both("d/old", File, 2, 11, 5)
            .both(sib, File, 3, 12, 7)
            .no_remote("d")
            .local("d/new", File, 4, 6);
        let ops = w.plan();
        assert!(
            ops.iter()
                .all(|o| !matches!(o, Op::DeleteLocal { kind: Dir, .. })),
            "{sib}: {ops:#?}"
        );
        // The mass-delete count sees the files below the folder.
        let w = W::default()
            .both("d", Dir, 1, 10, 0)
            .both("d/a", File, 2, 11, 5)
            .both("d/b", File, 3, 12, 6)
            .both(sib, File, 4, 13, 7)
            .no_local("d");
        let plan = plan(&w.local, &w.remote, &w.synced, PlanOptions::default());
        assert_eq!(plan.delete_count(&w.synced).remote_files, 2, "{sib}");
    }
}
