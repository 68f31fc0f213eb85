#!/usr/bin/env bash
# Bandwidth limit benchmark (issue 14, item 3): a big `remote put` and
# `remote get` against the emulator on loopback, once without a limit (the
# baseline, same run) and once under `bwlimit`; prints each average beside
# the limit. Out of CI; talks only to 127.0.0.1. Results: docs/BENCHMARKS.md.
#
# Usage: bench/bwlimit.sh
# Knobs (environment):
#   BENCH_BW_MIB=100       size of the file, MiB
#   BENCH_BW_LIMIT=2M      the limit (rclone syntax, one rate)
#   BENCH_BUILD=1          0 = use the existing binaries in BENCH_BIN_DIR
#   BENCH_BIN_DIR=target/release   where the binaries are
#   BENCH_DATA=bench/data  where generated data goes (never committed)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
MIB=${BENCH_BW_MIB:-100}
LIMIT=${BENCH_BW_LIMIT:-2M}
BUILD=${BENCH_BUILD:-1}
BIN_DIR=${BENCH_BIN_DIR:-$REPO/target/release}
DATA=${BENCH_DATA:-$HERE/data}/bwlimit
KEY=$(printf 'b%.0s' {1..64})

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=bench/emulator.sh
source "$HERE/emulator.sh"
start_bench_emulator

# $1 config file, $2 bwlimit line (or empty)
config() {
    cat >"$1" <<EOF
api_url = "$URL"
key1 = "$KEY"
key2 = "$KEY"
state_dir = "$DATA/state"
max_requests_per_second = 1000.0
$2
EOF
    chmod 600 "$1"
}
config "$DATA/free.toml" ""
config "$DATA/limited.toml" "bwlimit = \"$LIMIT\""

log "writing a $MIB MiB file"
head -c "$((MIB << 20))" /dev/urandom >"$DATA/big.bin"

# Prints the seconds a dcsync command took.
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$DCSYNC" "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

command -v bc >/dev/null || die "bc is needed (apt-get install bc)"
log "baseline: no limit"
up_free=$(timed --config "$DATA/free.toml" remote put "$DATA/big.bin" /free)
down_free=$(timed --config "$DATA/free.toml" remote get /free/big.bin "$DATA/free.out")
log "under bwlimit = $LIMIT"
up_lim=$(timed --config "$DATA/limited.toml" remote put "$DATA/big.bin" /limited)
down_lim=$(timed --config "$DATA/limited.toml" remote get /limited/big.bin "$DATA/limited.out")
cmp -s "$DATA/big.bin" "$DATA/limited.out" || die "the limited download differs"

# The limit in MiB/s (rclone units: bare = KiB/s).
limit_mib=$(python3 - "$LIMIT" <<'EOF'
import sys
v = sys.argv[1].strip()
m = {"B": 1 / 1048576, "K": 1 / 1024, "M": 1, "G": 1024}
u = v[-1].upper()
print(float(v[:-1]) * m[u] if u in m else float(v) / 1024)
EOF
)
row() { # direction seconds [limited]
    local rate vs="-"
    rate=$(echo "$MIB / $2" | bc -l)
    if [[ ${3:-} == limited ]]; then
        vs=$(printf '%+.1f %%' "$(echo "100 * ($rate - $limit_mib) / $limit_mib" | bc -l)")
    fi
    printf '| %s | %s MiB | %.2f s | %.2f MiB/s | %s |\n' "$1" "$MIB" "$2" "$rate" "$vs"
}
echo
echo "commit $(git -C "$REPO" rev-parse --short HEAD), limit $LIMIT ($limit_mib MiB/s)"
echo
echo "| transfer | size | time | average | vs the limit |"
echo "|---|---|---|---|---|"
row "put, no limit (baseline)" "$up_free"
row "get, no limit (baseline)" "$down_free"
row "put, bwlimit = $LIMIT" "$up_lim" limited
row "get, bwlimit = $LIMIT" "$down_lim" limited
rm -f "$DATA/big.bin" "$DATA/free.out" "$DATA/limited.out"
