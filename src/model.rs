//! The values the sync engine reasons about: relative paths and the entries
//! of the three trees (Local, Remote, Synced).
//!
//! Plain data only: no I/O, no clock, no database. Every other engine module
//! (scan, snapshot, state, plan, exec) speaks these types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A path relative to the sync root, `/`-separated, without leading or
/// trailing `/`; the root itself is the empty path. Components are never
/// empty, `.` or `..` (constructors enforce it).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    /// The sync root.
    pub fn root() -> RelPath {
        RelPath(String::new())
    }

    /// Parses `a/b/c`; `None` if a component is empty, `.`, `..` or has a NUL.
    pub fn new(s: &str) -> Option<RelPath> {
        if s.is_empty() {
            return Some(RelPath::root());
        }
        if s.split('/').all(valid_component) {
            Some(RelPath(s.to_owned()))
        } else {
            None
        }
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn root_ref() -> &'static RelPath {
        static ROOT: RelPath = RelPath(String::new());
        &ROOT
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component (empty for the root).
    pub fn name(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The parent path (`None` for the root).
    pub fn parent(&self) -> Option<RelPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => RelPath(self.0[..i].to_owned()),
            None => RelPath::root(),
        })
    }

    /// `self/name`; `None` if `name` is not a valid single component.
    pub fn join(&self, name: &str) -> Option<RelPath> {
        if !valid_component(name) {
            return None;
        }
        Some(if self.is_root() {
            RelPath(name.to_owned())
        } else {
            RelPath(format!("{}/{}", self.0, name))
        })
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// Whether `self` lies strictly below `other`.
    pub fn is_below(&self, other: &RelPath) -> bool {
        self != other && self.starts_with(other)
    }

    /// Replaces the prefix `from` by `to` (`self` must start with `from`).
    pub fn rebase(&self, from: &RelPath, to: &RelPath) -> Option<RelPath> {
        if !self.starts_with(from) {
            return None;
        }
        let rest = self.0[from.0.len()..].trim_start_matches('/');
        if rest.is_empty() {
            return Some(to.clone());
        }
        if to.is_root() {
            return Some(RelPath(rest.to_owned()));
        }
        Some(RelPath(format!("{}/{}", to.0, rest)))
    }

    /// Number of components (0 for the root).
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.0.matches('/').count() + 1
        }
    }

    /// The components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }
}

fn valid_component(c: &str) -> bool {
    !(c.is_empty() || c == "." || c == ".." || c.contains('/') || c.contains('\0'))
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// For people: a path as it is shown (`/` for the root), with control
/// characters escaped (a remote name could hold ESC or BEL).
impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("/")
        } else {
            f.write_str(&printable(&self.0))
        }
    }
}

/// `s` with every control character (ESC, BEL, CR, LF, tab, DEL, C1)
/// escaped as Rust does (`\u{1b}`, `\r`, ...): names from a host or a disk
/// shown in a terminal can then neither move the cursor nor fake a line.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, false)
}

/// Like [`printable`] but keeps line ends: for whole messages.
pub fn printable_text(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, true)
}

fn escape_controls(s: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// File or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
}

/// The fast change check of a local file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct LocalMeta {
    pub dev: u64,
    pub ino: u64,
    /// 0 for folders.
    pub size: u64,
    pub mtime_ns: i64,
}

impl LocalMeta {
    /// The modification time recorded for a file that was *racily clean*
    /// when it was recorded: its mtime was within one tick
    /// ([`racy_window_ns`]) of the moment dcsync read it, so a change in the same timestamp tick would
    /// leave size and mtime as they were. No real file has this mtime, so
    /// the fast check fails and the file is hashed again (git's rule).
    pub const RACY_MTIME: i64 = i64::MIN;

    /// This identity as Synced should record it when its content was read
    /// at `read_ns` (ns since the epoch): with [`LocalMeta::RACY_MTIME`]
    /// when it is racily clean.
    pub fn settled(self, read_ns: i64) -> LocalMeta {
        if self.is_racy_at(read_ns) {
            LocalMeta {
                mtime_ns: Self::RACY_MTIME,
                ..self
            }
        } else {
            self
        }
    }

