#!/bin/bash
# One folder of N files (default 30,000): uploads it with $OLD into a fresh
# release emulator, then runs no-change `dcsync sync` passes with $OLD and $NEW
# alternating, three each, printing wall, CPU and peak RSS per pass. For
# comparing two builds on a big folder (docs/BENCHMARKS.md).
#
#   OLD=path/to/old/dcsync NEW=target/release/dcsync [N=30000] bench/one-folder.sh
#
# Needs a release emulator at bench/data/bin/dcsync-emulator (bench/run.sh
# puts it there). Data goes to bench/data/one-folder (never committed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${N:-30000}
: "${OLD:?set OLD to a dcsync binary}" "${NEW:?set NEW to a dcsync binary}"
D=$HERE/data/one-folder
. "$HERE/pair-lib.sh"
rm -rf "$D"
mkdir -p "$D/tree/big"
for ((i = 0; i < N; i++)); do printf 'x%d' "$i" >"$D/tree/big/photo-$(printf %06d "$i").jpg"; done
start_pair "$D" "$D/tree" /one-folder
/usr/bin/time -f "upload (OLD) %e s wall, %U+%S s CPU, %M KiB peak" "$OLD" --config "$D/cfg.toml" -q sync
for _ in 1 2 3; do
    for b in OLD NEW; do
        /usr/bin/time -f "no-change $b %e s wall, %U+%S s CPU, %M KiB peak" "${!b}" --config "$D/cfg.toml" -q sync
    done
done
