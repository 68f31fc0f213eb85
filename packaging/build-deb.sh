#!/usr/bin/env bash
# Builds the Debian package: target/debian/dcsync_<version>-1_<arch>.deb
#
#   packaging/build-deb.sh [extra cargo-deb options]
#
# 1. builds the release binary,
# 2. writes the generated assets that [package.metadata.deb] in Cargo.toml
#    lists: the man page (target/dcsync.1), the bash/zsh/fish completions
#    (target/completions/) and the user unit with ExecStart=/usr/bin/dcsync
#    (target/packaging/dcsync.service),
# 3. runs `cargo deb --no-build`.
#
# Needs cargo-deb. It is not installed for you: `cargo install cargo-deb`
# once (CI images should have it baked in rather than install it per run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "error: cargo-deb is not installed; install it with: cargo install cargo-deb" >&2
    exit 1
fi

cargo build --release --locked -p dcsync
bin="${CARGO_TARGET_DIR:-target}/release/dcsync"

# Generated assets: the paths are fixed in Cargo.toml, relative to the
# workspace root (not to CARGO_TARGET_DIR).
mkdir -p target/completions target/packaging
"$bin" man > target/dcsync.1
"$bin" completions bash > target/completions/dcsync.bash
"$bin" completions zsh > target/completions/_dcsync
"$bin" completions fish > target/completions/dcsync.fish

# The packaged user unit runs the packaged binary, not ~/.cargo/bin/dcsync.
sed -e 's|^ExecStart=%h/\.cargo/bin/dcsync |ExecStart=/usr/bin/dcsync |' \
    -e 's|^#ExecStart=%h/\.cargo/bin/dcsync |#ExecStart=/usr/bin/dcsync |' \
    packaging/systemd/dcsync.service > target/packaging/dcsync.service
if ! grep -q '^ExecStart=/usr/bin/dcsync daemon$' target/packaging/dcsync.service; then
    echo "error: could not point ExecStart at /usr/bin/dcsync in the user unit" >&2
    exit 1
fi

for f in target/dcsync.1 target/completions/dcsync.bash target/completions/_dcsync \
    target/completions/dcsync.fish; do
    if [ ! -s "$f" ]; then
        echo "error: $f is empty" >&2
        exit 1
    fi
done

cargo deb -p dcsync --no-build "$@"
