//! Which remote folders a poll lists: looking for remote changes on a
//! request budget, whatever the size of the tree.
//!
//! The API has no change feed and folder dates are no change marker
//! (API-NOTES.md), so the only way to see a change is to list the folder it
//! happened in. Listing every folder at every poll costs one request per
//! folder per `poll_interval`, forever; here the cost per poll is bounded by
//! `poll_budget` (requests per minute) instead:
//! - **hot** folders are listed at every poll: the synced folder itself,
//!   folders that changed on either side within [`HOT_FOR`], and folders
//!   whose count fields (`file_count`, `child_folder_count`, `totalSize`)
//!   in their parent's last listing differ from the listing before (hints
//!   move a folder up, but an unchanged hint never skips one);
//! - the budget left goes to a **rolling sweep** over all other folders,
//!   the ones listed longest ago first, so every folder is listed again
//!   within (folders / per-poll budget) polls. [`Sweep::status`] says how
//!   long a full round takes at this rate and how stale the stalest folder
//!   is; the daemon warns when a round takes longer than `full_rescan_interval`.
//!
//! A listing is compared with the print (`snapshot::listing_print`) the
//! folder had in the last converged pass or the last poll: a different one
//! means the host changed, and the daemon runs a pass. The prints come from
//! the passes' own listings, so what dcsync itself changed is no change.
//! A print covers the whole listing, ignored names too: a host-side change
//! to an ignored file costs one pass that finds nothing to do.
//!
//! Owns: the per-folder schedule (about 100 bytes a folder, never the
//! files). Must never: do I/O, read a clock, or decide what a pass does.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::RelPath;
use crate::snapshot::ListedFolder;

/// How long a folder that changed stays hot (listed at every poll).
pub const HOT_FOR: Duration = Duration::from_secs(30 * 60);

/// The default `poll_budget`: listings per minute spent on looking for
/// remote changes (3 a second, an eighth of the default request limit):
/// enough for a round over 10,000 folders (about a million files) within
/// the default hour of `full_rescan_interval`.
pub const DEFAULT_BUDGET: u32 = 180;

/// What the poller knows about one folder.
#[derive(Debug, Clone)]
struct Folder {
    path: RelPath,
    print: u64,
    /// This folder's hint as its parent's last listing showed it.
    hint: Option<u64>,
    listed: Instant,
    /// Listed at every poll until then.
    hot_until: Option<Instant>,
    /// Its hint changed: listed at the next poll.
    bumped: bool,
}

/// What a poll's listing of one folder showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The same as before: nothing to do.
    Same,
    /// Something changed (or the folder is not known): run a pass.
    Changed,
}

/// The sweep's state for `dcsync status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepStatus {
    /// Folders the poller knows.
    pub folders: usize,
    /// Of those, listed at every poll.
    pub hot: usize,
    /// Listings one poll may make.
    pub per_poll: usize,
    /// Folders listed since the current round began.
    pub round_done: usize,
    /// Seconds since the stalest folder was listed.
    pub stalest_secs: u64,
    /// Seconds a round over every folder takes at this budget.
    pub round_secs: u64,
}

/// The poller's schedule. See the module docs.
#[derive(Debug)]
pub struct Sweep {
    poll_interval: Duration,
    /// Listings per minute.
    budget: u32,
    folders: HashMap<Option<u64>, Folder>,
    /// Folder ids by path (to mark the folder of a local change hot).
    by_path: HashMap<RelPath, Option<u64>>,
    /// No converged pass since the last failed or partial one: the next
    /// poll says "changed" without listing anything.
    baseline: bool,
    round_started: Instant,
}

impl Sweep {
    /// `poll_interval`: the mean gap between polls
    /// (`machine::mean_poll_gap`); `budget`: listings per minute.
    pub fn new(now: Instant, poll_interval: Duration, budget: u32) -> Sweep {
        Sweep {
            poll_interval,
            budget: budget.max(1),
            folders: HashMap::new(),
            by_path: HashMap::new(),
            baseline: false,
            round_started: now,
        }
    }

