# Shared by bench/one-folder.sh and bench/upload-pair.sh (sourced, not run):
# a fresh release emulator and a dcsync config for one local tree.
#
#   start_pair DIR TREE REMOTE   starts bench/data/bin/dcsync-emulator with its
#                                state in DIR/emu (wiped first), sets EPID and
#                                writes DIR/cfg.toml syncing TREE with REMOTE
#   stop_pair                    stops that emulator (also on exit)

PAIR_KEY=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
PAIR_EMU=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/data/bin/dcsync-emulator
EPID=
[[ -x $PAIR_EMU ]] || { echo "no emulator at $PAIR_EMU: run bench/run.sh first" >&2; exit 1; }

stop_pair() {
    if [[ -n $EPID ]]; then
        kill "$EPID" 2>/dev/null || true
        wait "$EPID" 2>/dev/null || true
        EPID=
    fi
}
trap stop_pair EXIT

start_pair() {
    local dir=$1 tree=$2 remote=$3 url=
    stop_pair
    rm -rf "$dir/emu"
    mkdir -p "$dir/emu" "$tree/.dcsync"
    "$PAIR_EMU" --listen 127.0.0.1:0 --data "$dir/emu/state" --key1 "$PAIR_KEY" --key2 "$PAIR_KEY" \
        >"$dir/emu.out" 2>"$dir/emu.err" &
    EPID=$!
    for _ in $(seq 100); do
        url=$(head -n1 "$dir/emu.out" 2>/dev/null | sed -n 's/^listening on //p')
        [[ -n $url ]] && break
        sleep 0.1
    done
    [[ -n $url ]] || { echo "the emulator printed no URL" >&2; exit 1; }
    cat >"$dir/cfg.toml" <<C
api_url = "$url"
key1 = "$PAIR_KEY"
key2 = "$PAIR_KEY"
local_path = "$tree"
remote_path = "$remote"
state_dir = "$dir/state"
max_requests_per_second = 100000
transfers = 8
C
    chmod 600 "$dir/cfg.toml"
}
