//! The local trash, `.dcsync/trash/<UTC stamp>[-N]/<path>`: what is in it,
//! pruning by age and total size, and putting an entry back.
//!
//! Owns only that folder (which `check_state_dirs` has checked to be a
//! real folder of this user). Pruning removes whole slots (one per second
//! of deleting) and nothing else; restoring moves an entry back through
//! [`super::fsat`], never replacing anything: a taken place gets the entry
//! beside it under a `(restored ...)` name.

use super::MARKER;
use super::fsat::Root;
use crate::model::RelPath;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long trashed files are kept, and how much of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrashPolicy {
    /// Slots older than this are removed.
    pub retention: Duration,
    /// When the trash holds more than this many bytes, the oldest slots go
    /// first (the newest slot is always kept).
    pub max_bytes: Option<u64>,
}

/// Default: keep 30 days, no size cap.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for TrashPolicy {
    fn default() -> Self {
        TrashPolicy {
            retention: DEFAULT_RETENTION,
            max_bytes: None,
        }
    }
}

/// One file in the trash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrashEntry {
    /// Where it was in the sync folder.
    pub path: String,
    /// When it went to the trash (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub deleted_at: String,
    pub size: u64,
    /// The slot folder holding it (below `.dcsync/trash/`).
    pub slot: String,
}

fn trash_dir(root: &Path) -> PathBuf {
    root.join(MARKER).join("trash")
}

/// Seconds since the epoch of a slot name `YYYYMMDD-HHMMSS` (or with
/// `-N` after it); `None` for anything else.
fn slot_secs(name: &str) -> Option<i64> {
    let stamp = name.get(..15)?;
    let rest = &name[15..];
    if !(rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|n| n.parse::<u32>().is_ok()))
    {
        return None;
    }
    let (date, time) = stamp.split_once('-')?;
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, m, d) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (hh, mm, ss) = (num(&time[..2])?, num(&time[2..4])?, num(&time[4..])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The slots, oldest first, with their time.
fn slots(root: &Path) -> std::io::Result<Vec<(i64, String)>> {
    let dir = trash_dir(root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir()
            && let Some(t) = slot_secs(&name)
        {
            out.push((t, name));
        }
    }
    out.sort();
    Ok(out)
}

/// Files below `dir` (no symlink followed), as (path below it, size).
fn files_below(dir: &Path) -> Vec<(String, u64)> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?.to_str()?.to_owned();
            let size = e.metadata().ok()?.len();
            Some((rel, size))
        })
        .collect()
}

/// Everything in the trash, newest first.
pub fn list(root: &Path) -> std::io::Result<Vec<TrashEntry>> {
    let mut out = Vec::new();
    for (t, slot) in slots(root)?.into_iter().rev() {
        let deleted_at = crate::clock::datetime(
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0)),
        );
        let mut files = files_below(&trash_dir(root).join(&slot));
        files.sort();
        for (path, size) in files {
            out.push(TrashEntry {
                path,
                deleted_at: deleted_at.clone(),
                size,
                slot: slot.clone(),
            });
        }
    }
    Ok(out)
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub slots: usize,
    pub bytes: u64,
}

/// Removes slots older than the retention, then the oldest ones while the
/// trash is larger than the cap (never the newest). `now` in seconds since
/// the epoch.
pub fn prune(root: &Path, now: i64, policy: TrashPolicy) -> std::io::Result<Pruned> {
    let all = slots(root)?;
    let keep_after = now - i64::try_from(policy.retention.as_secs()).unwrap_or(i64::MAX);
    let sized: Vec<(i64, String, u64)> = all
        .into_iter()
        .map(|(t, s)| {
            let bytes = files_below(&trash_dir(root).join(&s))
                .iter()
                .map(|f| f.1)
                .sum();
            (t, s, bytes)
        })
        .collect();
    let mut total: u64 = sized.iter().map(|s| s.2).sum();
    let newest = sized.len().saturating_sub(1);
    let mut pruned = Pruned::default();
    for (i, (t, slot, bytes)) in sized.iter().enumerate() {
        let too_old = *t < keep_after;
        let too_big = policy.max_bytes.is_some_and(|m| total > m) && i < newest;
        if !(too_old || too_big) {
            continue;
        }
        std::fs::remove_dir_all(trash_dir(root).join(slot))?;
        total -= bytes;
        pruned.slots += 1;
        pruned.bytes += bytes;
    }
    Ok(pruned)
}

/// Moves the local entry at `path` into the trash slot of `stamp`
/// (`YYYYMMDD-HHMMSS`, `-N` added when that place is taken), never
/// following a symlink and never replacing anything. Returns where it went.
pub fn discard(root: &Path, path: &RelPath, stamp: &str) -> std::io::Result<PathBuf> {
    let fs = Root::open(root)?;
    for n in 1..1000 {
        let slot = if n == 1 {
            stamp.to_owned()
        } else {
            format!("{stamp}-{n}")
        };
        let Some(dest) = RelPath::new(&format!("{MARKER}/trash/{slot}/{}", path.as_str())) else {
            break;
        };
        match fs.rename(path, &dest, true) {
            Ok(()) => return Ok(root.join(dest.as_str())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "no free place in the trash for {path}"
    )))
}

