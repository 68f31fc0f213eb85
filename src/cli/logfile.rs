//! `--log-file FILE`: the log written to `FILE.YYYY-MM-DD` (UTC), a new
//! file each day, each created owner-only (0600), appended to, and never
//! opened through a symlink (logs name every path dcsync touches).
//!
//! Owns only those files: never reads them back, never removes old ones
//! (rotation of old days is the system's job, e.g. logrotate).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A writer for `tracing_appender::non_blocking`.
pub struct DailyLog {
    dir: PathBuf,
    name: OsString,
    current: Option<(String, File)>,
}

impl DailyLog {
    /// Logs to `path` plus the day; nothing is opened before the first line.
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
        }
    }

    /// The file for `day` (`YYYY-MM-DD`).
    pub fn path_for(&self, day: &str) -> PathBuf {
        let mut n = self.name.clone();
        n.push(".");
        n.push(day);
        self.dir.join(n)
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        use std::os::unix::fs::OpenOptionsExt;
        let now = crate::clock::datetime(std::time::SystemTime::now());
        let day = now.get(..10).unwrap_or("unknown").to_owned();
        if self.current.as_ref().is_none_or(|(d, _)| *d != day) {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(self.path_for(&day))?;
            self.current = Some((day.clone(), f));
        }
        match &mut self.current {
            Some((_, f)) => Ok(f),
            None => Err(std::io::Error::other("no log file")),
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
    fn log_files_are_owner_only_and_never_follow_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut log = DailyLog::new(&dir.path().join("dcsync.log"));
        writeln!(log, "first line").unwrap();
        log.flush().unwrap();
        let day = crate::clock::datetime(std::time::SystemTime::now())[..10].to_owned();
        let p = log.path_for(&day);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first line\n");

        // A symlink planted where the log goes is refused.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let mut other = DailyLog::new(&dir.path().join("other.log"));
        std::os::unix::fs::symlink(&victim, other.path_for(&day)).unwrap();
        assert!(writeln!(other, "x").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
