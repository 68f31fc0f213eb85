//! The local watcher: notify's full debouncer on the sync root, bridged to
//! a tokio channel as batches of changed paths.
//!
//! Never loses a change silently: a rescan notice, a watcher error or a
//! lost watch (inotify limit) becomes a batch that asks for a full pass,
//! with a warning naming the fix. Owns the filter that drops events the
//! daemon caused itself and events inside `.dcsync/`.

use crate::engine::MARKER;
use crate::model::RelPath;
use notify_debouncer_full::notify::{self, EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the watcher reports after a quiet period.
#[derive(Debug, Default)]
pub struct Batch {
    pub paths: Vec<PathBuf>,
    /// Events were lost: a full pass is needed.
    pub rescan: bool,
    /// The watch itself is gone (limit reached): fall back to polling.
    pub watch_lost: bool,
}

pub type Watcher = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

const LIMIT_HINT: &str = "raise the limit, e.g. `sysctl fs.inotify.max_user_watches=524288` \
     (and in /etc/sysctl.d/ to keep it); until then dcsync finds local changes by polling";

/// Starts watching `root` recursively. `None` (with a warning) when the
/// platform refuses; the daemon then polls.
pub fn start(root: &Path, debounce: Duration, tx: UnboundedSender<Batch>) -> Option<Watcher> {
    let handler = move |res: DebounceEventResult| {
        let batch = match res {
            Ok(events) => {
                let mut b = Batch::default();
                for e in events {
                    if e.need_rescan() {
                        b.rescan = true;
                    }
                    if matches!(e.kind, EventKind::Access(_)) {
                        continue; // reads (ours included) change nothing
                    }
                    b.paths.extend(e.paths.iter().cloned());
                }
                b
            }
            Err(errors) => {
                let mut b = Batch {
                    rescan: true,
                    ..Batch::default()
                };
                for e in errors {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        tracing::warn!("the OS limit on watched folders was reached; {LIMIT_HINT}");
                        b.watch_lost = true;
                    } else {
                        tracing::warn!(error = %e, "the folder watcher reported an error; running a full pass");
                    }
                }
                b
            }
        };
        if !batch.paths.is_empty() || batch.rescan {
            let _ = tx.send(batch);
        }
    };
    let mut debouncer = match new_debouncer(debounce, None, handler) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a folder watcher; {LIMIT_HINT}");
            return None;
        }
    };
    if let Err(e) = debouncer.watch(root, RecursiveMode::Recursive) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            tracing::warn!(root = %root.display(), "the OS limit on watched folders was reached; {LIMIT_HINT}");
        } else {
            tracing::warn!(root = %root.display(), error = %e, "cannot watch the folder; changes are found by polling");
        }
        return None;
    }
    Some(debouncer)
}

/// The changes of a batch the daemon did not make itself (anything outside
/// `.dcsync/` and not a path, or below a path, in `touched`), as relative
/// paths. A path that cannot be one (not UTF-8, ...) is given as the root,
/// which asks for a full pass.
pub fn changed_paths(root: &Path, batch: &Batch, touched: &HashSet<RelPath>) -> Vec<RelPath> {
    batch
        .paths
        .iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root).ok()?;
            let Some(rel) = rel.to_str().and_then(RelPath::new) else {
                return Some(RelPath::root()); // let a full pass look at it
            };
            if rel.is_root() || rel.components().next() == Some(MARKER) {
                return None; // the root's own timestamps; our state folder
            }
            let ours = touched
                .iter()
                .any(|t| rel.starts_with(t) || t.parent().is_some_and(|tp| tp == rel));
            (!ours).then_some(rel)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(paths: &[&str]) -> Batch {
        Batch {
            paths: paths.iter().map(|p| Path::new("/r").join(p)).collect(),
            ..Batch::default()
        }
    }

    fn relevant(root: &Path, batch: &Batch, touched: &HashSet<RelPath>) -> bool {
        !changed_paths(root, batch, touched).is_empty()
    }

    #[test]
    fn filters_own_writes_and_state_dir() {
        let mut touched = HashSet::new();
        touched.insert(RelPath::new("docs/a.txt").unwrap());
        let root = Path::new("/r");
        assert!(!relevant(
            root,
            &batch(&[".dcsync/tmp/x.dcsync-part"]),
            &touched
        ));
        assert!(!relevant(root, &batch(&["docs/a.txt"]), &touched));
        // The parent folder's own change event comes with the file.
        assert!(!relevant(root, &batch(&["docs"]), &touched));
        assert!(relevant(root, &batch(&["docs/b.txt"]), &touched));
        assert!(relevant(root, &batch(&["docs/a.txt", "new.txt"]), &touched));
        assert_eq!(
            changed_paths(root, &batch(&["docs/a.txt", "new.txt"]), &touched),
            [RelPath::new("new.txt").unwrap()]
        );
    }
}