    /// Listings one poll may make: the budget over one `poll_interval`.
    pub fn per_poll(&self) -> usize {
        let per = u128::from(self.budget) * self.poll_interval.as_millis() / 60_000;
        usize::try_from(per).unwrap_or(usize::MAX).max(1)
    }

    /// Whether a converged pass left prints to compare with.
    pub fn has_baseline(&self) -> bool {
        self.baseline
    }

    /// A pass did not converge (or failed): its listings are no baseline.
    pub fn forget(&mut self) {
        self.baseline = false;
    }

    /// A converged full pass listed every folder: they are the schedule now
    /// (folders it did not list are gone). Hot marks and hints of folders
    /// still there are kept.
    pub fn full_pass(&mut self, now: Instant, listed: &[ListedFolder]) {
        let mut old = std::mem::take(&mut self.folders);
        self.by_path.clear();
        for l in listed {
            let prev = old.remove(&l.id);
            self.insert(now, l, prev);
        }
        self.hints_from(listed);
        self.baseline = true;
        self.round_started = now;
    }

    /// A converged focused pass listed these folders again; the others
    /// keep what they had. Without a baseline nothing changes (a full pass
    /// comes first).
    pub fn focused_pass(&mut self, now: Instant, listed: &[ListedFolder]) {
        if !self.baseline {
            return;
        }
        for l in listed {
            let prev = self.folders.remove(&l.id);
            self.insert(now, l, prev);
        }
        self.hints_from(listed);
    }

    fn insert(&mut self, now: Instant, l: &ListedFolder, prev: Option<Folder>) {
        if let Some(p) = &prev
            && p.path != l.path
        {
            self.by_path.remove(&p.path);
        }
        self.by_path.insert(l.path.clone(), l.id);
        self.folders.insert(
            l.id,
            Folder {
                path: l.path.clone(),
                print: l.print,
                hint: prev.as_ref().and_then(|p| p.hint),
                listed: now,
                hot_until: prev.as_ref().and_then(|p| p.hot_until),
                bumped: false,
            },
        );
    }

    /// Records the subfolders' hints a pass's listings showed (no bumps:
    /// the pass has just listed them too).
    fn hints_from(&mut self, listed: &[ListedFolder]) {
        for l in listed {
            for (child, hint) in &l.children {
                if let Some(f) = self.folders.get_mut(&Some(*child)) {
                    f.hint = Some(*hint);
                }
            }
        }
    }