    /// Whether a change at or after `read_ns` could have kept this mtime:
    /// the mtime is not older than one timestamp tick before the read.
    pub fn is_racy_at(&self, read_ns: i64) -> bool {
        self.mtime_ns != Self::RACY_MTIME
            && self.mtime_ns >= read_ns.saturating_sub(racy_window_ns(self.mtime_ns))
    }
}

/// How long one timestamp tick may be for a file with this mtime: 2 s when
/// the mtime has no sub-second part (FAT, some network shares, older
/// filesystems give every write in such a span the same mtime), else 20 ms
/// (a kernel clock tick, with room).
pub fn racy_window_ns(mtime_ns: i64) -> i64 {
    if mtime_ns.rem_euclid(1_000_000_000) == 0 {
        2_000_000_000
    } else {
        20_000_000
    }
}

/// A content digest of `N` bytes, held as bytes (a tree of many files would
/// spend ~100 bytes of heap per hex string). Its text form — state DB,
/// journal, logs, `Debug` — is lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest<const N: usize>(pub [u8; N]);

/// SHA-256: what dcsync compares contents by.
pub type Sha256 = Digest<32>;
/// MD5: what the host reports for uploads.
pub type Md5 = Digest<16>;

impl<const N: usize> Digest<N> {
    /// Parses `2 * N` hex digits (either case); `None` otherwise.
    pub fn from_hex(s: &str) -> Option<Digest<N>> {
        let mut b = [0u8; N];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(Digest(b))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl<const N: usize> fmt::Display for Digest<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl<const N: usize> fmt::Debug for Digest<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_hex())
    }
}

impl<const N: usize> Serialize for Digest<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de, const N: usize> Deserialize<'de> for Digest<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest<N>, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected {} hex digits, got {s:?}", 2 * N))
        })
    }
}

/// Content hashes. `None` = not computed (or not known).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Hashes {
    #[serde(default, deserialize_with = "known_digest")]
    pub sha256: Option<Sha256>,
    #[serde(default, deserialize_with = "known_digest")]
    pub md5: Option<Md5>,
}

/// Journal entries of earlier versions may hold `""` for a hash the host
/// did not report: that is "not known", not damage.
fn known_digest<'de, D: serde::Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<Option<Digest<N>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Digest::from_hex(&s).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("expected {} hex digits, got {s:?}", 2 * N))
        }),
    }
}

/// One entry of the Local tree (what the disk holds now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEntry {
    pub kind: Kind,
    pub meta: LocalMeta,
    /// Files only; computed by the scanner when the fast check says the
    /// content may differ from Synced (or the file is new).
    pub hashes: Hashes,
}

/// One entry of the Remote tree (what the last listing showed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEntry {
    pub kind: Kind,
    /// File id or folder id (separate namespaces on the host).
    pub id: u64,
    /// Parent folder id; `None` = account root.
    pub parent: Option<u64>,
    pub size: u64,
}

/// One entry of the Synced tree: the last state both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedEntry {
    pub kind: Kind,
    /// Local identity when last agreed.
    pub local: LocalMeta,
    /// Content hashes when last agreed (files).
    pub hashes: Hashes,
    /// Remote file or folder id when last agreed.
    pub remote_id: u64,
    pub remote_parent: Option<u64>,
    /// The name the host stores (equal to the path's last component unless
    /// a name mapping was recorded).
    pub remote_name: String,
    pub size: u64,
}

/// A whole tree keyed by path (ordered: parents before children).
pub type Tree<E> = BTreeMap<RelPath, E>;

/// The entries strictly below `dir`, in path order.
///
/// Not `range(dir..).take_while(starts_with(dir))`: names such as `d.txt`,
/// `d-x` or `d x` sort between `d` and `d/...` (`.`, `-` and space come
/// before `/`), and would end such a walk before the folder's content.
pub fn below<'t, E>(
    tree: &'t Tree<E>,
    dir: &RelPath,
) -> std::collections::btree_map::Range<'t, RelPath, E> {
    use std::ops::Bound;
    if dir.is_root() {
        // Everything but the root itself.
        return tree.range((Bound::Excluded(RelPath::root()), Bound::Unbounded));
    }
    // `dir/` up to `dir0`: '0' is the byte after '/'. Bounds only, never
    // paths (both are invalid as paths).
    let lower = RelPath(format!("{}/", dir.0));
    let upper = RelPath(format!("{}0", dir.0));
    tree.range((Bound::Included(lower), Bound::Excluded(upper)))
}

