//! `--log-file FILE`: the log written to FILE itself (so `tail -f FILE`
//! works), owner-only (0600), appended to, never opened through a symlink
//! (logs name every path dcsync touches). When the day (UTC) changes, FILE
//! is renamed to `FILE.YYYY-MM-DD` and a new FILE begins; the newest
//! [`KEEP_DAYS`] of those are kept, older ones removed.
//!
//! Owns only those files: never reads them back, never touches others.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many earlier days of logs are kept beside FILE.
pub const KEEP_DAYS: usize = 7;

/// A writer for `tracing_appender::non_blocking`.
pub struct DailyLog {
    dir: PathBuf,
    name: OsString,
    /// The open FILE and the day its lines belong to.
    current: Option<(String, File)>,
    /// Where "now" comes from (tests move it).
    today: fn() -> String,
}

fn utc_today() -> String {
    let now = crate::clock::datetime(std::time::SystemTime::now());
    now.get(..10).unwrap_or("unknown").to_owned()
}

impl DailyLog {
    /// Logs to `path`; nothing is opened before the first line.
    pub fn new(path: &Path) -> DailyLog {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "dcsync.log".into());
        DailyLog {
            dir,
            name,
            current: None,
            today: utc_today,
        }
    }

    /// The live file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Where the lines of `day` (`YYYY-MM-DD`) go once that day is over.
    pub fn path_for(&self, day: &str) -> PathBuf {
        let mut n = self.name.clone();
        n.push(".");
        n.push(day);
        self.dir.join(n)
    }

    fn open(&self) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(self.path())
    }

    /// The day the lines already in FILE belong to (its last change).
    fn day_of_existing(&self) -> Option<String> {
        let md = std::fs::symlink_metadata(self.path()).ok()?;
        let t = md.modified().ok()?;
        crate::clock::datetime(t).get(..10).map(str::to_owned)
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        let today = (self.today)();
        if self.current.is_none() {
            let day = self.day_of_existing().unwrap_or_else(|| today.clone());
            self.current = Some((day, self.open()?));
        }
        if self.current.as_ref().is_some_and(|(d, _)| *d != today) {
            self.rotate(&today)?;
        }
        match &mut self.current {
            Some((_, f)) => Ok(f),
            None => Err(std::io::Error::other("no log file")),
        }
    }

    /// FILE becomes `FILE.<its day>`, a new FILE begins, old days go.
    fn rotate(&mut self, today: &str) -> std::io::Result<()> {
        if let Some((day, f)) = self.current.take() {
            drop(f);
            let done = self.path_for(&day);
            if std::fs::symlink_metadata(&done).is_err() {
                std::fs::rename(self.path(), &done)?;
            }
        }
        self.current = Some((today.to_owned(), self.open()?));
        self.prune();
        Ok(())
    }

    /// Removes `FILE.YYYY-MM-DD` files beyond the newest [`KEEP_DAYS`].
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut prefix = self.name.clone();
        prefix.push(".");
        let prefix = prefix.to_string_lossy().into_owned();
        let mut old: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_prefix(&prefix).is_some_and(|d| {
                    d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                })
            })
            .map(|e| e.path())
            .collect();
        old.sort();
        let extra = old.len().saturating_sub(KEEP_DAYS);
        for p in old.into_iter().take(extra) {
            if let Err(e) = std::fs::remove_file(&p) {
                eprintln!("warning: could not remove the old log {}: {e}", p.display());
            }
        }
    }
}

impl Write for DailyLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.current {
            Some((_, f)) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_file_itself_owner_only_and_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut log = DailyLog::new(&dir.path().join("dcsync.log"));
        writeln!(log, "first line").unwrap();
        log.flush().unwrap();
        let p = dir.path().join("dcsync.log");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first line\n");

        // A symlink planted where the log goes is refused.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("other.log")).unwrap();
        let mut other = DailyLog::new(&dir.path().join("other.log"));
        assert!(writeln!(other, "x").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_new_day_rotates_and_old_days_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        // Ten earlier days already there.
        for d in 1..=10 {
            std::fs::write(dir.path().join(format!("d.log.2026-01-{d:02}")), b"old").unwrap();
        }
        let mut log = DailyLog::new(&path);
        log.today = || "2026-02-01".to_owned();
        log.current = Some(("2026-01-31".to_owned(), log.open().unwrap()));
        writeln!(log, "a line of the 31st").unwrap();
        // (the line above was written after the day changed: it opens the
        // new FILE; what FILE held moved to FILE.2026-01-31)
        log.flush().unwrap();
        assert!(dir.path().join("d.log.2026-01-31").exists());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a line of the 31st\n"
        );
        let mut kept: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("d.log."))
            .collect();
        kept.sort();
        assert_eq!(kept.len(), KEEP_DAYS, "{kept:?}");
        assert_eq!(kept.last().unwrap(), "d.log.2026-01-31");
        assert!(!kept.contains(&"d.log.2026-01-03".to_owned()));
    }
}
