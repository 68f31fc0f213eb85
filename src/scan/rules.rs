//! Which local paths are not synced: built-in editor/OS temp-file patterns
//! plus the user's `.dcsyncignore` (gitignore syntax) at the sync root.
//!
//! Later lines win, as in gitignore, so a `!pattern` in `.dcsyncignore` can
//! re-include something a default excludes. Our own partial downloads
//! (`*.dcsync-part`) and the `.dcsync` folder at the root are always excluded.

use super::ScanError;
use crate::model::{Kind, RelPath};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::{Path, PathBuf};

/// The user's ignore file, at the sync root.
pub const IGNORE_FILE: &str = ".dcsyncignore";

/// Suffix of our own temp files (downloads in progress).
pub const PART_SUFFIX: &str = ".dcsync-part";

/// The state folder at the sync root.
pub const STATE_DIR: &str = ".dcsync";

/// Editor and OS temp files that are never worth syncing (unless re-included).
pub const DEFAULT_PATTERNS: &[&str] = &[
    "*.swp",
    "*.swx",
    "~$*",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "*.part",
    "*.crdownload",
    ".#*",
    "*~",
    ".~lock.*#",
    "*.dcsync-part",
];

/// Compiled ignore rules.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    matcher: Gitignore,
    /// The `.dcsyncignore` that was read, if any.
    source: Option<PathBuf>,
    /// Its content as read (empty without one).
    text: Vec<u8>,
}

impl IgnoreRules {
    /// The built-in defaults only.
    pub fn defaults() -> IgnoreRules {
        let b = builder_with_defaults();
        IgnoreRules {
            matcher: b.build().expect("built-in ignore patterns are valid"),
            source: None,
            text: Vec::new(),
        }
    }

    /// Whether `other` was read from the same ignore file content (the
    /// same rules).
    pub fn same_as(&self, other: &IgnoreRules) -> bool {
        self.source.is_some() == other.source.is_some() && self.text == other.text
    }