/// A part of the tree that a focused pass looks at: everything strictly
/// below `base` (deep), or only `base`'s direct children (shallow). The
/// folders on the way to `base` (its "spine") are looked at too, so that
/// the three trees of a focused pass are cut the same way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub base: RelPath,
    pub deep: bool,
}

impl Scope {
    /// Whether `p` lies inside the scope (never `base` itself).
    pub fn contains(&self, p: &RelPath) -> bool {
        p.is_below(&self.base) && (self.deep || p.depth() == self.base.depth() + 1)
    }

    /// [`Scope::contains`] for a path given as text (notes on skipped
    /// paths, which may be lossy renderings).
    pub fn contains_str(&self, p: &str) -> bool {
        let rest = if self.base.is_root() {
            Some(p)
        } else {
            p.strip_prefix(self.base.as_str())
                .and_then(|r| r.strip_prefix('/'))
        };
        rest.is_some_and(|r| !r.is_empty() && (self.deep || !r.contains('/')))
    }

    /// `base` and the folders above it, outermost first; not the root.
    pub fn spine(&self) -> Vec<RelPath> {
        let mut out = Vec::new();
        let mut cur = Some(self.base.clone());
        while let Some(c) = cur {
            if c.is_root() {
                break;
            }
            cur = c.parent();
            out.push(c);
        }
        out.reverse();
        out
    }
}

/// Whether `p` is looked at by one of `scopes`: inside one, or on a spine.
pub fn in_scopes(scopes: &[Scope], p: &RelPath) -> bool {
    scopes
        .iter()
        .any(|s| s.contains(p) || (!p.is_root() && s.base.starts_with(p)))
}

/// The part of `tree` that `scopes` look at.
pub fn restrict<E: Clone>(tree: &Tree<E>, scopes: &[Scope]) -> Tree<E> {
    let mut out = Tree::new();
    for s in scopes {
        for p in s.spine() {
            if let Some(e) = tree.get(&p) {
                out.insert(p, e.clone());
            }
        }
        for (p, e) in below(tree, &s.base) {
            if s.contains(p) {
                out.insert(p.clone(), e.clone());
            }
        }
    }
    out
}

/// The Local tree plus where the scan could not look.
#[derive(Debug, Clone, Default)]
pub struct LocalView {
    pub entries: Tree<LocalEntry>,
    /// Subtrees the scan could not read: nothing in them counts as deleted.
    pub unknown: Vec<RelPath>,
    /// Top-most paths that exist on disk but are not synced: matched by the
    /// ignore rules, symbolic links, special files. Never uploaded, written
    /// over, moved or trashed, and not deletions either: the planner treats
    /// them like `unknown` (see [`LocalView::is_unknown`]), but they are not
    /// a failure to look.
    pub ignored: std::collections::BTreeSet<RelPath>,
    /// Folders holding entries that no path can name (names that are not
    /// UTF-8 or not usable as a path component): never removed whole.
    pub holds_more: std::collections::BTreeSet<RelPath>,
}

/// The Remote tree plus where the listing failed.
#[derive(Debug, Clone, Default)]
pub struct RemoteView {
    pub entries: Tree<RemoteEntry>,
    /// Subtrees whose listing failed: nothing in them counts as deleted.
    pub unknown: Vec<RelPath>,
    /// Top-most remote paths the ignore rules match: never downloaded,
    /// moved, trashed or written over; left out of `entries`.
    pub ignored: std::collections::BTreeSet<RelPath>,
    /// Folders holding entries whose names cannot exist locally (`/`, NUL,
    /// `.`, `..`): never trashed whole along with them.
    pub holds_more: std::collections::BTreeSet<RelPath>,
}

/// Whether `p` or a folder above it is in `set`.
pub fn under_any(set: &std::collections::BTreeSet<RelPath>, p: &RelPath) -> bool {
    if set.is_empty() {
        return false;
    }
    if set.contains(RelPath::root_ref()) {
        return true;
    }
    let s = p.as_str();
    // Every prefix of `p` that ends at a component boundary.
    s.match_indices('/')
        .map(|(i, _)| &s[..i])
        .chain(std::iter::once(s))
        .any(|prefix| set.contains(&RelPath(prefix.to_owned())))
}

