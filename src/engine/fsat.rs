//! Local writes that never follow a symbolic link out of the sync root.
//!
//! Owns every create and rename the executor does inside the sync root
//! (downloads put in place, moves, conflicted copies, the trash, new
//! folders). Each acts on folders opened one component at a time from the
//! root with `O_NOFOLLOW | O_DIRECTORY`, then renames or creates by name
//! inside them (`renameat2(RENAME_NOREPLACE)`, `mkdirat`): a folder swapped
//! for a symlink between a check and the write makes the write fail instead
//! of landing elsewhere, and a rename never replaces what appeared at the
//! target meanwhile. The root itself is the configured path (its own
//! parents may be symlinks, as the user set it up).
//!
//! Never deletes anything and never writes outside the root.

use crate::model::RelPath;
use rustix::fs::{Mode, OFlags, RenameFlags};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// An opened sync root.
pub(crate) struct Root {
    fd: OwnedFd,
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Root {
    /// Opens the sync root (following the configured path as it is).
    pub(crate) fn open(root: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// The folder at `rel` (the root for the root), opened without
    /// following a symlink at any step.
    pub(crate) fn dir(&self, rel: &RelPath) -> io::Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.fd)?;
        for c in rel.components() {
            fd = rustix::fs::openat(&fd, c, dir_flags(), Mode::empty())?;
        }
        Ok(fd)
    }

    /// Like [`Root::dir`], creating missing folders (mode `mode`, less the
    /// umask) on the way.
    pub(crate) fn dir_made(&self, rel: &RelPath, mode: u32) -> io::Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.fd)?;
        for c in rel.components() {
            fd = match rustix::fs::openat(&fd, c, dir_flags(), Mode::empty()) {
                Ok(next) => next,
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&fd, c, Mode::from_raw_mode(mode)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(&fd, c, dir_flags(), Mode::empty())?
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(fd)
    }

    /// Renames `from` to `to` (both relative to the root) without
    /// following symlinks in their folders and without replacing anything
    /// at `to` (`AlreadyExists` then). `make_parents`: create `to`'s
    /// missing folders first (mode 0700: for the trash).
    pub(crate) fn rename(
        &self,
        from: &RelPath,
        to: &RelPath,
        make_parents: bool,
    ) -> io::Result<()> {
        let (Some(fp), Some(tp)) = (from.parent(), to.parent()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the sync root itself cannot be renamed",
            ));
        };
        let from_dir = self.dir(&fp)?;
        let to_dir = if make_parents {
            self.dir_made(&tp, 0o700)?
        } else {
            self.dir(&tp)?
        };
        match rustix::fs::renameat_with(
            &from_dir,
            from.name(),
            &to_dir,
            to.name(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            // A filesystem without RENAME_NOREPLACE (some network shares):
            // look, then rename, in the same opened folders.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                match rustix::fs::statat(&to_dir, to.name(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                {
                    Ok(_) => Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "the target exists",
                    )),
                    Err(rustix::io::Errno::NOENT) => Ok(rustix::fs::renameat(
                        &from_dir,
                        from.name(),
                        &to_dir,
                        to.name(),
                    )?),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the folder `rel` if it is empty, not following symlinks on
    /// the way (a symlink at `rel` itself is not a folder: refused).
    pub(crate) fn rmdir(&self, rel: &RelPath) -> io::Result<()> {
        let parent = rel.parent().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the sync root is never removed",
            )
        })?;
        let dir = self.dir(&parent)?;
        Ok(rustix::fs::unlinkat(
            &dir,
            rel.name(),
            rustix::fs::AtFlags::REMOVEDIR,
        )?)
    }

    /// Creates the folder `rel` (its parent must exist), not following
    /// symlinks on the way.
    pub(crate) fn mkdir(&self, rel: &RelPath) -> io::Result<()> {
        let parent = rel.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the sync root already exists")
        })?;
        let dir = self.dir(&parent)?;
        Ok(rustix::fs::mkdirat(
            &dir,
            rel.name(),
            Mode::from_raw_mode(0o777),
        )?)
    }
}

/// The permissions a new file gets here: 0666 less the process's umask
/// (read from `/proc/self/status`; 022 assumed where that is not
/// available), without changing the umask.
pub(crate) fn new_file_mode() -> u32 {
    let umask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022);
    0o666 & !umask
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn writes_never_follow_a_swapped_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("f"), b"x").unwrap();
        let r = Root::open(&root).unwrap();
        // A folder swapped for a symlink to somewhere else.
        std::fs::remove_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("d")).unwrap();
        assert!(r.rename(&p("f"), &p("d/f"), false).is_err());
        assert!(r.mkdir(&p("d/new")).is_err());
        assert!(r.dir_made(&p("d/x/y"), 0o700).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(root.join("f").exists());
    }

    #[test]
    fn renames_never_replace_and_make_parents_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("b"), b"b").unwrap();
        let r = Root::open(root).unwrap();
        let e = r.rename(&p("a"), &p("b"), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(root.join("b")).unwrap(), b"b");
        assert!(r.rename(&p("a"), &p("t/s/a"), false).is_err(), "no parents");
        r.rename(&p("a"), &p("t/s/a"), true).unwrap();
        assert_eq!(std::fs::read(root.join("t/s/a")).unwrap(), b"a");
        r.mkdir(&p("t/n")).unwrap();
        assert!(root.join("t/n").is_dir());
    }
}
