#!/usr/bin/env bash
# dcsync daemon benchmarks (issue 5, item 12). Results and how to read them:
# docs/BENCHMARKS.md, section "Daemon". Out of CI; talks only to 127.0.0.1.
#
# Usage: bench/daemon.sh [all|small|large|idle]
#   all     (default) small, then large
#   small   on a BENCH_DAEMON_SMALL-file tree: propagation latency (daemon vs
#           one-shot sync vs remote put) and the burst of BENCH_BURST files
#   large   on a BENCH_DAEMON_LARGE-file tree: idle CPU/RSS over
#           BENCH_IDLE_SECS, then propagation latency with its baselines
#   idle    like large, without the latency part
#   latency like large, without the idle part
#
# Knobs (environment), besides those of bench/run.sh (BENCH_DATA, BENCH_BUILD,
# BENCH_TIMEOUT):
#   BENCH_DAEMON_SMALL=1000    files in the small tree
#   BENCH_DAEMON_LARGE=100000  files in the large tree
#   BENCH_LAT_N=30             files written one at a time for the latency test
#   BENCH_LAT_GAP=2            seconds from one write to the next (at least)
#   BENCH_LAT_DIR=d00000       folder of the tree the latency files go to
#                              ("." = the top of the synced folder)
#   BENCH_BASE_N=10            repetitions of each latency baseline
#   BENCH_BURST=10000          files written in one burst
#   BENCH_IDLE_SECS=600        length of the idle window
#   BENCH_IDLE_SAMPLE=10       seconds between idle samples
#
# The trees of bench/gen_tree.py are copied to bench/data/daemon-N/tree
# (the generated trees stay untouched for bench/run.sh); the daemon runs
# with poll_interval = "60s". Every process started here is stopped by PID
# on exit.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=run.sh
source "$HERE/run.sh"

SMALL=${BENCH_DAEMON_SMALL:-1000}
LARGE=${BENCH_DAEMON_LARGE:-100000}
LAT_N=${BENCH_LAT_N:-30}
LAT_GAP=${BENCH_LAT_GAP:-2}
LAT_DIR=${BENCH_LAT_DIR:-d00000}
# Local folder, remote folder and path prefix of the latency files.
if [[ $LAT_DIR == . ]]; then LAT_SUB="" LAT_REMOTE=/bench LAT_PFX=""
else LAT_SUB=/$LAT_DIR LAT_REMOTE=/bench/$LAT_DIR LAT_PFX=$LAT_DIR/; fi
BASE_N=${BENCH_BASE_N:-10}
BURST=${BENCH_BURST:-10000}
IDLE_SECS=${BENCH_IDLE_SECS:-600}
IDLE_SAMPLE=${BENCH_IDLE_SAMPLE:-10}
HZ=$(getconf CLK_TCK)

DAEMON_PID=""
POLLER_PID=""

stop_daemon() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        local i
        for i in $(seq 300); do
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$DAEMON_PID" 2>/dev/null; then
            log "daemon $DAEMON_PID did not stop within 30 s of SIGTERM; killing it"
            kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fi
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
    fi
}
stop_poller() {
    if [[ -n $POLLER_PID ]]; then
        kill "$POLLER_PID" 2>/dev/null || true
        wait "$POLLER_PID" 2>/dev/null || true
        POLLER_PID=""
    fi
}
cleanup() { stop_poller; stop_daemon; stop_emulator; }
trap cleanup EXIT

# ---------------------------------------------------------------- helpers

# One status request on the control socket $1; prints
# "state ops_planned ops_done next_poll_secs last_sync" (or "down").
status_py='
import json, socket, sys, time
def ask(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"{\"cmd\":\"status\"}\n")
        buf = b""
        while not buf.endswith(b"\n"):
            c = s.recv(65536)
            if not c:
                break
            buf += c
        s.close()
        p = json.loads(buf)["pairs"][0]
        return "%s %d %d %s %s" % (p["state"], p["ops_planned"], p["ops_done"],
                                   p.get("next_poll_secs"), (p.get("last_sync") or "-").replace(" ", "T"))
    except Exception:
        return "down"
if sys.argv[2] == "once":
    print(ask(sys.argv[1]))
else:  # poll every argv[3] s into argv[2] until killed
    with open(sys.argv[2], "w", buffering=1) as out:
        while True:
            out.write("%.3f %s\n" % (time.time(), ask(sys.argv[1])))
            time.sleep(float(sys.argv[3]))