/// Whether anything in `set` lies strictly below `dir`.
pub fn any_below(set: &std::collections::BTreeSet<RelPath>, dir: &RelPath) -> bool {
    use std::ops::Bound;
    if set.is_empty() {
        return false;
    }
    if dir.is_root() {
        return set.iter().any(|p| !p.is_root());
    }
    let lower = RelPath(format!("{}/", dir.0));
    let upper = RelPath(format!("{}0", dir.0));
    set.range((Bound::Included(lower), Bound::Excluded(upper)))
        .next()
        .is_some()
}

impl LocalView {
    /// Whether the planner must leave `p` alone: it lies in a subtree the
    /// scan could not read, or is (below) an entry that is not synced.
    pub fn is_unknown(&self, p: &RelPath) -> bool {
        self.unknown.iter().any(|u| p.starts_with(u)) || under_any(&self.ignored, p)
    }
}

impl RemoteView {
    /// Whether the planner must leave `p` alone: its listing failed, or it
    /// is (below) an ignored entry.
    pub fn is_unknown(&self, p: &RelPath) -> bool {
        self.unknown.iter().any(|u| p.starts_with(u)) || under_any(&self.ignored, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn ignored_sets_cover_their_subtrees_exactly() {
        let set: std::collections::BTreeSet<RelPath> = [p("d"), p("x/.env")].into();
        assert!(under_any(&set, &p("d")));
        assert!(under_any(&set, &p("d/e/f")));
        assert!(!under_any(&set, &p("d.txt")));
        assert!(!under_any(&set, &p("dd/e")));
        assert!(under_any(&set, &p("x/.env")));
        assert!(!under_any(&set, &p("x")));
        assert!(any_below(&set, &p("x")));
        assert!(any_below(&set, &RelPath::root()));
        assert!(!any_below(&set, &p("d")), "strictly below");
        assert!(!any_below(&set, &p("x/.env")));
        assert!(!under_any(&Default::default(), &p("a")));
        let view = LocalView {
            ignored: set,
            ..Default::default()
        };
        assert!(view.is_unknown(&p("d/e")) && !view.is_unknown(&p("e")));
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        let evil = "a\u{1b}[31mred\u{7}\r\nb\u{9b}.txt";
        assert_eq!(printable(evil), "a\\u{1b}[31mred\\u{7}\\r\\nb\\u{9b}.txt");
        assert_eq!(printable_text("one\ntwo\u{1b}"), "one\ntwo\\u{1b}");
        assert!(matches!(printable("café"), std::borrow::Cow::Borrowed(_)));
        let p = RelPath::new(evil).unwrap();
        assert!(!p.to_string().contains('\u{1b}'));
        assert_eq!(p.as_str(), evil, "the path itself is unchanged");
    }

    #[test]
    fn racily_clean_identities() {
        let sec = 1_700_000_000_i64 * 1_000_000_000;
        let m = |mtime_ns| LocalMeta {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
        };
        // Whole-second mtimes: a 2 s tick.
        assert!(m(sec).is_racy_at(sec + 1_500_000_000));
        assert!(!m(sec).is_racy_at(sec + 2_500_000_000));
        assert!(
            m(sec + 5_000_000_000).is_racy_at(sec),
            "changed after the read"
        );
        // Fine-grained mtimes: a 20 ms tick.
        assert!(m(sec + 7).is_racy_at(sec + 10_000_007));
        assert!(!m(sec + 7).is_racy_at(sec + 30_000_007));
        let settled = m(sec).settled(sec);
        assert_eq!(settled.mtime_ns, LocalMeta::RACY_MTIME);
        assert_eq!((settled.ino, settled.size), (2, 3));
        assert!(!settled.is_racy_at(sec), "already marked");
        assert_eq!(m(sec).settled(sec + 60_000_000_000), m(sec));
    }

    #[test]
    fn paths() {
        assert!(RelPath::new("a//b").is_none());
        assert!(RelPath::new("a/../b").is_none());
        assert!(RelPath::new("/a").is_none());
        assert_eq!(p("a/b/c").name(), "c");
        assert_eq!(p("a/b/c").parent(), Some(p("a/b")));
        assert_eq!(p("a").parent(), Some(RelPath::root()));
        assert_eq!(RelPath::root().join("x"), Some(p("x")));
        assert!(p("a/b").starts_with(&p("a")));
        assert!(!p("ab").starts_with(&p("a")));
        assert!(p("a").starts_with(&RelPath::root()));
        assert_eq!(p("a/b/c").rebase(&p("a/b"), &p("x")), Some(p("x/c")));
        assert_eq!(
            p("a/b").rebase(&p("a/b"), &RelPath::root()),
            Some(RelPath::root())
        );
        assert_eq!(p("a/b/c").rebase(&p("a"), &RelPath::root()), Some(p("b/c")));
        assert_eq!(p("a/b/c").depth(), 3);
        // Parents sort before their children.
        let mut v = [p("a/b"), p("a b"), p("a")];
        v.sort();
        assert_eq!(v[0], p("a"));
    }

    #[test]
    fn below_sees_past_siblings_that_sort_before_the_slash() {
        let mut t: Tree<u8> = Tree::new();
        for k in ["d", "d x", "d-1", "d.txt", "d/a", "d/b/c", "d0", "e"] {
            t.insert(p(k), 0);
        }
        let keys = |d: &RelPath| -> Vec<&str> { below(&t, d).map(|(k, _)| k.as_str()).collect() };
        assert_eq!(keys(&p("d")), ["d/a", "d/b/c"]);
        assert_eq!(keys(&p("d/b")), ["d/b/c"]);
        assert!(keys(&p("e")).is_empty());
        assert_eq!(keys(&RelPath::root()).len(), t.len());
    }

    #[test]
    fn scopes_cut_trees_the_same_way() {
        let deep = Scope {
            base: p("a/b"),
            deep: true,
        };
        let shallow = Scope {
            base: RelPath::root(),
            deep: false,
        };
        assert!(deep.contains(&p("a/b/c/d")));
        assert!(!deep.contains(&p("a/b")));
        assert!(!deep.contains(&p("a/bc")));
        assert!(shallow.contains(&p("x")));
        assert!(!shallow.contains(&p("x/y")));
        assert!(
            deep.contains_str("a/b/c/d") && !deep.contains_str("a/b") && !deep.contains_str("a/bc")
        );
        assert!(shallow.contains_str("x\u{fffd}") && !shallow.contains_str("x/y"));
        assert_eq!(deep.spine(), [p("a"), p("a/b")]);
        assert!(shallow.spine().is_empty());
        let mut t: Tree<u8> = Tree::new();
        for k in ["a", "a/b", "a/b/c", "a/b/c/d", "a/b.txt", "a/x", "x", "x/y"] {
            t.insert(p(k), 0);
        }
        let scopes = [deep, shallow];
        let cut = restrict(&t, &scopes);
        let kept: Vec<&str> = cut.keys().map(RelPath::as_str).collect();
        assert_eq!(kept, ["a", "a/b", "a/b/c", "a/b/c/d", "x"]);
        assert!(in_scopes(&scopes, &p("a")) && in_scopes(&scopes, &p("x")));
        assert!(!in_scopes(&scopes, &p("a/x")) && !in_scopes(&scopes, &p("x/y")));
    }

    #[test]
    fn digests_read_and_write_hex() {
        let h = Sha256::from_hex(&"Ab".repeat(32)).unwrap();
        assert_eq!(h.to_hex(), "ab".repeat(32));
        assert_eq!(format!("{h}"), "ab".repeat(32));
        assert!(Sha256::from_hex("ab").is_none());
        assert!(Md5::from_hex(&"zz".repeat(16)).is_none());
        let hashes = Hashes {
            sha256: Some(h),
            md5: None,
        };
        let json = serde_json::to_string(&hashes).unwrap();
        assert_eq!(
            json,
            format!("{{\"sha256\":\"{}\",\"md5\":null}}", "ab".repeat(32))
        );
        assert_eq!(serde_json::from_str::<Hashes>(&json).unwrap(), hashes);
        // Journal entries of earlier versions: "" is "not known".
        let old = format!("{{\"sha256\":\"{}\",\"md5\":\"\"}}", "ab".repeat(32));
        assert_eq!(serde_json::from_str::<Hashes>(&old).unwrap(), hashes);
        assert!(serde_json::from_str::<Hashes>("{\"sha256\":\"xyz\"}").is_err());
    }
}
