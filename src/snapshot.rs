//! The Remote tree: a recursive listing of the synced remote folder, plus
//! resolving the configured remote path to a folder id.
//!
//! Owns: walking `/folder/listing` with bounded concurrency, turning what the
//! host lists into [`RemoteEntry`]s keyed by path, and refusing to guess where
//! the host is ambiguous. Whatever could not be listed or named goes into
//! [`RemoteView::unknown`] (safety rule 1: unknown is not absent) and a
//! skipped note; [`snapshot`] itself never fails. It only reads from the host
//! ([`resolve_root`] may create folders when asked to).

use crate::api::folders::Made;
use crate::api::host::Host;
use crate::api::{ApiError, FolderId, FolderOptions, Listing, RemoteFolder};
use crate::model::{Kind, RelPath, RemoteEntry, RemoteView};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

/// Counters of one snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Folders whose listing succeeded (the root included).
    pub folders_listed: u64,
    /// Folders entered in the view (the root not counted).
    pub folders: u64,
    /// Files entered in the view.
    pub files: u64,
    /// `/folder/listing` calls made (each may have been retried inside the client).
    pub api_calls: u64,
}

/// The result of [`snapshot`].
#[derive(Debug, Clone, Default)]
pub struct SnapshotOutcome {
    pub view: RemoteView,
    /// `(path relative to the root, reason)` of what is not in the view
    /// although the host has it, or could not be listed. The root is `/`.
    pub skipped: Vec<(String, String)>,
    /// `(local path, note)` of entries synced under another name than the
    /// host's (duplicate names on the host).
    pub mapped: Vec<(String, String)>,
    pub stats: SnapshotStats,
    /// Every folder this snapshot listed, with its listing's print: what
    /// the daemon's poller compares its own listings with.
    pub listed: Vec<ListedFolder>,
}

/// One folder a snapshot listed, as the daemon's poller remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFolder {
    /// `None` = the account root.
    pub id: Option<u64>,
    pub path: RelPath,
    /// [`listing_print`] of the folder's listing.
    pub print: u64,
    /// Its subfolders: (id, [`folder_hint`] as this listing showed it).
    pub children: Vec<(u64, u64)>,
}

/// What changes when anything in a folder's listing changes that a sync
/// cares about: every entry's kind, id, name and size (order does not
/// matter; the folders' count fields are not part of it, see
/// [`folder_hint`]). Taken from the host's listing as it is, so a poll's
/// listing and a pass's listing of an unchanged folder give the same value.
pub fn listing_print(listing: &Listing) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let one = |kind: u8, id: u64, name: &str, size: u64| {
        let mut h = DefaultHasher::new();
        (kind, id, name, size).hash(&mut h);
        h.finish()
    };
    let mut sum = (listing.folders.len() as u64) << 32 | listing.files.len() as u64;
    for f in &listing.folders {
        sum = sum.wrapping_add(one(0, f.id.0, &f.name, 0));
    }
    for f in &listing.files {
        sum = sum.wrapping_add(one(1, f.id.0, &f.name, f.size));
    }
    sum
}

/// A subfolder's count fields in its parent's listing (`totalSize`,
/// `file_count`, `child_folder_count`): a change says something below it
/// changed. They are hints only: the host does not keep them reliably
/// (API-NOTES.md), so an unchanged hint never means an unchanged folder.
pub fn folder_hint(f: &RemoteFolder) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (f.total_size, f.file_count, f.child_folder_count).hash(&mut h);
    h.finish()
}

/// Something went wrong resolving the remote root.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("remote folder {path:?}: {source}")]
    Api {
        path: String,
        #[source]
        source: ApiError,
    },

    #[error("remote folder {path:?} does not exist; create it on the site or let dcsync create it")]
    NotFound { path: String },

    #[error(
        "remote path {path:?} is ambiguous: {} folders have that name (ids {}); rename all but one on the site",
        .ids.len(),
        .ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous { path: String, ids: Vec<FolderId> },

    #[error("remote path {path:?} is a file, not a folder; choose another remote_path")]
    NotAFolder { path: String },

    #[error("remote path {path:?} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

impl SnapshotError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SnapshotError::Api { source, .. } if source.is_retryable())
    }
}

/// Lists the folder `root` (`None` = the account root) recursively, up to
/// `concurrency` listings at a time. Paths are relative to `root`.
pub async fn snapshot(
    client: &dyn Host,
    root: Option<FolderId>,
    concurrency: usize,
) -> SnapshotOutcome {
    snapshot_from(client, root, RelPath::root(), concurrency).await
}