'
daemon_status() { python3 -c "$status_py" "$SOCK" once; }

# Starts the daemon on $CFG with its log in $1; waits until its first pass
# has finished (state idle with a last_sync).
start_daemon() {
    "$DCSYNC" --config "$CFG" daemon 2>"$1" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + TIMEOUT)) st
    while :; do
        kill -0 "$DAEMON_PID" 2>/dev/null || die "daemon exited: $(tail -n5 "$1")"
        st=$(daemon_status)
        [[ $st == idle* && $st != *" -" ]] && break
        ((SECONDS < deadline)) || die "daemon not idle within ${TIMEOUT}s: $st"
        sleep 0.2
    done
    log "daemon pid $DAEMON_PID idle ($st)"
}

now() { printf '%s' "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# p50 / p95 / max (nearest rank) of the numbers in file $1, in seconds.
pstats() {
    sort -g "$1" | awk '{ a[NR] = $1 } END {
        p50 = a[int((NR + 1) / 2)]; i = int(NR * 0.95 + 0.999); if (i > NR) i = NR
        printf "p50 %.2f s, p95 %.2f s, max %.2f s (n=%d)", p50, a[i], a[NR], NR }'
}

# Copies the generated tree of $1 files to $DATA/daemon-$1/tree, starts a
# fresh emulator and uploads the copy with one `dcsync sync`. Sets RUN,
# TREE, CFG, SOCK.
setup_pair() {
    local n=$1 src
    src=$(tree_for "$n")
    RUN=$DATA/daemon-$n
    rm -rf "$RUN"
    mkdir -p "$RUN"
    TREE=$RUN/tree
    log "copying the $n-file tree to $TREE"
    cp -r "$src" "$TREE"
    rm -rf "$TREE/.dcsync"
    start_emulator "$RUN/emu"
    CFG=$RUN/config.toml
    write_config "$CFG" "$TREE" /bench "$RUN/state"
    echo 'poll_interval = "60s"' >>"$CFG"
    # The daemon's control socket is named after its config's absolute path
    # (`daemon::socket_path`).
    SOCK=$RUN/state/daemon-$(printf '%s' "$(realpath "$CFG")" | sha256sum | cut -c1-12).sock
    log "initial upload of $n files"
    OUT=$RUN/upload.out
    timed "$DCSYNC" --config "$CFG" sync
    grep -q '^in sync:' <(tail -n1 "$OUT") || die "upload did not converge: $(tail -n1 "$OUT")"
    log "uploaded in $T_WALL s"
}

# Waits until remote folder $1 lists a file named $2; sets SEEN_AT (epoch s)
# and LS_CALLS (listings made).
wait_visible() {
    local deadline=$((SECONDS + 60)) out
    LS_CALLS=0
    while :; do
        out=$("$DCSYNC" --config "$CFG" remote ls "$1" --json)
        LS_CALLS=$((LS_CALLS + 1))
        if [[ $out == *"\"name\": \"$2\""* ]]; then
            SEEN_AT=$(now)
            return
        fi
        ((SECONDS < deadline)) || die "$2 not on the remote after 60 s"
    done
}

# Time of the daemon's "uploaded path=$2" log line in log $1, as epoch s.
uploaded_at() {
    local ts
    ts=$(grep -m1 " uploaded path=$2 " "$1" | cut -d' ' -f1) || true
    [[ -n $ts ]] || { echo ""; return; }
    date -d "$ts" +%s.%N
}

# ---------------------------------------------------------------- latency

