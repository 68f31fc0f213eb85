#!/usr/bin/env bash
# dcsync benchmarks (issue 3, item 11). Results and how to read them:
# docs/BENCHMARKS.md. Out of CI; talks only to 127.0.0.1.
#
# Usage: bench/run.sh [all|upload|hash|rss|clean]
#   all     (default) initial upload, no-change pass, SHA-256 of a new big file
#   upload  initial upload + no-change pass only
#   hash    SHA-256 of a new big file only
#   rss     peak RSS of a no-change pass at each size in BENCH_RSS_SIZES,
#           with the growth per tracked file and an extrapolation to 1M
#   clean   delete the generated data (trees, emulator state, copies)
#
# Knobs (environment):
#   BENCH_FILES=10000          files in the tree, in BENCH_FILES/100 folders
#                              (the issue's full size is 100000)
#   BENCH_RSS_SIZES="100000 200000"   sizes for `rss` (1000000 = the issue's 1M run)
#   BENCH_HASH_MIB=1024        size of the new file for the hashing test
#   BENCH_REPEAT=3             repetitions of each timed pass (median reported)
#   BENCH_TIMEOUT=3600         seconds any single command may take
#   BENCH_DATA=bench/data      where generated data goes (never committed)
#   BENCH_BUILD=1              0 = use the existing target/release binaries
#   BENCH_MORE=0               1 = `rss` also runs a pass with 1 % changed on
#                              each side and the idle daemon (BENCH_IDLE_SECS=600)
#
# Every figure is printed beside a baseline measured in the same run. The
# emulator and dcsync share this machine's cores, so the dcsync wall times
# include waiting for the emulator.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
FILES=${BENCH_FILES:-10000}
RSS_SIZES=${BENCH_RSS_SIZES:-"100000 200000"}
HASH_MIB=${BENCH_HASH_MIB:-1024}
REPEAT=${BENCH_REPEAT:-3}
TIMEOUT=${BENCH_TIMEOUT:-3600}
DATA=${BENCH_DATA:-$HERE/data}
BUILD=${BENCH_BUILD:-1}
# 64-character API keys, as the real product requires.
KEY=$(printf 'b%.0s' {1..64})

EMU_PID=""
EMU_URL=""
RESULTS=""   # markdown rows collected during the run

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- setup

# Checks the tools the benchmarks use; installs GNU time / openssl with
# apt-get when missing (as root), else says what to install.
need_tools() {
    local missing=()
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v openssl >/dev/null || missing+=(openssl)
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            log "installing missing packages with apt-get: ${missing[*]}"
            apt-get install -y "${missing[@]}" >/dev/null
        else
            die "missing: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})"
        fi
    fi
    command -v python3 >/dev/null || die "python3 is needed to generate the trees"
    command -v timeout >/dev/null || die "coreutils timeout is needed"
}

# Builds the release binaries and copies them to $DATA/bin, so that a
# rebuild by someone else during the run cannot swap them underneath us.
prepare_binaries() {
    if [[ $BUILD == 1 ]]; then
        log "building release binaries (waits for cargo's lock if another build runs)"
        (cd "$REPO" && cargo build --release -q -p dcsync -p dcsync-emulator)
    fi
    mkdir -p "$DATA/bin"
    cp "$REPO/target/release/dcsync" "$REPO/target/release/dcsync-emulator" "$DATA/bin/"
    DCSYNC=$DATA/bin/dcsync
    EMULATOR=$DATA/bin/dcsync-emulator
    COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
    if [[ -n $(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock emulator migrations) ]]; then
        COMMIT="$COMMIT (+ uncommitted changes)"
    fi
}

# Generates the tree of $1 files once (reused by later runs); prints its path.
tree_for() {
    local n=$1 root="$DATA/trees/files-$1"
    if [[ ! -d $root ]]; then
        log "generating $n files in $((n / 100 > 0 ? n / 100 : 1)) folders under $root"
        mkdir -p "$DATA/trees"
        python3 "$HERE/gen_tree.py" "$root" "$n"
    fi
    printf '%s\n' "$root"
}

# ---------------------------------------------------------------- emulator