/// Renames `from` to `to` inside the sync folder, never replacing and
/// never following a symlink.
pub fn rename(root: &Path, from: &RelPath, to: &RelPath) -> std::io::Result<()> {
    Root::open(root)?.rename(from, to, false)
}

/// Puts the newest trashed version of `path` back: at `path` when that is
/// free, else beside it as `name (restored STAMP).ext`. Returns where it
/// went. Never replaces anything.
pub fn restore(root: &Path, path: &RelPath, stamp: &str) -> std::io::Result<RelPath> {
    let fs = Root::open(root)?;
    let not_found = || {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{path} is not in the trash (see `dcsync trash list`)"),
        )
    };
    let slot = slots(root)?
        .into_iter()
        .rev()
        .find(|(_, s)| {
            std::fs::symlink_metadata(trash_dir(root).join(s).join(path.as_str())).is_ok()
        })
        .map(|(_, s)| s)
        .ok_or_else(not_found)?;
    let from =
        RelPath::new(&format!("{MARKER}/trash/{slot}/{}", path.as_str())).ok_or_else(not_found)?;
    let parent = path.parent().unwrap_or_default();
    // Folders on the way back are made again if they went too.
    drop(fs.dir_made(&parent, 0o777)?);
    match fs.rename(&from, path, false) {
        Ok(()) => return Ok(path.clone()),
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let name = path.name();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 1..100 {
        let alt = if n == 1 {
            format!("{stem} (restored {stamp}){ext}")
        } else {
            format!("{stem} (restored {stamp} {n}){ext}")
        };
        let Some(to) = parent.join(&alt) else { break };
        match fs.rename(&from, &to, false) {
            Ok(()) => return Ok(to),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!("no free name beside {path}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, slot: &str, rel: &str, bytes: usize) {
        let p = trash_dir(root).join(slot).join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![b'x'; bytes]).unwrap();
    }

    #[test]
    fn slot_names_are_times() {
        assert_eq!(slot_secs("19700101-000000"), Some(0));
        assert_eq!(slot_secs("20240919-044819"), Some(1_726_721_299));
        assert_eq!(slot_secs("20240919-044819-3"), Some(1_726_721_299));
        for bad in [
            "2024091-044819",
            "20241319-044819",
            "20240919-044819x",
            "notes",
            "",
        ] {
            assert_eq!(slot_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn prune_by_age_then_by_size_and_list_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        put(root, "20240101-000000", "old.txt", 10);
        put(root, "20240301-000000", "a/mid.txt", 100);
        put(root, "20240310-000000", "new.txt", 100);
        std::fs::create_dir_all(trash_dir(root).join("not-a-slot")).unwrap();
        let now = slot_secs("20240315-000000").unwrap();
        let l = list(root).unwrap();
        assert_eq!(l[0].path, "new.txt");
        assert_eq!(l[0].deleted_at, "2024-03-10 00:00:00");
        assert_eq!(l.len(), 3);
        // 30 days: only the January slot goes.
        let p = prune(root, now, TrashPolicy::default()).unwrap();
        assert_eq!(
            p,
            Pruned {
                slots: 1,
                bytes: 10
            }
        );
        // A 150-byte cap: the oldest remaining goes, the newest stays.
        let cap = TrashPolicy {
            max_bytes: Some(150),
            ..TrashPolicy::default()
        };
        assert_eq!(prune(root, now, cap).unwrap().slots, 1);
        let names: Vec<String> = list(root).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(names, ["new.txt"]);
        // Even over the cap, the newest slot is kept.
        let tiny = TrashPolicy {
            max_bytes: Some(1),
            ..TrashPolicy::default()
        };
        assert_eq!(prune(root, now, tiny).unwrap().slots, 0);
        assert!(
            trash_dir(root).join("not-a-slot").exists(),
            "only slots are touched"
        );
    }

    #[test]
    fn restore_puts_back_or_beside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        put(root, "20240101-000000", "docs/a.txt", 3);
        put(root, "20240201-000000", "docs/a.txt", 5);
        let p = RelPath::new("docs/a.txt").unwrap();
        assert_eq!(restore(root, &p, "2024-03-01 000000").unwrap(), p);
        assert_eq!(
            std::fs::read(root.join("docs/a.txt")).unwrap().len(),
            5,
            "newest"
        );
        let beside = restore(root, &p, "2024-03-01 000000").unwrap();
        assert_eq!(beside.as_str(), "docs/a (restored 2024-03-01 000000).txt");
        assert_eq!(
            std::fs::read(root.join("docs/a.txt")).unwrap().len(),
            5,
            "not replaced"
        );
        assert!(restore(root, &p, "x").is_err(), "nothing left");
    }
}
