//! The daemon's decisions for one pair, as a pure state machine (after
//! notify-debouncer-full, which keeps its state apart from its threads and
//! tests it from data): events go in (changed paths from the watcher, a
//! pass's result, a command, the time), actions come out (run a pass, full
//! or focused; poll; look for a missing root). The async loop in `mod.rs`
//! only feeds it and carries out what it asks. Time is an argument, and the
//! jitter comes from a seeded generator, so a test drives the machine from
//! data, without a clock, a runtime or a filesystem.
//!
//! Owns: when a pair syncs and how (focused on changed paths, or full),
//! when it polls the host, how it backs off after failures, how it waits
//! for a missing root, and what pause, resume and sync-now do.
//! Must never: do I/O, read a clock or sleep.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Command;
use crate::api::retry::Backoff;
use crate::model::RelPath;

/// How long a pair waits after failed passes: the program's one backoff
/// policy (`api::retry::Backoff`, the client's too), from 5 s up to 5
/// minutes, jittered so that pairs (and machines) failing together do not
/// retry in lockstep.
pub const PASS_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(5),
    max: Duration::from_secs(300),
};

/// The shortest gap between polls, as a share of `poll_interval`: polls
/// come at random between this and the whole interval, so that pairs and
/// machines started together do not poll in lockstep.
pub const POLL_JITTER_LOW: f64 = 0.8;

/// The mean gap between polls of a pair polling every `poll_interval`
/// (what a poll may spend of a per-minute budget follows from it).
pub fn mean_poll_gap(poll_interval: Duration) -> Duration {
    poll_interval.mul_f64((POLL_JITTER_LOW + 1.0) / 2.0)
}

/// How often a missing sync root is looked for.
pub const ROOT_CHECK: Duration = Duration::from_secs(10);

/// The pair's periods.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The most between polls of the host (jittered down to
    /// [`POLL_JITTER_LOW`] of it, never later: a change in a folder every
    /// poll lists is seen within it).
    pub poll_interval: Duration,
    /// A full pass runs at least this often.
    pub full_rescan: Duration,
}

/// What a finished pass means for the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    /// The pass ran to its end. `clean`: converged without errors;
    /// `needs_full`: a focused pass saw work outside its folders;
    /// `cached`: it left a remote tree that focused passes can use.
    Ran {
        clean: bool,
        needs_full: bool,
        cached: bool,
    },
    /// The sync root or its marker is gone (unmounted?): wait for it.
    RootMissing,
    /// A permanent error or a safety stop: wait for the user's `resume`.
    Stopped,
    /// Anything else: try again after a backoff.
    Failed,
}

/// What a poll of the host saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSeen {
    /// Every folder it listed is as before.
    Same,
    /// These folders' listings changed.
    In(Vec<RelPath>),
    /// A change somewhere (the poller had nothing to compare with).
    Somewhere,
}

/// Where a focused pass looks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FocusOn {
    /// Local paths the watcher saw change.
    pub paths: Vec<RelPath>,
    /// Remote folders whose listing a poll saw change.
    pub folders: Vec<RelPath>,
}

/// What the loop must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a pass: focused on what changed (with the cached remote tree),
    /// or full (`None`; the cached tree can go). A full pass
    /// with `quick_check` first looks whether anything changed at all
    /// (`engine::SyncRequest::quick_check`): off when the watcher or a poll
    /// already saw a change.
    /// `host_from_polls`: the pass is only the `full_rescan_interval`
    /// timer's (or a poll's without a watcher), so its quick check looks at
    /// the local side only; the host is the polls' sweep's to watch.
    Pass {
        focus: Option<FocusOn>,
        quick_check: bool,
        host_from_polls: bool,
    },
    /// Look whether the root's marker is there and (if `remote`) whether
    /// the host changed; answer with [`PairMachine::polled`].
    Poll { remote: bool },
    /// Look whether the missing root is back; answer with
    /// [`PairMachine::root_checked`].
    CheckRoot,
}

