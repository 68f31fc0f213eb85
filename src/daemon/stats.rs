//! What the daemon remembers for the web console and `/metrics`: the recent
//! activity (the last [`ACTIVITY_KEPT`] ops, of every pair) and counters
//! per pair (ops by kind and outcome, bytes, passes, errors, the last
//! clean pass). It only counts and remembers; it never decides anything,
//! and it holds no paths beyond the bounded activity list.

use crate::plan::Op;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How many ops the activity list keeps.
pub const ACTIVITY_KEPT: usize = 300;

/// One op a pass carried out (or tried).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Activity {
    pub time: String,
    pub pair: String,
    /// The op's kind (`upload`, `trash_local`, ...: [`Op::kind_label`]).
    pub action: String,
    pub path: String,
    /// `done`, or `failed: <why>`.
    pub outcome: String,
}

/// The counters of one pair since the daemon started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairCounters {
    /// (op kind, `ok` | `failed`) → count.
    pub ops: BTreeMap<(&'static str, &'static str), u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Passes that ended (with or without an error), and how long they took.
    pub passes: u64,
    pub pass_seconds_sum: f64,
    pub last_pass_seconds: f64,
    /// Passes that ended in an error (a stop, a failure).
    pub pass_errors: u64,
    /// Passes that ran to their end, by kind: `unchanged` (the quick check
    /// found nothing to do), `focused` (on what the watcher or the polls
    /// saw), `narrowed` (focused on what the quick check found), `full`,
    /// `windowed` (a big first sync in windows, `engine::windows`).
    pub passes_by_kind: BTreeMap<&'static str, u64>,
    /// When the last pass ended in sync (seconds since the epoch).
    pub last_success_unix: Option<i64>,
}

/// The daemon's memory of what happened.
#[derive(Debug)]
pub struct Stats {
    activity: Mutex<VecDeque<Activity>>,
    pairs: Vec<Mutex<PairCounters>>,
}

impl Stats {
    pub fn new(pairs: usize) -> Stats {
        Stats {
            activity: Mutex::new(VecDeque::with_capacity(ACTIVITY_KEPT)),
            pairs: (0..pairs).map(|_| Mutex::default()).collect(),
        }
    }

    fn with(&self, idx: usize, f: impl FnOnce(&mut PairCounters)) {
        if let Some(Ok(mut c)) = self.pairs.get(idx).map(Mutex::lock) {
            f(&mut c);
        }
    }

    /// An op of pair `idx` (named `pair`) finished at `time`.
    pub fn op(&self, idx: usize, pair: &str, time: String, op: &Op, result: &Result<(), String>) {
        let kind = op.kind_label();
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.with(idx, |c| *c.ops.entry((kind, outcome)).or_default() += 1);
        if let Ok(mut a) = self.activity.lock() {
            if a.len() == ACTIVITY_KEPT {
                a.pop_front();
            }
            a.push_back(Activity {
                time,
                pair: pair.to_owned(),
                action: kind.to_owned(),
                path: op.path().as_str().to_owned(),
                outcome: match result {
                    Ok(()) => "done".into(),
                    Err(e) => format!("failed: {e}"),
                },
            });
        }
    }

    /// A pass of pair `idx` ended after `took`: `Ok((sent, received))`
    /// bytes, with `clean` when it left both sides in sync at `now_unix`;
    /// `Err(())` when it ended in an error.
    pub fn pass(
        &self,
        idx: usize,
        took: Duration,
        result: Result<(u64, u64, bool), ()>,
        now_unix: i64,
    ) {
        self.with(idx, |c| {
            c.passes += 1;
            c.pass_seconds_sum += took.as_secs_f64();
            c.last_pass_seconds = took.as_secs_f64();
            match result {
                Ok((sent, received, clean)) => {
                    c.bytes_sent += sent;
                    c.bytes_received += received;
                    if clean {
                        c.last_success_unix = Some(now_unix);
                    }
                }
                Err(()) => c.pass_errors += 1,
            }
        });
    }

    /// A pass of pair `idx` of this kind (see
    /// [`PairCounters::passes_by_kind`]) ran to its end.
    pub fn pass_kind(&self, idx: usize, kind: &'static str) {
        self.with(idx, |c| *c.passes_by_kind.entry(kind).or_default() += 1);
    }

    /// The activity, newest first.
    pub fn activity(&self) -> Vec<Activity> {
        self.activity
            .lock()
            .map(|a| a.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The counters of pair `idx`.
    pub fn counters(&self, idx: usize) -> PairCounters {
        self.pairs
            .get(idx)
            .and_then(|c| c.lock().ok().map(|c| c.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RelPath;

    fn forget(p: &str) -> Op {
        Op::Forget {
            path: RelPath::new(p).unwrap(),
        }
    }

    #[test]
    fn the_activity_keeps_the_newest_ops_and_counts_by_kind_and_outcome() {
        let s = Stats::new(1);
        for i in 0..ACTIVITY_KEPT + 5 {
            let r = if i % 2 == 0 { Ok(()) } else { Err("no".into()) };
            s.op(0, "p", format!("t{i}"), &forget(&format!("f{i}")), &r);
        }
        let a = s.activity();
        assert_eq!(a.len(), ACTIVITY_KEPT);
        assert_eq!(a[0].path, format!("f{}", ACTIVITY_KEPT + 4), "newest first");
        assert_eq!(a[0].outcome, "done");
        assert_eq!(a[1].outcome, "failed: no");
        let c = s.counters(0);
        assert_eq!(
            c.ops[&("forget", "ok")],
            (ACTIVITY_KEPT as u64 + 5).div_ceil(2)
        );
        assert_eq!(c.ops[&("forget", "failed")], (ACTIVITY_KEPT as u64 + 5) / 2);
    }

    #[test]
    fn passes_add_up_and_only_a_clean_one_sets_the_last_success() {
        let s = Stats::new(2);
        s.pass(1, Duration::from_millis(500), Ok((10, 20, false)), 100);
        assert_eq!(s.counters(1).last_success_unix, None);
        s.pass(1, Duration::from_millis(1500), Ok((1, 2, true)), 200);
        s.pass(1, Duration::from_secs(1), Err(()), 300);
        let c = s.counters(1);
        assert_eq!((c.passes, c.pass_errors), (3, 1));
        assert_eq!((c.bytes_sent, c.bytes_received), (11, 22));
        assert_eq!(c.last_success_unix, Some(200));
        s.pass_kind(1, "focused");
        s.pass_kind(1, "focused");
        s.pass_kind(1, "full");
        let kinds = s.counters(1).passes_by_kind;
        assert_eq!((kinds["focused"], kinds["full"]), (2, 1), "{kinds:?}");
        assert!((c.pass_seconds_sum - 3.0).abs() < 1e-9);
        assert_eq!(s.counters(0), PairCounters::default());
    }
}