# Daemon running: LAT_N new 2 KiB files in BENCH_LAT_DIR, one at a time; for each,
# write → visible in `remote ls` (polled in a tight loop) and write → the
# daemon's "uploaded" log line. Then the baselines with the daemon stopped.
bench_latency() {
    local n=$1 dlog=$RUN/daemon-latency.log
    local vis=$RUN/lat-visible.txt upl=$RUN/lat-uploaded.txt gran=$RUN/lat-ls.txt
    : >"$vis"; : >"$upl"; : >"$gran"
    start_daemon "$dlog"
    log "latency: $LAT_N files, one every ≥ ${LAT_GAP}s, daemon running ($n files tracked)"
    local i t0 t1 name u
    for ((i = 1; i <= LAT_N; i++)); do
        name=lat-$i.bin
        t0=$(now)
        head -c 2048 /dev/urandom >"$TREE$LAT_SUB/$name"
        wait_visible "$LAT_REMOTE" "$name"
        t1=$SEEN_AT
        sub "$t0" "$t1" >>"$vis"; echo >>"$vis"
        awk -v a="$t0" -v b="$t1" -v c="$LS_CALLS" 'BEGIN { printf "%.4f\n", (b - a) / c }' >>"$gran"
        u=$(uploaded_at "$dlog" "$LAT_PFX$name")
        [[ -n $u ]] && { sub "$t0" "$u" >>"$upl"; echo >>"$upl"; }
        # keep at least LAT_GAP s between writes
        sleep "$(awk -v a="$t0" -v g="$LAT_GAP" -v n="$(now)" 'BEGIN { d = g - (n - a); print (d > 0 ? d : 0) }')"
    done
    local passes_cpu
    passes_cpu=$(awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DAEMON_PID/stat")
    stop_daemon
    sed -i '/^$/d' "$vis" "$upl"
    local g
    g=$(sort -g "$gran" | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] * 1000 }')
    row "latency, $n files tracked, files in $LAT_REMOTE: write → visible in \`remote ls\`" "$(pstats "$vis")" \
        "polled in a tight loop; one \`remote ls\` ≈ $g ms (granularity)" "target ≈ 1 s + upload time"
    row "latency: write → daemon's \"uploaded\" log line" "$(pstats "$upl")" \
        "no polling error (log timestamp)" "$(wc -l <"$upl") of $LAT_N lines found"

    log "baseline: write + one-shot \`dcsync sync\` right after, $BASE_N times (daemon stopped)"
    local sy=$RUN/base-sync.txt pu=$RUN/base-put.txt
    : >"$sy"; : >"$pu"
    OUT=$RUN/base-sync.out
    for ((i = 1; i <= BASE_N; i++)); do
        t0=$(now)
        head -c 2048 /dev/urandom >"$TREE/d00000/base-$i.bin"
        timed "$DCSYNC" --config "$CFG" sync
        t1=$(now)
        tail -n1 "$OUT" | grep -q '^in sync: 1 uploaded' || die "baseline sync: $(tail -n1 "$OUT")"
        sub "$t0" "$t1" >>"$sy"; echo >>"$sy"
    done
    local sync_cpu=$T_CPU
    log "baseline: \`dcsync remote put\` of one 2 KiB file, 1 warm-up + $BASE_N times"
    mkdir -p "$RUN/put"
    OUT=/dev/null
    head -c 2048 /dev/urandom >"$RUN/put/warm.bin"
    timed "$DCSYNC" --config "$CFG" remote put "$RUN/put/warm.bin" /bench-put
    for ((i = 1; i <= BASE_N; i++)); do
        head -c 2048 /dev/urandom >"$RUN/put/put-$i.bin"
        timed "$DCSYNC" --config "$CFG" remote put "$RUN/put/put-$i.bin" /bench-put
        echo "$T_WALL" >>"$pu"
    done
    sed -i '/^$/d' "$sy"
    row "baseline: write + one-shot \`dcsync sync\`, $n files" "$(pstats "$sy")" \
        "whole pass (scan + remote listing + upload); last pass CPU ${sync_cpu} s" "the cost of one pass"
    row "baseline: \`dcsync remote put\` of one 2 KiB file" "$(pstats "$pu")" \
        "process start + token reuse + upload" "pure upload time"
    row "daemon CPU during the latency test" "$passes_cpu s" "$LAT_N writes + the start-up pass" ""
}

# ---------------------------------------------------------------- burst