/// [`snapshot`] of the account root (`root` = `None`) without the
/// root-level folders in `trashed` (ids of folders known to be in the
/// host's trash, which the host keeps listing there, detached and
/// without their files). They are left out before entries sharing a name
/// are told apart, so a folder made beside a trashed namesake keeps the
/// plain name. Their listings still count in [`SnapshotOutcome::listed`].
pub async fn snapshot_without(
    client: &dyn Host,
    root: Option<FolderId>,
    concurrency: usize,
    trashed: &BTreeSet<u64>,
) -> SnapshotOutcome {
    walk(client, root, RelPath::root(), concurrency, true, trashed).await
}

/// Lists one folder (`folder`, found at `base` in the tree) recursively;
/// paths in the result start with `base`. Used to refresh part of a tree.
pub async fn snapshot_from(
    client: &dyn Host,
    root: Option<FolderId>,
    base: RelPath,
    concurrency: usize,
) -> SnapshotOutcome {
    walk(client, root, base, concurrency, true, &BTreeSet::new()).await
}

/// The direct content of one folder (one listing, no subfolders listed):
/// its files, and its subfolders without their content. `trashed` as for
/// [`snapshot_without`].
pub async fn snapshot_level(
    client: &dyn Host,
    root: Option<FolderId>,
    base: RelPath,
    trashed: &BTreeSet<u64>,
) -> SnapshotOutcome {
    walk(client, root, base, 1, false, trashed).await
}

async fn walk(
    client: &dyn Host,
    root: Option<FolderId>,
    base: RelPath,
    concurrency: usize,
    deep: bool,
    trashed: &BTreeSet<u64>,
) -> SnapshotOutcome {
    let mut out = SnapshotOutcome::default();
    let mut visited: HashSet<FolderId> = HashSet::new();
    if let Some(r) = root {
        visited.insert(r);
    }
    out.stats.api_calls = list_tree(client, root, base, concurrency, |path, id, result| {
        match result {
            Ok(listing) => {
                out.stats.folders_listed += 1;
                let children =
                    enter_listing(path, id, listing, trashed, &mut visited, &mut out);
                Some(if deep { children } else { Vec::new() })
            }
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "remote folder listing failed; its subtree counts as unknown");
                out.skipped.push((
                    if path.is_root() {
                        "/".to_owned()
                    } else {
                        path.as_str().to_owned()
                    },
                    format!("listing failed, nothing below it is synced this pass: {e}"),
                ));
                out.view.unknown.push(path.clone());
                Some(Vec::new())
            }
        }
    })
    .await;
    // Deterministic regardless of the order listings came back in.
    out.view.unknown.sort();
    out.view.unknown.dedup();
    out.skipped.sort();
    out.mapped.sort();
    out
}

/// Lists the folder `root` (found at `base`) and, breadth first, every
/// folder `on` returns for a listing, up to `concurrency` listings at a
/// time; `on` gets each folder's listing (or why it failed) in the order
/// they come back, and ends the walk by returning `None` (listings under
/// way are dropped: they only read). Returns the number of `/folder/listing` calls made. The
/// one listing loop of [`snapshot`] and the engine's no-change check.
pub async fn list_tree<F>(
    client: &dyn Host,
    root: Option<FolderId>,
    base: RelPath,
    concurrency: usize,
    mut on: F,
) -> u64
where
    F: FnMut(
        &RelPath,
        Option<FolderId>,
        Result<Listing, ApiError>,
    ) -> Option<Vec<(RelPath, Option<FolderId>)>>,
{
    let concurrency = concurrency.max(1);
    let mut calls = 0;
    let mut queue: VecDeque<(RelPath, Option<FolderId>)> = VecDeque::new();
    queue.push_back((base, root));
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < concurrency {
            let Some((path, id)) = queue.pop_front() else {
                break;
            };
            calls += 1;
            running.push(async move {
                let r = client.folder_listing(id).await;
                (path, id, r)
            });
        }
        let Some((path, id, result)) = running.next().await else {
            break;
        };
        match on(&path, id, result) {
            Some(children) => queue.extend(children),
            None => break,
        }
    }
    calls
}

/// The local name of the `n`th entry sharing `name` on the host:
/// `report (duplicate 2).pdf`.
pub fn duplicate_name(name: &str, n: usize) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{stem} (duplicate {n}){ext}")
}

