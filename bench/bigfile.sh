#!/usr/bin/env bash
# Big files at line speed (issue 13, item 5): a 1 GiB `dcsync remote put`
# and `remote get` against a release emulator on loopback, each beside curl
# doing the same upload and download to the same endpoints in the same run
# (curl checks nothing; dcsync checks the MD5 both ways). Medians of
# BENCH_BIG_REPEAT runs, alternating curl and dcsync. Out of CI; talks only
# to 127.0.0.1. Results: docs/BENCHMARKS.md.
#
# Usage: bench/bigfile.sh
# Knobs (environment):
#   BENCH_BIG_MIB=1024     size of the file, MiB
#   BENCH_BIG_REPEAT=3     runs of each (median reported)
#   BENCH_BIG_PIN=0        1 = the emulator on CPU 0, curl and dcsync on CPU 1
#                          (a host with its own CPU: shows whether the client
#                          is on the transfer's critical path, not how two
#                          processes share two cores)
#   BENCH_BUILD=1          0 = use the existing binaries in BENCH_BIN_DIR
#   BENCH_BIN_DIR=target/release   where the binaries are
#   BENCH_DATA=bench/data  where generated data goes (never committed)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
MIB=${BENCH_BIG_MIB:-1024}
REPEAT=${BENCH_BIG_REPEAT:-3}
PIN=${BENCH_BIG_PIN:-0}
BUILD=${BENCH_BUILD:-1}
BIN_DIR=${BENCH_BIN_DIR:-$REPO/target/release}
DATA=${BENCH_DATA:-$HERE/data}/bigfile
KEY=$(printf 'b%.0s' {1..64})

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
command -v python3 >/dev/null || die "python3 is needed"

# shellcheck source=bench/emulator.sh
source "$HERE/emulator.sh"
start_bench_emulator
URL=${URL%/}/
ON=()
if [[ $PIN == 1 ]]; then
    command -v taskset >/dev/null || die "taskset is needed for BENCH_BIG_PIN=1 (util-linux)"
    (($(nproc) >= 2)) || die "BENCH_BIG_PIN=1 needs two CPUs"
    taskset -a -p -c 0 "$EMU_PID" >/dev/null
    ON=(taskset -c 1)
fi

cat >"$DATA/config.toml" <<EOF
api_url = "$URL"
key1 = "$KEY"
key2 = "$KEY"
state_dir = "$DATA/state"
max_requests_per_second = 1000.0
EOF
chmod 600 "$DATA/config.toml"

# A field of the JSON on stdin: json 'd["data"]["access_token"]'.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# A fresh token (dcsync's own logins replace the account's earlier one),
# taken before the timed part of each curl run.
auth() {
    local a
    a=$(curl -sS -X POST "${URL}authorize" -d "key1=$KEY" -d "key2=$KEY")
    TOKEN=$(json 'd["data"]["access_token"]' <<<"$a")
    ACCOUNT=$(json 'd["data"]["account_id"]' <<<"$a")
}

log "writing a $MIB MiB random file"
head -c "$((MIB << 20))" /dev/urandom >"$DATA/big.bin"
cat "$DATA/big.bin" >/dev/null # in the page cache for both

# Seconds a command took (its output discarded).
# Each starts with no dirty pages of the one before waiting to be written
# (dcsync fsyncs a download before it returns; curl does not).
timed() {
    local t0 t1
    sync
    t0=$EPOCHREALTIME
    "$@" >/dev/null
    t1=$EPOCHREALTIME
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

curl_put() {
    "${ON[@]}" curl -sS -o "$DATA/curl-put.json" -F "access_token=$TOKEN" -F "account_id=$ACCOUNT" \
        -F "folder_id=" -F "upload_file=@$DATA/big.bin" "${URL}file/upload"
}
curl_get() {
    local id link
    id=$(json 'd["data"][0]["file_id"]' <"$DATA/curl-put.json")
    curl -sS -o "$DATA/curl-link.json" -X POST "${URL}file/download" \
        -d "access_token=$TOKEN" -d "account_id=$ACCOUNT" -d "file_id=$id"
    link=$(json 'd["data"]["download_url"]' <"$DATA/curl-link.json") ||
        die "no download link: $(cat "$DATA/curl-link.json")"
    "${ON[@]}" curl -sS -o "$DATA/curl.out" "$link"
}

cp_up=() cu_up=() cp_down=() cu_down=()
for ((i = 1; i <= REPEAT; i++)); do
    log "run $i of $REPEAT"
    auth
    cu_up+=("$(timed curl_put)")
    cp_up+=("$(timed "${ON[@]}" "$DCSYNC" --config "$DATA/config.toml" remote put "$DATA/big.bin" "/run$i")")
    auth
    cu_down+=("$(timed curl_get)")
    rm -f "$DATA/dcsync.out"
    cp_down+=("$(timed "${ON[@]}" "$DCSYNC" --config "$DATA/config.toml" remote get "/run$i/big.bin" "$DATA/dcsync.out")")
    cmp -s "$DATA/big.bin" "$DATA/dcsync.out" || die "dcsync's download differs"
    cmp -s "$DATA/big.bin" "$DATA/curl.out" || die "curl's download differs"
    rm -f "$DATA/curl.out" "$DATA/dcsync.out"
done
row() { # what dcsync-times curl-times
    local d c
    d=$(median $2) c=$(median $3)
    python3 -c "
mib = $MIB
print(f'| $1 | {$d:.2f} s ({mib / $d:.0f} MiB/s) | {$c:.2f} s ({mib / $c:.0f} MiB/s) | {$c / $d:.2f}x curl |')"
}
echo
pinned=""
[[ $PIN == 1 ]] && pinned=", emulator on CPU 0, clients on CPU 1"
echo "commit $(git -C "$REPO" rev-parse --short HEAD), $MIB MiB, medians of $REPEAT ($(nproc) cores$pinned)"
echo
echo "| transfer | dcsync | curl (baseline) | speed |"
echo "|---|---|---|---|"
row "remote put" "${cp_up[*]}" "${cu_up[*]}"
row "remote get" "${cp_down[*]}" "${cu_down[*]}"
echo
echo "all runs: put ${cp_up[*]} / curl ${cu_up[*]}; get ${cp_down[*]} / curl ${cu_down[*]}"
rm -f "$DATA/big.bin"