/// One pair's state. See the module docs.
#[derive(Debug)]
pub struct PairMachine {
    timing: Timing,
    rng: StdRng,
    /// Something may differ between the sides: a pass should run.
    dirty: bool,
    /// The next pass must be a full one.
    need_full: bool,
    /// Local paths changed since the last pass (from the watcher).
    changed: BTreeSet<RelPath>,
    /// Remote folders whose listing changed since the last pass (polls).
    host_folders: BTreeSet<RelPath>,
    /// The last pass left a remote tree for focused passes.
    cached: bool,
    /// The watcher or a poll saw a change since the last pass started.
    seen_change: bool,
    /// Only a timer asked for the next (full) pass: nothing was seen.
    only_timer: bool,
    /// The watcher runs (without one, polls look at the local side too).
    watching: bool,
    paused: bool,
    /// The root (or its marker) is missing: no pass until it is back.
    waiting_root: bool,
    /// Failed passes in a row.
    failures: u32,
    /// No pass before this (backoff), or when to look for the root again.
    retry_at: Option<Instant>,
    next_poll: Instant,
    next_full: Instant,
}

impl PairMachine {
    /// A pair starting at `now`: its first pass is a full one, right away.
    pub fn new(now: Instant, timing: Timing, watching: bool, seed: u64) -> PairMachine {
        let mut m = PairMachine {
            timing,
            rng: StdRng::seed_from_u64(seed),
            dirty: true,
            need_full: true,
            changed: BTreeSet::new(),
            host_folders: BTreeSet::new(),
            cached: false,
            seen_change: false,
            only_timer: false,
            watching,
            paused: false,
            waiting_root: false,
            failures: 0,
            retry_at: None,
            next_poll: now,
            next_full: now + timing.full_rescan,
        };
        m.next_poll = now + m.jittered(timing.poll_interval);
        m
    }