# Starts a fresh release emulator on a free loopback port with its state in
# $1 (wiped first); sets EMU_PID and EMU_URL.
start_emulator() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir"
    "$EMULATOR" --listen 127.0.0.1:0 --data "$dir/state" --key1 "$KEY" --key2 "$KEY" \
        >"$dir/stdout" 2>"$dir/stderr" &
    EMU_PID=$!
    local i
    for i in $(seq 100); do
        EMU_URL=$(head -n1 "$dir/stdout" 2>/dev/null | sed -n 's/^listening on //p')
        [[ -n $EMU_URL ]] && break
        kill -0 "$EMU_PID" 2>/dev/null || die "emulator exited: $(cat "$dir/stderr")"
        sleep 0.1
    done
    [[ -n $EMU_URL ]] || die "emulator printed no URL within 10 s"
    log "emulator pid $EMU_PID at $EMU_URL"
}

stop_emulator() {
    if [[ -n $EMU_PID ]]; then
        kill "$EMU_PID" 2>/dev/null || true
        wait "$EMU_PID" 2>/dev/null || true
        EMU_PID=""
    fi
}
trap stop_emulator EXIT
trap 'exit 130' INT TERM

# CPU seconds (user+sys) the emulator has used so far.
emu_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$EMU_PID/stat"
}

# Writes a dcsync config: $1 file, $2 local tree, $3 remote path, $4 state dir.
write_config() {
    cat >"$1" <<EOF
api_url = "$EMU_URL"
key1 = "$KEY"
key2 = "$KEY"
local_path = "$2"
remote_path = "$3"
state_dir = "$4"
max_requests_per_second = 100000
transfers = 8
EOF
    chmod 600 "$1"
    # What `dcsync init` does for the folder: make it a sync root.
    mkdir -p "$2/.dcsync"
}

# ---------------------------------------------------------------- timing

# Runs a command under GNU time (bounded by BENCH_TIMEOUT) with stdout to
# $OUT; sets T_WALL (s, from the shell clock), T_CPU (user+sys s) and T_RSS (KiB).
OUT=/dev/null
timed() {
    local tf
    tf=$(mktemp)
    local t0=$EPOCHREALTIME
    if ! /usr/bin/time -o "$tf" -f '%U %S %M' timeout "$TIMEOUT" "$@" >"$OUT"; then
        die "failed or timed out after ${TIMEOUT}s: $* ($(head -n1 "$tf"); output in $OUT)"
    fi
    local t1=$EPOCHREALTIME
    T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    read -r u s T_RSS < <(tail -n1 "$tf")
    T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    rm -f "$tf"
}

# Median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { RESULTS+="| $1 | $2 | $3 | $4 |"$'\n'; printf '  %-44s %-28s %-34s %s\n' "$1" "$2" "$3" "$4" >&2; }

# Field of the `dcsync sync` summary line in $OUT, e.g. `summary "API calls"`.
summary() { tail -n1 "$OUT" | sed -n "s/.* \([0-9.]*\) $1.*/\1/p"; }

# ---------------------------------------------------------------- benchmarks

# 1. Initial upload of the tree ($1 files) into a fresh emulator, beside
#    `cp -r` of the same tree (local copy speed). Leaves the emulator running
#    and the pair synced; sets CFG.
bench_upload() {
    local n=$1 tree run
    tree=$(tree_for "$n")
    run="$DATA/run-$n"
    rm -rf "$tree/.dcsync" "$run"
    mkdir -p "$run"

    log "baseline: cp -r of the $n-file tree (page cache warm: find/cat ran first)"
    find "$tree" -type f -exec cat {} + >/dev/null
    timed cp -r "$tree" "$run/copy"
    local cp_wall=$T_WALL
    rm -rf "$run/copy"

    start_emulator "$run/emu"
    CFG=$run/config.toml
    write_config "$CFG" "$tree" /bench "$run/state"
    log "initial upload of $n files (dcsync sync, transfers = 8)"
    OUT=$run/upload.out
    local e0 e1
    e0=$(emu_cpu)
    timed "$DCSYNC" --config "$CFG" sync
    e1=$(emu_cpu)
    grep -q '^in sync:' <(tail -n1 "$OUT") || die "upload did not converge: $(tail -n1 "$OUT")"
    local up
    up=$(summary uploaded)
    [[ $up == "$n" ]] || die "expected $n uploads, got $up"
    row "initial upload, $n files: wall" "${T_WALL} s ($(ratio "$n" "$T_WALL") files/s)" \
        "cp -r (local copy): ${cp_wall} s ($(ratio "$n" "$cp_wall") files/s)" \
        "$(ratio "$T_WALL" "$cp_wall")× cp"
    row "initial upload: client CPU / peak RSS" "${T_CPU} s / $((T_RSS / 1024)) MiB" \
        "emulator CPU: $(awk -v a="$e0" -v b="$e1" 'BEGIN { printf "%.1f", b - a }') s" \
        "$(summary "API calls") API calls"
}