# Writes $3 files of 1–4 KiB (content seeded by $4) into $1/$2/bNNN/
# (100 per folder) as fast as Python can; prints the seconds it took.
burst_py='
import os, random, sys, time
root, sub, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(int(sys.argv[4]))  # distinct content per burst (no copy-instead-of-upload)
t = time.time()
for i in range(n):
    d = os.path.join(root, sub, "b%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "g%06d.bin" % i), "wb") as f:
        f.write(b"%d\n" % i + rng.randbytes(rng.randint(1024, 4096) - 8))
print("%.2f" % (time.time() - t))
'

# Counts passes from the status samples in $1 ("epoch state planned done
# next_poll last_sync"): a new pass starts when the state turns to
# syncing, or stays syncing while ops_done/ops_planned drop; a pass that
# started and ended between two samples shows as a new last_sync.
# Prints "passes max_planned_list".
count_passes='
import sys
passes = []; prev = None
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 6: continue
    t, st, pl, dn, last = float(f[0]), f[1], int(f[2]), int(f[3]), f[5]
    if prev is not None:
        pst, ppl, pdn, plast = prev
        if st == "syncing" and (pst != "syncing" or dn < pdn or pl < ppl):
            passes.append(pl)
        elif st != "syncing" and pst != "syncing" and last != plast:
            passes.append(-1)  # unseen pass (shorter than one sample)
        elif st == "syncing":
            passes[-1] = max(passes[-1], pl) if passes else pl
    elif st == "syncing":
        passes.append(pl)
    prev = (st, pl, dn, last)
print(len(passes), ",".join("?" if p < 0 else str(p) for p in passes))
'

bench_burst() {
    local dlog=$RUN/daemon-burst.log samples=$RUN/burst-status.txt
    start_daemon "$dlog"
    local before
    before=$(grep -c ' uploaded path=' "$dlog" || true)
    python3 -c "$status_py" "$SOCK" "$samples" 0.1 &
    POLLER_PID=$!
    sleep 0.5
    log "burst: writing $BURST files into burst/ while the daemon runs"
    local cpu0 t0 wtime t1 up deadline=$((SECONDS + TIMEOUT))
    cpu0=$(awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DAEMON_PID/stat")
    t0=$(now)
    wtime=$(python3 -c "$burst_py" "$TREE" burst "$BURST" 7)
    while :; do
        up=$(($(grep -c ' uploaded path=burst/' "$dlog" || true)))
        ((up >= BURST)) && break
        ((SECONDS < deadline)) || die "only $up of $BURST burst files uploaded within ${TIMEOUT}s"
        kill -0 "$DAEMON_PID" 2>/dev/null || die "daemon exited during the burst"
        sleep 0.1
    done
    t1=$(now)
    # let the last pass end and show idle
    local st
    while st=$(daemon_status) && [[ $st != idle* ]]; do
        ((SECONDS < deadline)) || die "daemon not idle after the burst: $st"
        sleep 0.2
    done
    sleep 2 # a pass triggered by the tail of the burst would start within the debounce
    while st=$(daemon_status) && [[ $st != idle* ]]; do sleep 0.2; done
    local cpu1
    cpu1=$(awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DAEMON_PID/stat")
    stop_poller
    stop_daemon
    local total folders np plist
    total=$(grep -c ' uploaded path=' "$dlog" || true)
    folders=$(grep -c 'created remote folder' "$dlog" || true)
    read -r np plist < <(python3 -c "$count_passes" "$samples")
    local nsamp
    nsamp=$(wc -l <"$samples")
    row "burst of $BURST files (written in ${wtime} s): write start → all on remote" \
        "$(sub "$t0" "$t1") s" "" "$(grep -c ' uploaded path=burst/' "$dlog") \"uploaded\" lines, $folders folders created"
    row "burst: daemon passes (status sampled every 0.1 s, $nsamp samples)" \
        "$np passes; ops planned per pass: $plist" "" "target: batched, not $BURST passes"
    row "burst: daemon CPU (write start → idle)" "$(sub "$cpu0" "$cpu1") s" "" "$((total - before)) uploads logged"

    log "baseline: the same burst (burst-b/) then one \`dcsync sync\` (daemon stopped)"
    t0=$(now)
    python3 -c "$burst_py" "$TREE" burst-b "$BURST" 8 >/dev/null
    OUT=$RUN/burst-sync.out
    timed "$DCSYNC" --config "$CFG" sync
    t1=$(now)
    tail -n1 "$OUT" | grep -q "^in sync: $BURST uploaded" || die "baseline burst sync: $(tail -n1 "$OUT")"
    row "baseline: same burst, then one \`dcsync sync\`" "$(sub "$t0" "$t1") s (sync alone ${T_WALL} s)" \
        "CPU ${T_CPU} s" "$(summary "API calls") API calls"
}

# ---------------------------------------------------------------- idle

bench_idle() {
    local n=$1 dlog=$RUN/daemon-idle.log samples=$RUN/idle-samples.txt
    start_daemon "$dlog"
    log "idle: sampling daemon CPU and RSS every ${IDLE_SAMPLE}s for ${IDLE_SECS}s ($n files tracked)"
    : >"$samples"
    local t_end=$((SECONDS + IDLE_SECS)) c r e st
    local e_start
    e_start=$(emu_cpu)
    while :; do
        c=$(awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat")
        r=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status")
        st=$(daemon_status)
        echo "$SECONDS $c $r $st" >>"$samples"
        ((SECONDS >= t_end)) && break
        sleep "$IDLE_SAMPLE"
    done
    e=$(emu_cpu)
    local uploads
    uploads=$(grep -c ' uploaded\| downloaded\| moved\| deleted' "$dlog" || true)
    stop_daemon
    # Polls: the daemon logs nothing for a poll that finds no change, and its
    # next_poll_secs only updates when its loop wakes; so a poll is counted
    # as a sample interval whose CPU use is a jump (≥ 5× the median interval
    # and ≥ 0.05 s; two adjacent jumps are one poll straddling a sample).
    local med
    med=$(median $(awk 'NR > 1 { print $2 - p } { p = $2 }' "$samples"))
    read -r cpu rs re rmax rmin polls pollcpu quiet syncs < <(awk -v hz="$HZ" -v med="$med" '
        NR == 1 { c0 = $2; rs = $3; rmax = $3; rmin = $3 }
        NR > 1 { d[NR - 1] = $2 - cp }
        { cp = $2; c1 = $2; re = $3; if ($3 > rmax) rmax = $3; if ($3 < rmin) rmin = $3
          if ($4 == "syncing") syncs++ }
        END {
            n = NR - 1
            th = 5 * med; if (th < 0.05 * hz) th = 0.05 * hz
            # a poll straddling two samples makes two adjacent jumps: one poll
            for (i = 1; i <= n; i++)
                if (d[i] >= th) { if (!prevjump) polls++; pc += d[i]; prevjump = 1 }
                else { q += d[i]; qn++; prevjump = 0 }
            printf "%.2f %d %d %d %d %d %.2f %.3f %d\n", (c1 - c0) / hz, rs, re, rmax, rmin, polls,
                (polls ? pc / polls / hz : 0), (qn ? q / qn / hz : 0), syncs }' "$samples")
    local win
    win=$(awk 'NR == 1 { a = $1 } { b = $1 } END { print b - a }' "$samples")
    row "idle, $n files tracked: daemon CPU over ${win} s" \
        "$cpu s ($(awk -v c="$cpu" -v w="$win" 'BEGIN { printf "%.2f", 100 * c / w }') % of one core)" \
        "$polls polls (CPU jumps; poll_interval 60s ±10 %)" "≈ $pollcpu s CPU per poll; $quiet s per ${IDLE_SAMPLE} s between polls"
    row "idle: daemon RSS start / end / max (min)" \
        "$((rs / 1024)) / $((re / 1024)) / $((rmax / 1024)) MiB ($((rmin / 1024)))" \
        "emulator CPU over the window: $(sub "$e_start" "$e") s" "$syncs samples in syncing; $uploads transfer lines logged"
    log "baseline: \`dcsync remote tree /bench\` (one full remote listing), 3 times"
    OUT=/dev/null
    local walls=() cpus=() rsss=() i
    for i in 1 2 3; do
        e_start=$(emu_cpu)
        timed "$DCSYNC" --config "$CFG" remote tree /bench
        walls+=("$T_WALL") cpus+=("$T_CPU") rsss+=("$T_RSS")
        e=$(emu_cpu)
    done
    row "baseline: one \`remote tree /bench\` (the listing a poll makes)" \
        "CPU $(median "${cpus[@]}") s, wall $(median "${walls[@]}") s" \
        "peak RSS $(($(median "${rsss[@]}") / 1024)) MiB; emulator CPU $(sub "$e_start" "$e") s" \
        "median of 3; includes printing the tree"
}

# ---------------------------------------------------------------- main

dmain() {
    local mode=${1:-all}
    case $mode in all | small | large | idle | latency) ;; *) die "unknown subcommand $mode (all, small, large, idle, latency)" ;; esac
    need_tools
    mkdir -p "$DATA"
    prepare_binaries
    if [[ $mode == all || $mode == small ]]; then
        setup_pair "$SMALL"
        bench_latency "$SMALL"
        bench_burst
        stop_emulator
    fi
    if [[ $mode == all || $mode == large || $mode == idle || $mode == latency ]]; then
        setup_pair "$LARGE"
        [[ $mode == latency ]] || bench_idle "$LARGE"
        [[ $mode == idle ]] || bench_latency "$LARGE"
        stop_emulator
    fi
    print_results "daemon-$mode"
}

dmain "$@"