/// Enters one folder's listing into the view; returns the subfolders to list.
fn enter_listing(
    path: &RelPath,
    id: Option<FolderId>,
    mut listing: Listing,
    trashed: &BTreeSet<u64>,
    visited: &mut HashSet<FolderId>,
    out: &mut SnapshotOutcome,
) -> Vec<(RelPath, Option<FolderId>)> {
    // The account root lists trashed folders too (API-NOTES.md: folders
    // have no status); those known to be trashed are left out here, before
    // names are told apart. The engine finds the others
    // (`drop_trashed_root_folders`). The print is of the whole listing,
    // as a later look sees it.
    let print = listing_print(&listing);
    if id.is_none() && !trashed.is_empty() {
        listing.folders.retain(|f| !trashed.contains(&f.id.0));
    }
    out.listed.push(ListedFolder {
        id: id.map(|f| f.0),
        path: path.clone(),
        print,
        children: listing
            .folders
            .iter()
            .map(|f| (f.id.0, folder_hint(f)))
            .collect(),
    });
    enum Item {
        Folder(FolderId),
        File(u64, u64),
    }
    let mut by_name: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for f in listing.folders {
        by_name.entry(f.name).or_default().push(Item::Folder(f.id));
    }
    for f in listing.files {
        by_name
            .entry(f.name)
            .or_default()
            .push(Item::File(f.id.0, f.size));
    }
    let parent = id.map(|f| f.0);
    let mut children = Vec::new();
    // Several entries of one name (the host allows it through edit, move
    // and copy): the oldest (lowest id, folders before files) keeps the
    // name, the others get `name (duplicate N).ext`, deterministic and
    // stable while the set of duplicates stays the same.
    let taken: HashSet<String> = by_name.keys().cloned().collect();
    let mut named: Vec<(String, Item)> = Vec::new();
    let mut assigned: HashSet<String> = HashSet::new();
    for (name, mut items) in by_name {
        items.sort_by_key(|i| match i {
            Item::Folder(f) => (0, f.0),
            Item::File(f, _) => (1, *f),
        });
        let total = items.len();
        for (n, item) in items.into_iter().enumerate() {
            if n == 0 {
                named.push((name.clone(), item));
                continue;
            }
            let mut k = n + 1;
            let alias = loop {
                let a = duplicate_name(&name, k);
                if !taken.contains(&a) && !assigned.contains(&a) {
                    break a;
                }
                k += 1;
            };
            if let Some(child) = path.join(&alias) {
                out.mapped.push((
                    child.as_str().to_owned(),
                    format!(
                        "{total} entries are called {name:?} on the host; this one is synced locally as {alias:?}"
                    ),
                ));
            }
            assigned.insert(alias.clone());
            named.push((alias, item));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, item) in named {
        let Some(child) = path.join(&name) else {
            out.skipped.push((
                display_child(path, &name),
                "the name cannot be used as a local file name (empty, `.`, `..`, or contains `/` or NUL); rename it on the site".into(),
            ));
            // The folder holds more than the view shows: never trashed whole.
            out.view.holds_more.insert(path.clone());
            continue;
        };
        match item {
            Item::Folder(fid) => {
                if !visited.insert(fid) {
                    // The host listed a folder twice (a parent cycle): don't loop.
                    out.skipped.push((
                        child.as_str().to_owned(),
                        format!("folder {fid} appears more than once in the tree (a loop on the host); not listed again"),
                    ));
                    out.view.unknown.push(child);
                    continue;
                }
                out.stats.folders += 1;
                out.view.entries.insert(
                    child.clone(),
                    RemoteEntry {
                        kind: Kind::Dir,
                        id: fid.0,
                        parent,
                        size: 0,
                    },
                );
                children.push((child, Some(fid)));
            }
            Item::File(fid, size) => {
                out.stats.files += 1;
                out.view.entries.insert(
                    child,
                    RemoteEntry {
                        kind: Kind::File,
                        id: fid,
                        parent,
                        size,
                    },
                );
            }
        }
    }
    children
}

fn display_child(parent: &RelPath, name: &str) -> String {
    if parent.is_root() {
        name.to_owned()
    } else {
        format!("{}/{}", parent.as_str(), name)
    }
}

/// Resolves `/a/b/c` (from the account root) to a folder id; `""` or `/` is
/// the account root (`Ok(None)`). A missing folder is created when `create`,
/// else it is [`SnapshotError::NotFound`]. Several folders of one name are
/// [`SnapshotError::Ambiguous`].
pub async fn resolve_root(
    client: &dyn Host,
    remote_path: &str,
    create: bool,
) -> Result<Option<FolderId>, SnapshotError> {
    let comps: Vec<&str> = remote_path.split('/').filter(|c| !c.is_empty()).collect();
    for c in &comps {
        if *c == "." || *c == ".." || c.contains('\0') {
            return Err(SnapshotError::Invalid {
                path: remote_path.to_owned(),
                reason: format!("the component {c:?} is not a folder name"),
            });
        }
    }
    let mut current: Option<FolderId> = None;
    let mut walked = String::new();
    for name in comps {
        walked.push('/');
        walked.push_str(name);
        let api = |source| SnapshotError::Api {
            path: walked.clone(),
            source,
        };
        let listing = client.folder_listing(current).await.map_err(api)?;
        let ids: Vec<FolderId> = listing
            .folders
            .iter()
            .filter(|f| f.name == name)
            .map(|f| f.id)
            .collect();
        current = Some(match ids.as_slice() {
            [one] => *one,
            [] => {
                if listing.files.iter().any(|f| f.name == name) {
                    return Err(SnapshotError::NotAFolder { path: walked });
                }
                if !create {
                    return Err(SnapshotError::NotFound { path: walked });
                }
                create_folder(client, name, current, &walked).await?
            }
            _ => {
                return Err(SnapshotError::Ambiguous { path: walked, ids });
            }
        });
    }
    Ok(current)
}

/// Creates `name` in `parent` (where the listing just showed none); when
/// the answer is lost, a folder of that name found there is the one made.
async fn create_folder(
    client: &dyn Host,
    name: &str,
    parent: Option<FolderId>,
    walked: &str,
) -> Result<FolderId, SnapshotError> {
    let api = |source| SnapshotError::Api {
        path: walked.to_owned(),
        source,
    };
    match crate::api::folders::create_folder(
        client,
        name,
        parent,
        &FolderOptions::default(),
        &|_| false,
    )
    .await
    {
        Ok(Made::Created(f) | Made::Found(f)) => {
            tracing::info!(path = walked, id = %f.id, "created remote folder");
            Ok(f.id)
        }
        Ok(Made::NotMade(e)) | Err(e) => Err(api(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FileId, FileStatus, RemoteFile, RemoteFolder};

    fn folder(id: u64, name: &str) -> RemoteFolder {
        RemoteFolder {
            id: FolderId(id),
            name: name.into(),
            parent_id: None,
            total_size: None,
            is_public: None,
            file_count: None,
            child_folder_count: None,
            url: None,
            date_added: None,
        }
    }

    fn file(id: u64, name: &str, size: u64) -> RemoteFile {
        RemoteFile {
            id: FileId(id),
            name: name.into(),
            size,
            folder_id: None,
            status: FileStatus::Active,
            short_url: None,
            file_type: None,
            url: None,
            uploaded_date: None,
        }
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn duplicate_names() {
        assert_eq!(duplicate_name("report.pdf", 2), "report (duplicate 2).pdf");
        assert_eq!(duplicate_name("Makefile", 3), "Makefile (duplicate 3)");
        assert_eq!(duplicate_name(".bashrc", 2), ".bashrc (duplicate 2)");
    }

    #[test]
    fn listing_rules() {
        let mut out = SnapshotOutcome::default();
        let mut visited = HashSet::from([FolderId(1)]);
        let listing = Listing {
            folders: vec![
                folder(2, "sub"),
                folder(3, "twice"),
                folder(4, "twice"),
                folder(1, "loop"),
                folder(5, ".."),
                folder(6, "clash"),
            ],
            files: vec![
                file(10, "a.txt", 7),
                file(11, "a/b", 1),
                file(12, "", 1),
                file(13, "clash", 3),
            ],
        };
        let children = enter_listing(
            &p("x"),
            Some(FolderId(1)),
            listing,
            &BTreeSet::new(),
            &mut visited,
            &mut out,
        );
        assert_eq!(
            children,
            vec![
                (p("x/clash"), Some(FolderId(6))),
                (p("x/sub"), Some(FolderId(2))),
                (p("x/twice"), Some(FolderId(3))),
                (p("x/twice (duplicate 2)"), Some(FolderId(4))),
            ]
        );
        let keys: Vec<_> = out.view.entries.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "x/a.txt",
                "x/clash",
                "x/clash (duplicate 2)",
                "x/sub",
                "x/twice",
                "x/twice (duplicate 2)"
            ]
        );
        // The folder keeps the name; the file of the same name is renamed.
        assert_eq!(out.view.entries[&p("x/clash")].kind, Kind::Dir);
        assert_eq!(out.view.entries[&p("x/clash (duplicate 2)")].id, 13);
        assert_eq!(
            out.view.entries[&p("x/a.txt")],
            RemoteEntry {
                kind: Kind::File,
                id: 10,
                parent: Some(1),
                size: 7
            }
        );
        assert_eq!(out.view.entries[&p("x/sub")].kind, Kind::Dir);
        let mut unknown = out.view.unknown.clone();
        unknown.sort();
        assert_eq!(unknown, [p("x/loop")]);
        let mapped: BTreeMap<_, _> = out.mapped.iter().cloned().collect();
        assert!(
            mapped["x/twice (duplicate 2)"].contains("synced locally as"),
            "{mapped:?}"
        );
        assert!(mapped.contains_key("x/clash (duplicate 2)"));
        let notes: BTreeMap<_, _> = out.skipped.iter().cloned().collect();
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes["x/loop"].contains("loop"));
        assert!(notes.contains_key("x/.."));
        assert!(notes.contains_key("x/a/b"));
        assert!(notes.contains_key("x/"));
        assert_eq!((out.stats.files, out.stats.folders), (2, 4));
    }
}
