# Shared by the bench scripts that need one release emulator: copies the
# binaries into $DATA/bin (building them first when BUILD=1) and starts the
# emulator on a free loopback port; sets DCSYNC, EMU_PID and URL. Needs
# REPO, BUILD, BIN_DIR, DATA, KEY and log/die from the caller.
start_bench_emulator() {
    if [[ $BUILD == 1 ]]; then
        log "building release binaries"
        (cd "$REPO" && cargo build --release -q -p dcsync -p dcsync-emulator)
    fi
    rm -rf "$DATA"
    mkdir -p "$DATA/bin" "$DATA/emu"
    cp "$BIN_DIR/dcsync" "$BIN_DIR/dcsync-emulator" "$DATA/bin/"
    DCSYNC=$DATA/bin/dcsync
    "$DATA/bin/dcsync-emulator" --listen 127.0.0.1:0 --data "$DATA/emu/state" \
        --key1 "$KEY" --key2 "$KEY" >"$DATA/emu/stdout" 2>"$DATA/emu/stderr" &
    EMU_PID=$!
    trap 'kill $EMU_PID 2>/dev/null || true' EXIT
    URL=""
    for _ in $(seq 100); do
        URL=$(head -n1 "$DATA/emu/stdout" 2>/dev/null | sed -n 's/^listening on //p')
        [[ -n $URL ]] && break
        kill -0 "$EMU_PID" 2>/dev/null || die "emulator exited: $(cat "$DATA/emu/stderr")"
        sleep 0.1
    done
    [[ -n $URL ]] || die "emulator printed no URL"
}
