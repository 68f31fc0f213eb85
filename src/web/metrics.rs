//! `/metrics`: the daemon's state and counters in the Prometheus text
//! format (version 0.0.4). Reads the shared status, the counters and each
//! pair's state DB (tracked files and bytes); never changes anything.

use crate::daemon::Shared;
use std::fmt::Write as _;

/// A label value, escaped as the text format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its help and type lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// The whole page.
pub(super) fn render(shared: &Shared) -> String {
    let statuses = shared.statuses();
    let counters: Vec<_> = (0..shared.specs.len())
        .map(|i| shared.stats.counters(i))
        .collect();
    let names: Vec<&str> = shared.specs.iter().map(|p| p.name.as_str()).collect();
    let tracked: Vec<Option<(u64, u64)>> = shared
        .specs
        .iter()
        .map(|p| {
            crate::state::StateDb::open(&p.engine.db_path)
                .and_then(|db| db.synced_totals())
                .ok()
        })
        .collect();
    let mut out = String::new();

    let mut f = Family::head(
        &mut out,
        "dcsync_pair_state",
        "gauge",
        "1 for the state each pair is in (idle, syncing, paused, waiting, error, ...).",
    );
    for s in &statuses {
        f.sample(
            "dcsync_pair_state",
            &[("pair", &s.name), ("state", &s.state)],
            1,
        );
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_pending_ops",
        "gauge",
        "Ops the running pass planned and has not done yet.",
    );
    for s in &statuses {
        let pending = s.ops_planned.saturating_sub(s.ops_done);
        f.sample("dcsync_pending_ops", &[("pair", &s.name)], pending);
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_files_tracked",
        "gauge",
        "Files in sync on both sides, as the state DB records them.",
    );
    for (name, t) in names.iter().zip(&tracked) {
        if let Some((files, _)) = t {
            f.sample("dcsync_files_tracked", &[("pair", name)], files);
        }
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_bytes_tracked",
        "gauge",
        "Bytes of the files in sync.",
    );
    for (name, t) in names.iter().zip(&tracked) {
        if let Some((_, bytes)) = t {
            f.sample("dcsync_bytes_tracked", &[("pair", name)], bytes);
        }
    }
    for (metric, help, get) in [
        (
            "dcsync_sent_bytes_total",
            "Bytes uploaded since the daemon started.",
            (|c: &crate::daemon::stats::PairCounters| c.bytes_sent) as fn(&_) -> u64,
        ),
        (
            "dcsync_received_bytes_total",
            "Bytes downloaded since the daemon started.",
            |c| c.bytes_received,
        ),
        (
            "dcsync_pass_errors_total",
            "Passes that ended in an error or a safety stop.",
            |c| c.pass_errors,
        ),
    ] {
        let mut f = Family::head(&mut out, metric, "counter", help);
        for (name, c) in names.iter().zip(&counters) {
            f.sample(metric, &[("pair", name)], get(c));
        }
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_ops_total",
        "counter",
        "Ops carried out, by kind and outcome (ok, failed).",
    );
    for (name, c) in names.iter().zip(&counters) {
        for ((kind, outcome), n) in &c.ops {
            f.sample(
                "dcsync_ops_total",
                &[("pair", name), ("kind", kind), ("outcome", outcome)],
                n,
            );
        }
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_passes_total",
        "counter",
        "Passes that ran to their end, by kind (unchanged, focused, narrowed, full, windowed: a big first sync).",
    );
    for (name, c) in names.iter().zip(&counters) {
        for (kind, n) in &c.passes_by_kind {
            f.sample("dcsync_passes_total", &[("pair", name), ("kind", kind)], n);
        }
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_pass_duration_seconds",
        "summary",
        "How long passes took.",
    );
    for (name, c) in names.iter().zip(&counters) {
        f.sample(
            "dcsync_pass_duration_seconds_sum",
            &[("pair", name)],
            c.pass_seconds_sum,
        );
        f.sample(
            "dcsync_pass_duration_seconds_count",
            &[("pair", name)],
            c.passes,
        );
    }
    let mut f = Family::head(
        &mut out,
        "dcsync_last_success_timestamp_seconds",
        "gauge",
        "When a pass last left both sides in sync (seconds since the epoch).",
    );
    for (name, c) in names.iter().zip(&counters) {
        if let Some(t) = c.last_success_unix {
            f.sample(
                "dcsync_last_success_timestamp_seconds",
                &[("pair", name)],
                t,
            );
        }
    }
    if let Some(client) = &shared.client {
        let mut f = Family::head(
            &mut out,
            "dcsync_api_requests_total",
            "counter",
            "API requests sent to the host.",
        );
        f.sample("dcsync_api_requests_total", &[], client.requests_sent());
        let mut f = Family::head(
            &mut out,
            "dcsync_api_throttled_total",
            "counter",
            "API answers that said to slow down (HTTP 429).",
        );
        f.sample("dcsync_api_throttled_total", &[], client.throttled());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