# 2. No-change pass over the synced tree of $1 files, beside `find`.
#    Sets NC_RSS (KiB, median pass).
bench_nochange() {
    local n=$1 tree
    tree=$(tree_for "$n")
    OUT=$DATA/run-$n/nochange.out
    log "no-change passes: 1 warm-up + $REPEAT measured"
    # The first pass after the upload is reported on its own line: it is
    # what a user sees first, and it may do one-off work (e.g. WAL checkpoint).
    timed "$DCSYNC" --config "$CFG" sync
    row "first no-change pass after the upload (warm-up)" "${T_WALL} s, CPU ${T_CPU} s" \
        "(not a baseline)" "$(summary "API calls") API calls"
    local walls=() cpus=() rsss=() calls="" emus=() i e0 e1
    for ((i = 0; i < REPEAT; i++)); do
        e0=$(emu_cpu)
        timed "$DCSYNC" --config "$CFG" sync
        e1=$(emu_cpu)
        tail -n1 "$OUT" | grep -q '^in sync: 0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted' ||
            die "not a no-change pass: $(tail -n1 "$OUT")"
        walls+=("$T_WALL") cpus+=("$T_CPU") rsss+=("$T_RSS") emus+=("$(awk -v a="$e0" -v b="$e1" 'BEGIN { printf "%.2f", b - a }')")
        calls=$(summary "API calls")
    done
    # The same passes without the quick check (`sync --full`: the three
    # trees in memory, as before it), for the no-regression comparison.
    local xwalls=() xcpus=() xrsss=()
    for ((i = 0; i < REPEAT; i++)); do
        timed "$DCSYNC" --config "$CFG" sync --full
        tail -n1 "$OUT" | grep -q '^in sync: 0 uploaded, 0 downloaded, 0 copied, 0 moved, 0 deleted' ||
            die "not a no-change pass: $(tail -n1 "$OUT")"
        xwalls+=("$T_WALL") xcpus+=("$T_CPU") xrsss+=("$T_RSS")
    done
    local fwalls=()
    for ((i = 0; i < REPEAT; i++)); do
        timed find "$tree" -printf '%s %T@\n'
        fwalls+=("$T_WALL")
    done
    local w c f
    w=$(median "${walls[@]}") c=$(median "${cpus[@]}") f=$(median "${fwalls[@]}")
    NC_RSS=$(median "${rsss[@]}")
    row "no-change pass, $n files: wall (whole pass)" "$w s" "find -printf: $f s" \
        "$(ratio "$w" "$f")× find (target ≤ 1.5× for the local part)"
    row "no-change pass: client CPU (user+sys)" "$c s" "emulator CPU: $(median "${emus[@]}") s" \
        "target ≤ 2 s at 100k files"
    row "no-change pass: peak RSS" "$((NC_RSS / 1024)) MiB" "tracked files: $n" \
        "target ≤ 100 MB at 1M files"
    row "no-change pass: API calls" "$calls" "folders: $((n / 100))" ""
    row "the same, \`sync --full\` (no quick check): wall / CPU / RSS" \
        "$(median "${xwalls[@]}") s / $(median "${xcpus[@]}") s / $(($(median "${xrsss[@]}") / 1024)) MiB" \
        "(the baseline of the quick check)" \
        "CPU $(ratio "$c" "$(median "${xcpus[@]}")")× the full pass"
    # The state database after the passes (each ends with a checkpoint and
    # the vacuum policy of src/state/maintain.rs), beside the tree's paths.
    local db_bytes path_bytes
    db_bytes=$(cat "$DATA/run-$n/state/pairs/"*.db* | wc -c)
    path_bytes=$(cd "$tree" && find . -printf '%P\n' | wc -c)
    row "state database: bytes per tracked file (db + wal)" "$(ratio "$db_bytes" "$n") B ($((db_bytes >> 20)) MiB)" \
        "the tree's paths: $(ratio "$path_bytes" "$n") B per file" ""
}