    /// Local changes at these paths: their folders are hot (a user at work
    /// there may well change the host's side too, from another device).
    pub fn touched<'a>(&mut self, now: Instant, paths: impl IntoIterator<Item = &'a RelPath>) {
        for p in paths {
            let mut at = p.parent();
            while let Some(dir) = at {
                if let Some(id) = self.by_path.get(&dir)
                    && let Some(f) = self.folders.get_mut(id)
                {
                    f.hot_until = Some(now + HOT_FOR);
                    break;
                }
                at = dir.parent();
            }
        }
    }

    fn is_hot(&self, f: &Folder, now: Instant) -> bool {
        f.bumped || f.path.is_root() || f.hot_until.is_some_and(|t| t > now)
    }

    /// The folders to list at this poll, at most [`Sweep::per_poll`]:
    /// bumped ones, then the other hot ones, then the rest, each group the
    /// longest unlisted first. Empty without a baseline.
    pub fn due(&self, now: Instant) -> Vec<(Option<u64>, RelPath)> {
        if !self.baseline {
            return Vec::new();
        }
        let mut all: Vec<(u8, Instant, &RelPath, Option<u64>)> = self
            .folders
            .iter()
            .map(|(id, f)| {
                let class = if f.bumped {
                    0
                } else if self.is_hot(f, now) {
                    1
                } else {
                    2
                };
                (class, f.listed, &f.path, *id)
            })
            .collect();
        let n = self.per_poll().min(all.len());
        if n < all.len() {
            all.select_nth_unstable_by(n, |a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
            all.truncate(n);
        }
        all.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        all.into_iter()
            .map(|(_, _, p, id)| (id, p.clone()))
            .collect()
    }

    /// A poll listed folder `id`: its listing's print and its subfolders'
    /// hints. A different print (or a folder not known) is a change: the
    /// folder turns hot, and the caller runs a pass.
    pub fn listed(
        &mut self,
        now: Instant,
        id: Option<u64>,
        print: u64,
        children: &[(u64, u64)],
    ) -> Seen {
        let Some(f) = self.folders.get_mut(&id) else {
            return Seen::Changed;
        };
        f.listed = now;
        f.bumped = false;
        if f.print != print {
            f.print = print;
            f.hot_until = Some(now + HOT_FOR);
            return Seen::Changed;
        }
        for (child, hint) in children {
            if let Some(c) = self.folders.get_mut(&Some(*child)) {
                if c.hint.is_some_and(|h| h != *hint) {
                    c.bumped = true;
                }
                c.hint = Some(*hint);
            }
        }
        if self
            .folders
            .values()
            .all(|f| f.listed >= self.round_started)
        {
            self.round_started = now;
        }
        Seen::Same
    }

    /// Where the sweep stands.
    pub fn status(&self, now: Instant) -> SweepStatus {
        let hot = self
            .folders
            .values()
            .filter(|f| self.is_hot(f, now))
            .count();
        let per_poll = self.per_poll();
        let stalest = self
            .folders
            .values()
            .map(|f| now.saturating_duration_since(f.listed))
            .max()
            .unwrap_or_default();
        // Cold folders share what the hot ones leave of each poll.
        let cold = self.folders.len() - hot;
        let spare = per_poll.saturating_sub(hot).max(1);
        let polls = cold.div_ceil(spare).max(1);
        SweepStatus {
            folders: self.folders.len(),
            hot,
            per_poll,
            round_done: self
                .folders
                .values()
                .filter(|f| f.listed >= self.round_started)
                .count(),
            stalest_secs: stalest.as_secs(),
            round_secs: self
                .poll_interval
                .saturating_mul(u32::try_from(polls).unwrap_or(u32::MAX))
                .as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(60);

    fn p(s: &str) -> RelPath {
        if s.is_empty() {
            RelPath::root()
        } else {
            RelPath::new(s).unwrap()
        }
    }

    /// A tree of `n` folders below the synced folder (id 1), each with
    /// print = its id.
    fn tree(n: u64) -> Vec<ListedFolder> {
        let mut v = vec![ListedFolder {
            id: Some(1),
            path: p(""),
            print: 1,
            children: (0..n).map(|i| (100 + i, 7)).collect(),
        }];
        for i in 0..n {
            v.push(ListedFolder {
                id: Some(100 + i),
                path: p(&format!("d{i:04}")),
                print: 100 + i,
                children: vec![],
            });
        }
        v
    }

    fn print_of(id: Option<u64>) -> u64 {
        id.unwrap()
    }

    /// Runs one poll: lists what is due with the prints of `host` (id ->
    /// print; missing = unchanged). Returns the folders listed and whether
    /// a change was seen.
    fn poll(
        s: &mut Sweep,
        now: Instant,
        host: &HashMap<u64, u64>,
        hints: &HashMap<u64, u64>,
    ) -> (Vec<Option<u64>>, bool) {
        let due = s.due(now);
        let mut changed = false;
        let mut listed = Vec::new();
        for (id, _) in due {
            let print = host.get(&id.unwrap()).copied().unwrap_or(print_of(id));
            let children: Vec<(u64, u64)> = if id == Some(1) {
                (0..s.folders.len() as u64 - 1)
                    .map(|i| (100 + i, hints.get(&(100 + i)).copied().unwrap_or(7)))
                    .collect()
            } else {
                vec![]
            };
            listed.push(id);
            if s.listed(now, id, print, &children) == Seen::Changed {
                changed = true;
            }
        }
        (listed, changed)
    }

    #[test]
    fn a_small_tree_is_listed_whole_at_every_poll() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, DEFAULT_BUDGET);
        assert!(s.due(t0).is_empty(), "no baseline: nothing to compare");
        s.full_pass(t0, &tree(20));
        let (listed, changed) = poll(&mut s, t0 + POLL, &HashMap::new(), &HashMap::new());
        assert_eq!(listed.len(), 21);
        assert!(!changed);
    }

    /// The idle cost stays at the budget however big the tree, every
    /// folder is listed within one round, and the synced folder at every
    /// poll.
    #[test]
    fn a_big_tree_costs_the_budget_and_is_swept_whole_in_a_round() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, 120);
        s.full_pass(t0, &tree(1000));
        assert_eq!(s.per_poll(), 120);
        let st = s.status(t0);
        assert_eq!((st.folders, st.hot), (1001, 1));
        // 1000 cold folders, 119 a poll: 9 polls.
        assert_eq!(st.round_secs, 9 * 60);
        let mut cold = Vec::new();
        for k in 1..=9 {
            let (listed, changed) = poll(&mut s, t0 + POLL * k, &HashMap::new(), &HashMap::new());
            assert!(listed.len() <= 120, "over budget: {}", listed.len());
            assert!(listed.contains(&Some(1)), "the synced folder at every poll");
            assert!(!changed);
            cold.extend(listed.into_iter().filter(|id| *id != Some(1)));
        }
        // The spare budget of the last poll starts the next round.
        let first: std::collections::HashSet<_> = cold.iter().take(1000).collect();
        assert_eq!(first.len(), 1000, "every folder once before any twice");
        assert!(s.status(t0 + POLL * 9).stalest_secs <= 9 * 60);
    }

    #[test]
    fn a_change_in_a_cold_folder_is_seen_within_a_round_and_it_turns_hot() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, 120);
        s.full_pass(t0, &tree(1000));
        let host: HashMap<u64, u64> = [(777, 1)].into();
        let mut found = None;
        for k in 1..=9 {
            let (_, changed) = poll(&mut s, t0 + POLL * k, &host, &HashMap::new());
            if changed {
                found = Some(k);
                break;
            }
        }
        assert!(found.is_some(), "seen within one round");
        // Hot now: listed at every poll (the pass that follows records
        // the new print).
        s.focused_pass(
            t0 + POLL * 10,
            &[ListedFolder {
                id: Some(777),
                path: p("d0677"),
                print: 1,
                children: vec![],
            }],
        );
        for k in 11..15 {
            let due = s.due(t0 + POLL * k);
            assert!(due.iter().any(|(id, _)| *id == Some(777)), "poll {k}");
            poll(&mut s, t0 + POLL * k, &host, &HashMap::new());
        }
        // ... until HOT_FOR has passed without a change.
        let later = t0 + POLL * 14 + HOT_FOR;
        assert_eq!(s.status(later).hot, 1);
    }

    #[test]
    fn a_local_change_makes_its_folder_hot() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, 10);
        s.full_pass(t0, &tree(100));
        s.touched(t0, [&p("d0042/deep/new.txt")]);
        let due = s.due(t0 + POLL);
        assert_eq!(due.len(), 10);
        assert_eq!(
            due[0].0,
            Some(1),
            "longest unlisted hot first: the root ties, by path"
        );
        assert!(due.iter().any(|(id, _)| *id == Some(142)));
    }

    /// A subfolder's count fields changing in its parent's listing move it
    /// to the front; unchanged ones never skip it (it still comes round).
    #[test]
    fn a_changed_hint_moves_a_folder_up() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, 10);
        s.full_pass(t0, &tree(100));
        let hints: HashMap<u64, u64> = [(190, 8)].into();
        let (listed, _) = poll(&mut s, t0 + POLL, &HashMap::new(), &hints);
        assert!(!listed.contains(&Some(190)));
        let due = s.due(t0 + POLL * 2);
        assert_eq!(due[0].0, Some(190), "bumped first: {due:?}");
    }

    #[test]
    fn without_a_converged_pass_nothing_is_compared() {
        let t0 = Instant::now();
        let mut s = Sweep::new(t0, POLL, 120);
        s.full_pass(t0, &tree(3));
        s.forget();
        assert!(!s.has_baseline() && s.due(t0 + POLL).is_empty());
        s.focused_pass(t0, &tree(3));
        assert!(!s.has_baseline(), "a focused pass is no full baseline");
        assert_eq!(
            s.listed(t0, Some(999), 1, &[]),
            Seen::Changed,
            "unknown folder"
        );
    }
}
