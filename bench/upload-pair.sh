#!/bin/bash
# Initial uploads of bench/run.sh's N-file tree (default 100,000 files in
# N/100 folders) with $OLD and $NEW alternating, PAIRS pairs (default 2), each
# into a fresh release emulator after `sync` (so no run waits for the one
# before's writeback), printing wall, CPU and peak RSS of each upload. Single
# uploads on a shared disk vary a lot from run to run; compare within a pair
# (docs/BENCHMARKS.md, "Folder creates in runs").
#
#   OLD=path/to/old/dcsync NEW=target/release/dcsync [N=100000] [PAIRS=2] bench/upload-pair.sh
#
# Needs a release emulator at bench/data/bin/dcsync-emulator and the tree at
# bench/data/trees/files-N (bench/run.sh makes both: `BENCH_FILES=N
# bench/run.sh upload`). Data goes to bench/data/upload-pair (never committed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${N:-100000}
PAIRS=${PAIRS:-2}
: "${OLD:?set OLD to a dcsync binary}" "${NEW:?set NEW to a dcsync binary}"
TREE=$HERE/data/trees/files-$N
EMU=$HERE/data/bin/dcsync-emulator
[[ -d $TREE ]] || { echo "no tree at $TREE: run BENCH_FILES=$N bench/run.sh upload first" >&2; exit 1; }
[[ -x $EMU ]] || { echo "no emulator at $EMU: run bench/run.sh first" >&2; exit 1; }
D=$HERE/data/upload-pair
KEY=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
EPID=
trap 'if [[ -n $EPID ]]; then kill "$EPID" 2>/dev/null || true; fi' EXIT

one() {
    local label=$1 bin=$2 url=
    if [[ -n $EPID ]]; then kill "$EPID" 2>/dev/null || true; wait "$EPID" 2>/dev/null || true; fi
    rm -rf "$D" "$TREE/.dcsync"
    sync
    mkdir -p "$D/emu" "$TREE/.dcsync"
    "$EMU" --listen 127.0.0.1:0 --data "$D/emu/state" --key1 "$KEY" --key2 "$KEY" >"$D/emu.out" 2>"$D/emu.err" &
    EPID=$!
    for _ in $(seq 100); do
        url=$(head -n1 "$D/emu.out" 2>/dev/null | sed -n 's/^listening on //p')
        [[ -n $url ]] && break
        sleep 0.1
    done
    [[ -n $url ]] || { echo "the emulator printed no URL" >&2; exit 1; }
    cat >"$D/cfg.toml" <<C
api_url = "$url"
key1 = "$KEY"
key2 = "$KEY"
local_path = "$TREE"
remote_path = "/upload-pair"
state_dir = "$D/state"
max_requests_per_second = 100000
transfers = 8
C
    chmod 600 "$D/cfg.toml"
    /usr/bin/time -f "upload $label: %e s wall, %U+%S s CPU, %M KiB peak" "$bin" --config "$D/cfg.toml" -q sync
}

for ((p = 0; p < PAIRS; p++)); do
    one NEW "$NEW"
    one OLD "$OLD"
done
rm -rf "$D" "$TREE/.dcsync"