# 2b. A pass with 1 % of the files changed on each side: locally every file
#     of the first 1 % of folders gets a line more; on the host every file
#     of the next 1 % of folders is replaced (`remote put --overwrite`).
#     Run after bench_nochange (the pair synced). The tree keeps the local
#     edits (1 % of its files one byte longer).
bench_changed() {
    local n=$1 tree run folders k d i stage
    tree=$(tree_for "$n")
    run="$DATA/run-$n"
    folders=$((n / 100 > 0 ? n / 100 : 1))
    k=$((folders / 100 > 0 ? folders / 100 : 1))
    stage=$run/stage
    rm -rf "$stage"
    log "changing 1 %: every file of $k folders locally, of $k other folders on the host"
    for ((i = 0; i < k; i++)); do
        d=$(printf 'd%05d' "$i")
        for f in "$tree/$d"/*.bin; do printf '\n' >>"$f"; done
        d=$(printf 'd%05d' $((i + k)))
        mkdir -p "$stage/$d"
        for f in "$tree/$d"/*.bin; do { cat "$f"; printf 'host\n'; } >"$stage/$d/${f##*/}"; done
        "$DCSYNC" --config "$CFG" -q remote put --overwrite "$stage/$d"/*.bin "/bench/$d" >/dev/null ||
            die "remote put into /bench/$d failed"
    done
    OUT=$run/changed.out
    timed "$DCSYNC" --config "$CFG" sync
    grep -q '^in sync:' <(tail -n1 "$OUT") || die "the changed pass did not converge: $(tail -n1 "$OUT")"
    row "pass with 1 % changed on each side, $n files: wall" "${T_WALL} s" \
        "$(summary uploaded) uploaded, $(summary downloaded) downloaded" "$(summary "API calls") API calls"
    row "pass with 1 % changed: client CPU / peak RSS" "${T_CPU} s / $((T_RSS / 1024)) MiB" "" \
        "target ≤ 100 MB at 1M files"
    rm -rf "$stage"
}

# 2c. `dcsync daemon` over the synced tree of $1 files, idle for
#     BENCH_IDLE_SECS (default 600) after its first pass: API requests a
#     minute (from its /metrics) beside the poll budget, CPU share, peak RSS
#     (VmHWM, the first pass included); then the time until a file put into
#     the synced folder on the host (a folder every poll lists) is local.
bench_daemon_idle() {
    local n=$1 secs=${BENCH_IDLE_SECS:-600} run port cfg pid url
    run="$DATA/run-$n"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cfg=$run/daemon.toml
    cp "$CFG" "$cfg"
    printf 'web_listen = "127.0.0.1:%s"\nmetrics_without_token = true\n' "$port" >>"$cfg"
    chmod 600 "$cfg"
    "$DCSYNC" --config "$cfg" daemon >"$run/daemon.out" 2>"$run/daemon.err" &
    pid=$!
    url="http://127.0.0.1:$port/metrics"
    metric() { curl -sf "$url" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'; }
    log "daemon pid $pid: waiting for its first pass"
    local i passes=0
    for ((i = 0; i < TIMEOUT; i++)); do
        passes=$(metric dcsync_pass_duration_seconds_count 2>/dev/null || echo 0)
        ((passes >= 1)) && break
        kill -0 "$pid" 2>/dev/null || die "daemon exited: $(tail -n3 "$run/daemon.err")"
        sleep 1
    done
    ((passes >= 1)) || die "no pass within ${TIMEOUT}s"
    local r0 c0 r1 c1 hwm
    r0=$(metric dcsync_api_requests_total)
    c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    log "idle for $secs s"
    sleep "$secs"
    r1=$(metric dcsync_api_requests_total)
    c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    local hz rate cpu
    hz=$(getconf CLK_TCK)
    rate=$(awk -v a="$r0" -v b="$r1" -v s="$secs" 'BEGIN { printf "%.1f", (b - a) * 60 / s }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz / s * 100 }')
    # A change on the host in the synced folder itself (listed every poll).
    local hot=$run/hot-$RANDOM.txt t0 seen="" p0 kinds
    p0=$(metric dcsync_pass_duration_seconds_count 2>/dev/null || echo 0)
    echo "hot change" >"$hot"
    t0=$EPOCHREALTIME
    "$DCSYNC" --config "$CFG" -q remote put "$hot" /bench >/dev/null || die "remote put failed"
    for ((i = 0; i < 1200; i++)); do
        if [[ -f $(tree_for "$n")/${hot##*/} ]]; then
            seen=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
            break
        fi
        sleep 0.1
    done
    # The pass that brought it down has ended when the pass count moves.
    for ((i = 0; i < 300; i++)); do
        passes=$(metric dcsync_pass_duration_seconds_count 2>/dev/null || echo 0)
        ((passes > p0)) && break
        sleep 0.1
    done
    kinds=$(curl -sf "$url" | awk '/^dcsync_passes_total\{/ { match($1, /kind="[a-z]+"/); k = substr($1, RSTART + 6, RLENGTH - 7); printf "%s%s %s", sep, $2, k; sep = ", " }')
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
    local sweep
    sweep=$("$DCSYNC" --config "$cfg" status 2>/dev/null | grep -m1 'remote polling' | sed 's/^ *//')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -f "$(tree_for "$n")/${hot##*/}"
    row "daemon idle $secs s, $n files: API requests a minute" "$rate" "poll_budget: 180 a minute" \
        "target ≤ the budget"
    row "daemon idle: CPU / peak RSS (first pass and the change's included)" "${cpu} % of a core / $((hwm / 1024)) MiB" \
        "passes: ${kinds:-none counted}" "targets ≤ 0.5 % / ≤ 100 MB"
    row "daemon: a host change in the synced folder seen after" "${seen:-not within 120} s" \
        "poll_interval 60 s" "target ≤ 62 s; ${sweep:-no sweep status}"
}

