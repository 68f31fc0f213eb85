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
[[ -d $TREE ]] || { echo "no tree at $TREE: run BENCH_FILES=$N bench/run.sh upload first" >&2; exit 1; }
D=$HERE/data/upload-pair
. "$HERE/pair-lib.sh"

one() {
    local label=$1 bin=$2
    stop_pair
    rm -rf "$D" "$TREE/.dcsync"
    sync
    mkdir -p "$D"
    start_pair "$D" "$TREE" /upload-pair
    /usr/bin/time -f "upload $label: %e s wall, %U+%S s CPU, %M KiB peak" "$bin" --config "$D/cfg.toml" -q sync
}

for ((p = 0; p < PAIRS; p++)); do
    one NEW "$NEW"
    one OLD "$OLD"
done
rm -rf "$D" "$TREE/.dcsync"
