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
EMU=$HERE/data/bin/dcsync-emulator
KEY=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
rm -rf "$D"
mkdir -p "$D/tree/big" "$D/tree/.dcsync" "$D/emu"
for ((i = 0; i < N; i++)); do printf 'x%d' "$i" >"$D/tree/big/photo-$(printf %06d "$i").jpg"; done
"$EMU" --listen 127.0.0.1:0 --data "$D/emu/state" --key1 "$KEY" --key2 "$KEY" >"$D/emu.out" 2>"$D/emu.err" &
EPID=$!
trap 'kill $EPID 2>/dev/null || true' EXIT
URL=
for _ in $(seq 100); do
    URL=$(head -n1 "$D/emu.out" 2>/dev/null | sed -n 's/^listening on //p')
    [[ -n $URL ]] && break
    sleep 0.1
done
[[ -n $URL ]] || { echo "the emulator printed no URL" >&2; exit 1; }
cat >"$D/cfg.toml" <<C
api_url = "$URL"
key1 = "$KEY"
key2 = "$KEY"
local_path = "$D/tree"
remote_path = "/one-folder"
state_dir = "$D/state"
max_requests_per_second = 100000
transfers = 8
C
chmod 600 "$D/cfg.toml"
/usr/bin/time -f "upload (OLD) %e s wall, %U+%S s CPU, %M KiB peak" "$OLD" --config "$D/cfg.toml" -q sync
for _ in 1 2 3; do
    for b in OLD NEW; do
        /usr/bin/time -f "no-change $b %e s wall, %U+%S s CPU, %M KiB peak" "${!b}" --config "$D/cfg.toml" -q sync
    done
done