# 3. SHA-256 of a new file of HASH_MIB MiB: a `--dry-run` pass over a small
#    synced tree with the new file, minus the same pass without it, beside
#    `openssl dgst -sha256` on the same file. The file is hard-linked into
#    the tree (a new path and a new inode to dcsync), so it is written once.
bench_hash() {
    local dir=$DATA/hash big
    big=$dir/big-${HASH_MIB}MiB.bin
    mkdir -p "$dir"
    if [[ ! -f $big ]]; then
        log "writing a $HASH_MIB MiB random file"
        head -c "$((HASH_MIB << 20))" /dev/urandom >"$big.tmp"
        mv "$big.tmp" "$big"
    fi
    local tree=$dir/tree cfg=$dir/config.toml
    rm -rf "$tree" "$dir/state"
    mkdir -p "$tree"
    local i
    for i in $(seq 10); do head -c 2048 /dev/urandom >"$tree/small-$i.bin"; done
    [[ -n $EMU_PID ]] || start_emulator "$dir/emu"
    write_config "$cfg" "$tree" /bench-hash "$dir/state"
    OUT=$dir/sync.out
    timed "$DCSYNC" --config "$cfg" sync
    grep -q '^in sync:' <(tail -n1 "$OUT") || die "hash tree did not sync: $(tail -n1 "$OUT")"

    log "hashing: warm the page cache, then $REPEAT × (dry-run without, dry-run with, openssl)"
    cat "$big" >/dev/null
    local without=() with=() ossl=() cpu_with=()
    OUT=$dir/dry.out
    for ((i = 0; i < REPEAT; i++)); do
        rm -f "$tree/big.bin"
        timed "$DCSYNC" --config "$cfg" sync --dry-run
        grep -q '0 operations planned' "$OUT" || die "dry run without the file planned work"
        without+=("$T_WALL")
        ln "$big" "$tree/big.bin"
        timed "$DCSYNC" --config "$cfg" sync --dry-run
        grep -q '^upload *big.bin' "$OUT" || die "dry run did not plan the upload of big.bin"
        with+=("$T_WALL") cpu_with+=("$T_CPU")
        OUT=/dev/null
        timed openssl dgst -sha256 "$big"
        ossl+=("$T_WALL")
        OUT=$dir/dry.out
    done
    rm -f "$tree/big.bin"
    local w0 w1 o bytes dc os
    w0=$(median "${without[@]}") w1=$(median "${with[@]}") o=$(median "${ossl[@]}")
    bytes=$((HASH_MIB << 20))
    dc=$(awk -v b="$bytes" -v a="$w1" -v z="$w0" 'BEGIN { printf "%.2f", b / 1e9 / (a - z) }')
    os=$(awk -v b="$bytes" -v t="$o" 'BEGIN { printf "%.2f", b / 1e9 / t }')
    row "SHA-256 of a new $HASH_MIB MiB file" \
        "$dc GB/s ($w1 s − $w0 s dry-run)" "openssl dgst -sha256: $os GB/s ($o s)" \
        "$(ratio "$dc" "$os")× openssl (target ≥ 0.9×)"
}