    /// Defaults plus `<root>/.dcsyncignore` when it exists. A line that is
    /// not a valid pattern is an error naming the file and line.
    pub fn load(root: &Path) -> Result<IgnoreRules, ScanError> {
        let path = root.join(IGNORE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(IgnoreRules::defaults());
            }
            Err(source) => return Err(ScanError::IgnoreRead { path, source }),
        };
        let mut b = builder_with_defaults();
        for (i, raw) in bytes.split(|&c| c == b'\n').enumerate() {
            let line_no = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = std::str::from_utf8(raw).map_err(|_| ScanError::IgnoreSyntax {
                path: path.clone(),
                line: line_no,
                message: "the line is not valid UTF-8".into(),
            })?;
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            b.add_line(Some(path.clone()), line)
                .map_err(|e| ScanError::IgnoreSyntax {
                    path: path.clone(),
                    line: line_no,
                    message: e.to_string(),
                })?;
        }
        let matcher = b.build().map_err(|e| ScanError::IgnoreSyntax {
            path: path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Ok(IgnoreRules {
            matcher,
            source: Some(path),
            text: bytes,
        })
    }

    /// The `.dcsyncignore` these rules were read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Whether `rel` (or a folder above it) is excluded from sync.
    pub fn is_ignored(&self, rel: &RelPath, kind: Kind) -> bool {
        if rel.is_root() {
            return false;
        }
        // Git semantics: nothing below an excluded folder can be re-included.
        let mut prefix = RelPath::root();
        let mut comps = rel.components().peekable();
        while let Some(c) = comps.next() {
            let last = comps.peek().is_none();
            prefix = match prefix.join(c) {
                Some(p) => p,
                None => return false,
            };
            let k = if last { kind } else { Kind::Dir };
            if self.ignores_entry(&prefix, k) {
                return true;
            }
        }
        false
    }

    /// Whether this entry itself is excluded, its parents assumed included
    /// (what a top-down walk needs).
    pub fn ignores_entry(&self, rel: &RelPath, kind: Kind) -> bool {
        if rel.is_root() {
            return false;
        }
        let name = rel.name();
        if name.ends_with(PART_SUFFIX) || (rel.depth() == 1 && name == STATE_DIR) {
            return true;
        }
        self.matcher
            .matched(Path::new(rel.as_str()), kind == Kind::Dir)
            .is_ignore()
    }
}

fn builder_with_defaults() -> GitignoreBuilder {
    // Root `.` means "paths are already relative": nothing is stripped.
    let mut b = GitignoreBuilder::new(".");
    for p in DEFAULT_PATTERNS {
        b.add_line(None, p)
            .expect("built-in ignore pattern is valid");
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn defaults_cover_temp_files() {
        let r = IgnoreRules::defaults();
        for f in [
            "a.swp",
            "x/.b.swx",
            "~$report.docx",
            ".DS_Store",
            "d/Thumbs.db",
            "desktop.ini",
            "big.iso.part",
            "x.crdownload",
            ".#notes.org",
            "notes.txt~",
            ".~lock.sheet.ods#",
            "movie.mkv.dcsync-part",
        ] {
            assert!(r.is_ignored(&p(f), Kind::File), "{f}");
        }
        for f in ["a.txt", "part", "swp", "report.docx", "d/x~y"] {
            assert!(!r.is_ignored(&p(f), Kind::File), "{f}");
        }
        assert!(r.is_ignored(&p(".dcsync"), Kind::Dir));
        assert!(r.is_ignored(&p(".dcsync/trash/x"), Kind::File));
        assert!(!r.is_ignored(&p("a/.dcsync"), Kind::Dir));
        assert!(!r.is_ignored(&RelPath::root(), Kind::Dir));
    }

    #[test]
    fn user_file_with_negation_and_dir_patterns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(IGNORE_FILE),
            "# comment\n*.log\n!keep.log\nbuild/\n/top-only\n!*.part\ncache/**\n",
        )
        .unwrap();
        let r = IgnoreRules::load(dir.path()).unwrap();
        assert!(r.source().is_some());
        assert!(r.is_ignored(&p("a.log"), Kind::File));
        assert!(r.is_ignored(&p("x/y/a.log"), Kind::File));
        assert!(!r.is_ignored(&p("keep.log"), Kind::File));
        assert!(!r.is_ignored(&p("x/keep.log"), Kind::File));
        // Dir pattern: the folder and everything below it, not a file of that name.
        assert!(r.is_ignored(&p("build"), Kind::Dir));
        assert!(r.is_ignored(&p("src/build"), Kind::Dir));
        assert!(r.is_ignored(&p("build/out.bin"), Kind::File));
        assert!(!r.is_ignored(&p("build"), Kind::File));
        // Anchored.
        assert!(r.is_ignored(&p("top-only"), Kind::File));
        assert!(!r.is_ignored(&p("d/top-only"), Kind::File));
        // The user re-included *.part, but never our own temp files.
        assert!(!r.is_ignored(&p("a.part"), Kind::File));
        assert!(r.is_ignored(&p("a.dcsync-part"), Kind::File));
        // `cache/**`: contents, not the folder itself.
        assert!(!r.is_ignored(&p("cache"), Kind::Dir));
        assert!(r.is_ignored(&p("cache/x"), Kind::File));
        // Defaults still apply.
        assert!(r.is_ignored(&p("a.swp"), Kind::File));
    }

    #[test]
    fn nothing_below_an_ignored_folder_is_re_included() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IGNORE_FILE), "tmp/\n!tmp/keep.txt\n").unwrap();
        let r = IgnoreRules::load(dir.path()).unwrap();
        assert!(r.is_ignored(&p("tmp/keep.txt"), Kind::File));
    }

    #[test]
    fn bad_pattern_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IGNORE_FILE), "ok\n\n[z-a]\n").unwrap();
        let e = IgnoreRules::load(dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, ScanError::IgnoreSyntax { line: 3, .. }),
            "{e:?}"
        );
        assert!(msg.contains(IGNORE_FILE) && msg.contains(":3"), "{msg}");
    }

    #[test]
    fn missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let r = IgnoreRules::load(dir.path()).unwrap();
        assert!(r.source().is_none());
        assert!(r.is_ignored(&p("a.swp"), Kind::File));
    }
}
