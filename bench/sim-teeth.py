#!/usr/bin/env python3
"""Does the simulation have teeth? (issue #12, item 5)

Puts one deliberate bug at a time into the engine (a fix reverted, or a
classic sync-client mistake), runs the simulation until its first failing
seed, puts the code back, and prints a Markdown table: bug, seeds run until
the first failure (or "not found in N"), and what the oracle said.

    python3 bench/sim-teeth.py                 # every bug, up to 2,000 seeds each (CI's budget)
    python3 bench/sim-teeth.py same-tick D2    # some of them
    SEEDS=6000 python3 bench/sim-teeth.py      # a larger budget
    PROFILE=release SEEDS=3000 python3 bench/sim-teeth.py NAME   # faster seeds

Each bug is a list of exact text replacements in one source file; a
replacement that no longer matches the code is reported (the table then
says "stale"), never silently skipped. The files are restored from memory
after each run, also on Ctrl-C. Takes about 1-2 minutes per bug (a debug
build of the engine and the simulation, then the seeds). Results go to
docs/SIMULATION.md by hand, with the commit they were measured at.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = int(os.environ.get("SEEDS", "2000"))
# The daemon simulation's CI budget.
DAEMON_SEEDS = int(os.environ.get("DAEMON_SEEDS", "200"))

# name: (what the bug is, file, [(old, new), ...][, "daemon"]): with "daemon",
# the daemon simulation looks for it (its bugs were found there).
BUGS = {
    # -- fixes of the safety issues, reverted one at a time ---------------
    "unlisted": (
        "what dcsync put on the host is taken for deleted before a listing showed it (fix 1)",
        "src/engine/mod.rs",
        [("    if unlisted.is_empty() {\n        return Ok(synced);", "    if true {\n        return Ok(synced);")],
    ),
    "folder-adopt": (
        "folder/create without looking first (a folder made meanwhile is made twice; fix 3)",
        "src/engine/exec.rs",
        [("        if let Some(pid) = parent {\n            let listing = self\n                .client\n                .folder_listing(Some(FolderId(pid)))",
          "        if let Some(pid) = parent.filter(|_| false) {\n            let listing = self\n                .client\n                .folder_listing(Some(FolderId(pid)))")],
    ),
    "attached": (
        "a remote move does not check its new folder is still in the tree (fix 8)",
        "src/engine/exec.rs",
        [("        let attached = if moves {", "        let attached = if false {")],
    ),
    "move-back-recovery": (
        "recovery leaves an interrupted move in a folder trashed meanwhile (fix 11)",
        "src/engine/recover.rs",
        [("if let (Some(from), Some(top)) = (&intent.moved_from, remote_root) {",
          "if let (Some(from), Some(top), true) = (&intent.moved_from, remote_root, false) {")],
    ),
    "same-tick": (
        "a file written in the same mtime tick is trusted by its stat before it is replaced (fix 14)",
        "src/engine/exec.rs",
        [("        if !m.is_racy_at(clock::unix_nanos(self.clock.now())) {\n            return true;",
          "        if true {\n            return true;")],
    ),
    "stale-synced": (
        "two Synced entries may name one host file (fix 15)",
        "src/state/synced.rs",
        [("    if e.kind == Kind::File {\n        conn.prepare_cached(", "    if false {\n        conn.prepare_cached(")],
    ),
    "move-precheck": (
        "a remote move does not check the entry is still where the listing showed it (fix 18)",
        "src/engine/exec.rs",
        [("        if old_parent.is_some_and(|p| p != now_parent) {", "        if old_parent.is_some_and(|p| p != now_parent) && false {")],
    ),
    "sweep": (
        "a folder deleted on the other side is swept whole, changed and unsynced files too",
        "src/engine/exec.rs",
        [("            if unchanged {\n                self.to_trash(&rel)?;", "            if unchanged || ft.is_file() {\n                self.to_trash(&rel)?;")],
    ),
    "remote-sweep-look": (
        "a host folder is trashed without listing it right before (the pass's scan is trusted)",
        "src/engine/exec.rs",
        [("            self.remote_dir_holds_only_synced(path, id).await?;\n", "")],
    ),
    "cut-off": (
        "a subfolder trashed between two listings is taken for a trashed root (bug 26)",
        "src/engine/mod.rs",
        [("            && !cut_off_below(client, folder, root_id).await?\n", "")],
        "daemon",
    ),
    "unlisted-root": (
        "entries no listing showed yet are not looked up for a trashed root (bug 27)",
        "src/engine/mod.rs",
        [("check_root_not_trashed(client, cfg, root_id, &snap.view, &recorded)",
          "check_root_not_trashed(client, cfg, root_id, &snap.view, &synced)")],
    ),
    "in-place": (
        "a focused pass lists cached folder ids without checking they are still in place (bug 28)",
        "src/engine/mod.rs",
        [("        match still_in_place(client, &f.remote, base).await {",
          "        match Ok::<bool, ApiError>(true) {")],
        "daemon",
    ),
    # -- classic mistakes of sync clients --------------------------------
    "D1-retry-upload": (
        "an upload whose answer was lost is simply sent again (recovery ignores upload intents)",
        "src/engine/recover.rs",
        [("                replaces,\n                ..\n            } => {\n                let source = match &intent.op {",
          "                replaces,\n                ..\n            } if !matches!(intent.op, Op::Upload { .. }) => {\n                let source = match &intent.op {")],
    ),
    "D2-no-recheck": (
        "no precondition re-check before a local delete (the plan's view is trusted)",
        "src/engine/exec.rs",
        [("            Some((Kind::File, m))\n                if m.ino == expect.ino\n                    && m.size == expect.size\n                    && m.mtime_ns == expect.mtime_ns\n                    && self.same_if_racy(path, &m, self.synced_sha(path)) => {}",
          "            Some((Kind::File, _)) => {}")],
    ),
    "D3-no-journal": (
        "the journal's open intents are dropped (no recovery after a crash or lost answer)",
        "src/engine/recover.rs",
        [("    let pending = db.journal_pending()?;", "    let pending: Vec<(i64, String)> = db.journal_pending()?.into_iter().take(0).collect();")],
    ),
}


def run_sim(test):
    budget = DAEMON_SEEDS if test == "daemon" else SEEDS
    env = dict(os.environ)
    env.update({
        "DCSYNC_SIM_SEEDS": str(SEEDS),
        "DCSYNC_SIM_DAEMON_SEEDS": str(DAEMON_SEEDS),
        "DCSYNC_SIM_FROM": "0",
        "DCSYNC_SIM_STOP_FIRST": "1",
        "DCSYNC_SIM_SHRINK": "0",
    })
    cmd = ["cargo", "test", "-q", "--test", "sim", test]
    if os.environ.get("PROFILE") == "release":
        cmd.insert(2, "--release")
    p = subprocess.run(
        cmd + ["--", "--nocapture"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    out = p.stdout + p.stderr
    if "error[" in out or "could not compile" in out:
        return ("build failed", "")
    done = re.search(r"simulation: (\d+) seeds", out)
    failed = re.search(r"seeds failed: \[([\d, ]+)\]", out)
    first = re.search(r"---- seed (\d+): (.*)", out)
    if failed:
        seeds = [int(x) for x in failed.group(1).split(",")]
        what = first.group(2)[:90] if first else ""
        in_range = [x for x in seeds if x < budget]
        if not in_range:
            return (f"not in {budget}; regression seed {min(seeds)}", what)
        return (f"{min(in_range) + 1} (seed {min(in_range)})", what)
    if done:
        return (f"not found in {done.group(1)}", "")
    return ("no result", out[-300:])


def main():
    names = sys.argv[1:] or list(BUGS)
    rows = []
    for name in names:
        what, path, edits, *test = BUGS[name]
        test = test[0] if test else "simulation"
        if test == "daemon":
            what += " (daemon simulation)"
        full = os.path.join(ROOT, path)
        original = open(full).read()
        text = original
        stale = [old for old, _ in edits if old not in text]
        if stale:
            rows.append((name, what, "stale: the code changed", stale[0][:60]))
            continue
        for old, new in edits:
            text = text.replace(old, new, 1)
        try:
            open(full, "w").write(text)
            print(f"... {name}", file=sys.stderr, flush=True)
            first, said = run_sim(test)
        finally:
            open(full, "w").write(original)
        rows.append((name, what, first, said))
    print("| bug | what | seeds to the first failure | what the oracle said |")
    print("|---|---|---|---|")
    for name, what, first, said in rows:
        print(f"| {name} | {what} | {first} | {said} |")


if __name__ == "__main__":
    main()