# Peak RSS of a no-change pass at each size in RSS_SIZES; growth per
# tracked file between the smallest and largest, and a linear
# extrapolation to 1M tracked files (marked as such).
bench_rss() {
    local sizes=($RSS_SIZES) n rss=()
    for n in "${sizes[@]}"; do
        bench_upload "$n"
        bench_nochange "$n"
        rss+=("$NC_RSS")
        if [[ ${BENCH_MORE:-0} == 1 ]]; then
            bench_changed "$n"
            bench_daemon_idle "$n"
        fi
        stop_emulator
        rm -rf "$DATA/run-$n/emu"   # the emulator's copy of the tree is not reused
    done
    if ((${#sizes[@]} >= 2)); then
        local n1=${sizes[0]} n2=${sizes[-1]} r1=${rss[0]} r2=${rss[-1]}
        local slope est
        slope=$(awk -v a="$r1" -v b="$r2" -v x="$n1" -v y="$n2" 'BEGIN { printf "%.3f", (b - a) / (y - x) }')
        est=$(awk -v b="$r2" -v y="$n2" -v s="$slope" 'BEGIN { printf "%.0f", (b + (1000000 - y) * s) / 1024 }')
        row "peak RSS growth, $n1 → $n2 files" "$slope KiB per tracked file" \
            "$((r1 / 1024)) MiB → $((r2 / 1024)) MiB" ""
        row "peak RSS at 1M files (EXTRAPOLATED, linear)" "≈ $est MiB" "" "target ≤ 100 MB"
    fi
}

print_results() {
    local file
    mkdir -p "$DATA/results"
    file=$DATA/results/$(date +%Y%m%d-%H%M%S)-$1.md
    {
        echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $COMMIT; mode: $1"
        echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
        echo
        echo "| measure | dcsync | baseline (same run) | ratio / note |"
        echo "|---|---|---|---|"
        printf '%s' "$RESULTS"
    } | tee "$file"
    log "results written to $file"
}

main() {
    local mode=${1:-all}
    case $mode in
    clean)
        rm -rf "$DATA"
        log "removed $DATA"
        return
        ;;
    all | upload | hash | rss) ;;
    *) die "unknown subcommand $mode (all, upload, hash, rss, clean)" ;;
    esac
    need_tools
    mkdir -p "$DATA"
    prepare_binaries
    case $mode in
    all)
        bench_upload "$FILES"
        bench_nochange "$FILES"
        bench_hash
        ;;
    upload)
        bench_upload "$FILES"
        bench_nochange "$FILES"
        ;;
    hash) bench_hash ;;
    rss) bench_rss ;;
    esac
    stop_emulator
    print_results "$mode"
}

# Run only when executed; bench/daemon.sh sources this file for its helpers.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