    /// A poll gap: between [`POLL_JITTER_LOW`] of `d` and `d`.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(POLL_JITTER_LOW + self.rng.random::<f64>() * (1.0 - POLL_JITTER_LOW))
    }

    /// When the loop must call [`PairMachine::tick`] next, if no event
    /// comes first.
    pub fn wake_at(&self) -> Instant {
        let t = self.next_poll.min(self.next_full);
        self.retry_at.map_or(t, |r| r.min(t))
    }

    /// When the next poll or full pass is due (for `dcsync status`).
    pub fn next_poll_at(&self) -> Instant {
        self.next_poll.min(self.next_full)
    }

    /// The timers due at `now`: what to look at.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            if self.waiting_root {
                out.push(Action::CheckRoot);
            }
        }
        if self.next_poll <= now {
            self.next_poll = now + self.jittered(self.timing.poll_interval);
            out.push(Action::Poll {
                remote: !self.paused,
            });
            if !self.watching {
                // No watcher: local changes are found by polling too.
                self.mark_full_on_timer();
            }
        }
        if self.next_full <= now {
            self.next_full = now + self.timing.full_rescan;
            self.mark_full_on_timer();
        }
        out
    }

    /// The pass to run now, if one should: something changed, and the pair
    /// is not paused, waiting for its root or backing off. Taking it clears
    /// what it covers (changes arriving while it runs make the next one).
    pub fn pass(&mut self, now: Instant) -> Option<Action> {
        if !self.pass_due(now) {
            return None;
        }
        self.dirty = false;
        let something = !self.changed.is_empty() || !self.host_folders.is_empty();
        let focus = (self.cached && !self.need_full && something).then(|| FocusOn {
            paths: std::mem::take(&mut self.changed).into_iter().collect(),
            folders: std::mem::take(&mut self.host_folders).into_iter().collect(),
        });
        self.changed.clear();
        self.host_folders.clear();
        self.need_full = false;
        if focus.is_none() {
            self.cached = false;
        }
        let quick_check = focus.is_none() && !self.seen_change;
        let host_from_polls = quick_check && self.only_timer;
        self.seen_change = false;
        self.only_timer = false;
        Some(Action::Pass {
            focus,
            quick_check,
            host_from_polls,
        })
    }

    /// Whether [`PairMachine::pass`] has a pass to run now. The loop asks
    /// before it waits for anything: a pass may end wanting another (a
    /// focused pass that met a new folder needs a full one; changes
    /// arrived while it ran), and no event or timer may come for an hour.
    pub fn pass_due(&self, now: Instant) -> bool {
        let backing_off = self.retry_at.is_some_and(|t| t > now);
        self.dirty && !self.paused && !self.waiting_root && !backing_off
    }

    /// Local paths changed (echoes of the pair's own writes already left
    /// out); `rescan`: the watcher lost events, so only a full pass knows.
    pub fn changes(&mut self, paths: impl IntoIterator<Item = RelPath>, rescan: bool) {
        for p in paths {
            self.dirty = true;
            self.seen_change = true;
            self.only_timer = false;
            self.need_full |= p.is_root();
            self.changed.insert(p);
        }
        if rescan {
            self.mark_full();
        }
    }

    /// The watcher is gone (or back).
    pub fn watching(&mut self, on: bool) {
        self.watching = on;
    }

    /// A pass ended at `now`. Returns the backoff before the next try,
    /// when the pass failed and will be tried again.
    pub fn pass_done(&mut self, now: Instant, result: PassResult) -> Option<Duration> {
        self.next_poll = now + self.jittered(self.timing.poll_interval);
        match result {
            PassResult::Ran {
                clean,
                needs_full,
                cached,
            } => {
                self.cached = cached;
                if needs_full {
                    self.mark_full();
                }
                if clean {
                    self.failures = 0;
                    self.retry_at = None;
                    None
                } else {
                    Some(self.back_off(now))
                }
            }
            PassResult::RootMissing => {
                self.waiting_root = true;
                self.retry_at = Some(now + ROOT_CHECK);
                self.need_full = true;
                self.dirty = !self.paused;
                None
            }
            PassResult::Stopped => {
                self.paused = true;
                self.need_full = true;
                self.dirty = false;
                None
            }
            PassResult::Failed => Some(self.back_off(now)),
        }
    }

    fn back_off(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let wait = PASS_BACKOFF.delay(self.failures, self.rng.random());
        self.retry_at = Some(now + wait);
        self.mark_full();
        wait
    }

    fn mark_full(&mut self) {
        self.dirty = true;
        self.need_full = true;
        self.only_timer = false;
    }

    /// A full pass because it is time for one, not because of anything
    /// seen (unless something else already asked for it).
    fn mark_full_on_timer(&mut self) {
        let asked = self.dirty;
        self.mark_full();
        self.only_timer = !asked;
    }

    /// Failed passes in a row (1 = the pair just entered the error state).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The answer to [`Action::Poll`]: whether the root's marker is there
    /// and what changed on the host since the last converged pass. Changed
    /// folders make a focused pass (one level of each, with the cached
    /// tree); a change the poller cannot place, a full one.
    pub fn polled(&mut self, marker: bool, host: HostSeen) {
        // A missing marker: a pass finds out and waits for the root.
        if !marker {
            self.mark_full();
        }
        match host {
            HostSeen::Same => {}
            HostSeen::In(folders) if !folders.is_empty() => {
                self.dirty = true;
                self.seen_change = true;
                self.only_timer = false;
                self.host_folders.extend(folders);
            }
            HostSeen::In(_) | HostSeen::Somewhere => {
                self.mark_full();
                self.seen_change = true;
            }
        }
    }

    /// The answer to [`Action::CheckRoot`]. Returns whether the root is
    /// back (the loop then watches it anew: a remounted volume is a new
    /// folder).
    pub fn root_checked(&mut self, now: Instant, present: bool) -> bool {
        if !self.waiting_root {
            return false;
        }
        if present {
            self.waiting_root = false;
            self.mark_full();
        } else {
            self.retry_at = Some(now + ROOT_CHECK);
        }
        present
    }

    /// A command from `dcsync pause|resume|sync-now`.
    pub fn command(&mut self, now: Instant, cmd: &Command) {
        match cmd {
            Command::Pause => self.paused = true,
            Command::Resume | Command::SyncNow | Command::ConfirmDelete => {
                if matches!(cmd, Command::Resume | Command::ConfirmDelete) {
                    self.paused = false;
                }
                self.mark_full();
                // No more backoff; a missing root is looked for right away
                // (never forgotten: only a look can end the wait).
                self.retry_at = self.waiting_root.then_some(now);
            }
        }
    }

    #[cfg(test)]
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn is_waiting_for_root(&self) -> bool {
        self.waiting_root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full pass, with or without the quick check first.
    fn full(quick_check: bool) -> Option<Action> {
        Some(Action::Pass {
            focus: None,
            quick_check,
            host_from_polls: false,
        })
    }

    /// A focused pass on these local paths and remote folders.
    fn focused(paths: &[RelPath], folders: &[RelPath]) -> Option<Action> {
        Some(Action::Pass {
            focus: Some(FocusOn {
                paths: paths.to_vec(),
                folders: folders.to_vec(),
            }),
            quick_check: false,
            host_from_polls: false,
        })
    }

    /// A clean pass that left no tree for focused passes.
    const NOT_CACHED: PassResult = PassResult::Ran {
        clean: true,
        needs_full: false,
        cached: false,
    };

    const POLL: Duration = Duration::from_secs(60);
    const FULL: Duration = Duration::from_secs(3600);

    fn machine(t0: Instant) -> PairMachine {
        PairMachine::new(
            t0,
            Timing {
                poll_interval: POLL,
                full_rescan: FULL,
            },
            true,
            7,
        )
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    const CLEAN: PassResult = PassResult::Ran {
        clean: true,
        needs_full: false,
        cached: true,
    };

    #[test]
    fn pass_backoff_is_bounded_and_jittered() {
        assert_eq!(PASS_BACKOFF.delay(1, 1.0), Duration::from_secs(5));
        assert_eq!(PASS_BACKOFF.delay(2, 1.0), Duration::from_secs(10));
        assert_eq!(PASS_BACKOFF.delay(30, 1.0), Duration::from_secs(300));
        assert_eq!(PASS_BACKOFF.delay(30, 0.0), Duration::from_secs(150));
        let t0 = Instant::now();
        let mut waits = std::collections::HashSet::new();
        for seed in 0..20 {
            let mut m = machine(t0);
            m.rng = StdRng::seed_from_u64(seed);
            m.pass(t0);
            m.pass_done(t0, PassResult::Failed);
            m.pass(t0 + Duration::from_secs(10));
            m.pass_done(t0, PassResult::Failed);
            m.pass(t0 + Duration::from_secs(30));
            let w = m.pass_done(t0, PassResult::Failed).unwrap();
            assert!(
                w >= Duration::from_secs(10) && w <= Duration::from_secs(20),
                "{w:?}"
            );
            waits.insert(w);
        }
        assert!(waits.len() > 1, "jittered: {waits:?}");
    }

    #[test]
    fn starts_with_a_full_pass_then_focuses_on_changed_paths() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        assert_eq!(m.pass(t0), full(true));
        assert_eq!(m.pass(t0), None, "one pass at a time, nothing new");
        assert_eq!(m.pass_done(t0, CLEAN), None);
        m.changes([p("b.txt"), p("a.txt")], false);
        assert_eq!(m.pass(t0), focused(&[p("a.txt"), p("b.txt")], &[]));
        // Without a cached tree, or after the watcher lost events: full.
        m.pass_done(t0, NOT_CACHED);
        m.changes([p("c.txt")], false);
        assert_eq!(
            m.pass(t0),
            full(false),
            "the watcher saw a change: no quick check"
        );
        m.pass_done(t0, CLEAN);
        m.changes([p("c.txt")], true);
        assert_eq!(m.pass(t0), full(false));
        m.pass_done(t0, CLEAN);
        // Lost events alone say nothing changed: the quick check looks.
        m.changes([], true);
        assert_eq!(m.pass(t0), full(true));
        m.pass_done(t0, CLEAN);
        // A poll that saw the host change somewhere it cannot place: a
        // full pass, and no quick check either.
        m.polled(true, HostSeen::Somewhere);
        assert_eq!(m.pass(t0), full(false));
    }

    #[test]
    fn a_poll_that_saw_folders_change_focuses_on_them() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        m.pass(t0);
        m.pass_done(t0, CLEAN);
        m.polled(true, HostSeen::Same);
        assert_eq!(m.pass(t0), None, "nothing changed");
        // With the watcher's paths in the same pass.
        m.polled(true, HostSeen::In(vec![p("b"), RelPath::root()]));
        m.changes([p("a/x.txt")], false);
        assert_eq!(
            m.pass(t0),
            focused(&[p("a/x.txt")], &[RelPath::root(), p("b")])
        );
        // Taken: the next pass starts from nothing.
        assert_eq!(m.pass(t0), None);
        m.pass_done(t0, CLEAN);
        m.polled(true, HostSeen::In(vec![p("c")]));
        assert_eq!(m.pass(t0), focused(&[], &[p("c")]));
        // No cached tree: a full pass, which covers the folders too.
        m.pass_done(t0, NOT_CACHED);
        m.polled(true, HostSeen::In(vec![p("d")]));
        assert_eq!(m.pass(t0), full(false));
        m.pass_done(t0, CLEAN);
        m.changes([p("e.txt")], false);
        assert_eq!(
            m.pass(t0),
            focused(&[p("e.txt")], &[]),
            "the folders went with the full pass"
        );
    }

    /// A change in a folder every poll lists is seen within one
    /// `poll_interval` (#13: the ±10 % jitter made it up to 66 s at 60 s),
    /// and polls still spread out, at the mean gap the sweep budgets for.
    #[test]
    fn polls_come_within_the_interval_and_spread_out() {
        let t0 = Instant::now();
        let mut gaps = Vec::new();
        for seed in 0..50 {
            let mut m = machine(t0);
            m.rng = StdRng::seed_from_u64(seed);
            let mut at = t0;
            for _ in 0..20 {
                let next = m.wake_at();
                gaps.push(next - at);
                m.tick(next);
                at = next;
            }
        }
        let low = POLL.mul_f64(POLL_JITTER_LOW);
        assert!(gaps.iter().all(|g| *g >= low && *g <= POLL), "{gaps:?}");
        let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
        let want = mean_poll_gap(POLL);
        assert!(
            mean.abs_diff(want) < Duration::from_millis(500),
            "{mean:?} vs {want:?}"
        );
        assert!(gaps.iter().max().unwrap().abs_diff(POLL) < POLL / 50);
        assert!(gaps.iter().min().unwrap().abs_diff(low) < POLL / 50);
    }

    #[test]
    fn failures_back_off_and_a_clean_pass_resets() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        m.pass(t0);
        let w1 = m.pass_done(t0, PassResult::Failed).unwrap();
        assert!(
            w1 >= Duration::from_millis(2500) && w1 <= Duration::from_secs(5),
            "{w1:?}"
        );
        assert_eq!(m.pass(t0 + w1 / 2), None, "backing off");
        assert!(m.wake_at() <= t0 + w1);
        assert!(m.tick(t0 + w1).is_empty());
        assert_eq!(m.pass(t0 + w1), full(true));
        let w2 = m.pass_done(t0 + w1, PassResult::Failed).unwrap();
        assert!(w2 >= Duration::from_secs(5), "grows: {w2:?}");
        assert_eq!(m.failures(), 2);
        // sync-now cuts the wait short.
        m.command(t0 + w1, &Command::SyncNow);
        assert!(m.pass(t0 + w1).is_some());
        m.pass_done(t0 + w1, CLEAN);
        assert_eq!(m.failures(), 0);
    }

    #[test]
    fn a_missing_root_is_waited_for_also_after_resume_or_sync_now() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        m.pass(t0);
        m.pass_done(t0, PassResult::RootMissing);
        m.changes([p("x")], false);
        assert_eq!(
            m.pass(t0 + ROOT_CHECK * 5),
            None,
            "no pass without the root"
        );
        // A sync-now while waiting: the root is looked for at once, and
        // the look is not lost (it used to be: the wait never ended).
        m.command(t0, &Command::SyncNow);
        assert_eq!(m.wake_at(), t0);
        assert_eq!(m.tick(t0), vec![Action::CheckRoot]);
        assert!(!m.root_checked(t0, false));
        assert_eq!(m.wake_at(), t0 + ROOT_CHECK);
        assert_eq!(m.tick(t0 + ROOT_CHECK), vec![Action::CheckRoot]);
        assert!(m.root_checked(t0 + ROOT_CHECK, true));
        assert_eq!(m.pass(t0 + ROOT_CHECK), full(false));
    }

    #[test]
    fn a_stop_waits_for_resume_and_polls_skip_the_host_while_paused() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        m.pass(t0);
        m.pass_done(t0, PassResult::Stopped);
        m.changes([p("x")], false);
        assert_eq!(m.pass(t0), None);
        let at = m.wake_at();
        assert!(at >= t0 + POLL.mul_f64(POLL_JITTER_LOW) && at <= t0 + POLL);
        assert_eq!(m.tick(at), vec![Action::Poll { remote: false }]);
        m.command(at, &Command::Resume);
        assert_eq!(m.pass(at), full(false));
    }

    #[test]
    fn polls_and_full_rescans_make_full_passes() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        m.pass(t0);
        m.pass_done(t0, CLEAN);
        let at = m.wake_at();
        assert_eq!(m.tick(at), vec![Action::Poll { remote: true }]);
        m.polled(true, HostSeen::Same);
        assert_eq!(m.pass(at), None, "nothing changed");
        let at = m.wake_at();
        m.tick(at);
        m.polled(true, HostSeen::Somewhere);
        assert_eq!(m.pass(at), full(false));
        m.pass_done(at, CLEAN);
        // The hourly full pass, even with nothing seen.
        let mut now = at;
        while now < t0 + FULL {
            now = m.wake_at();
            for a in m.tick(now) {
                if a == (Action::Poll { remote: true }) {
                    m.polled(true, HostSeen::Same);
                }
            }
        }
        // Nothing was seen: the quick check leaves the host to the polls.
        assert_eq!(
            m.pass(now),
            Some(Action::Pass {
                focus: None,
                quick_check: true,
                host_from_polls: true,
            })
        );
        m.pass_done(now, CLEAN);
        // The next hourly pass, after a sync-now asked for a full look.
        m.command(now, &Command::SyncNow);
        let next = now + FULL;
        while now < next {
            now = m.wake_at();
            m.tick(now);
        }
        assert_eq!(
            m.pass(now),
            full(true),
            "sync-now: the host is looked at too"
        );
    }

    /// Random events from a seed; after each, the machine's promises hold:
    /// never a pass while paused or waiting for the root, never a wake-up
    /// in the past after a tick, and a change is always synced eventually
    /// once the pair is resumed and its root is there.
    #[test]
    fn random_event_sequences_keep_the_promises() {
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let t0 = Instant::now();
            let mut now = t0;
            let mut m = PairMachine::new(
                t0,
                Timing {
                    poll_interval: POLL,
                    full_rescan: FULL,
                },
                rng.random_bool(0.8),
                seed,
            );
            let mut root_present = true;
            for step in 0..200 {
                let ctx = format!("seed {seed} step {step}: {m:?}");
                match rng.random_range(0..10) {
                    0..=2 => m.changes([p("f")], rng.random_bool(0.1)),
                    3 => m.command(
                        now,
                        [&Command::Pause, &Command::Resume, &Command::SyncNow]
                            [rng.random_range(0..3)],
                    ),
                    4 => root_present = !root_present,
                    5 => m.watching(rng.random_bool(0.5)),
                    _ => {
                        now = m.wake_at().max(now);
                        for a in m.tick(now) {
                            match a {
                                Action::CheckRoot => {
                                    m.root_checked(now, root_present);
                                }
                                Action::Poll { remote } => {
                                    assert!(remote != m.is_paused(), "{ctx}");
                                    let seen = match rng.random_range(0..10) {
                                        0 => HostSeen::Somewhere,
                                        1 => HostSeen::In(vec![p("d")]),
                                        _ => HostSeen::Same,
                                    };
                                    m.polled(root_present, seen);
                                }
                                Action::Pass { .. } => panic!("tick never runs a pass: {ctx}"),
                            }
                        }
                        assert!(m.wake_at() > now, "no busy loop: {ctx}");
                    }
                }
                if let Some(Action::Pass { .. }) = m.pass(now) {
                    assert!(!m.is_paused() && !m.is_waiting_for_root(), "{ctx}");
                    let r = if !root_present {
                        PassResult::RootMissing
                    } else {
                        match rng.random_range(0..10) {
                            0 => PassResult::Failed,
                            1 => PassResult::Stopped,
                            _ => CLEAN,
                        }
                    };
                    m.pass_done(now, r);
                }
            }
            // Liveness: a change, the root back, the user resumes; within
            // a bounded time a pass runs.
            root_present = true;
            m.changes([p("last")], false);
            m.command(now, &Command::Resume);
            let deadline = now + PASS_BACKOFF.max + ROOT_CHECK + POLL * 2;
            let mut ran = false;
            while now <= deadline && !ran {
                if m.pass(now).is_some() {
                    ran = true;
                    break;
                }
                now = m.wake_at().max(now);
                for a in m.tick(now) {
                    match a {
                        Action::CheckRoot => {
                            m.root_checked(now, root_present);
                        }
                        Action::Poll { .. } => m.polled(true, HostSeen::Same),
                        Action::Pass { .. } => {}
                    }
                }
            }
            assert!(ran, "seed {seed}: the change was never synced: {m:?}");
        }
    }
}
