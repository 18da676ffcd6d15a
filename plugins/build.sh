#!/usr/bin/env bash
# Builds every plugin in this workspace as a wasm32-wasip2 component and copies
# the results to plugins/dist/ (where the sandbox tests and the server look).
# Uses its own target subdirectory so it never waits on the main workspace's lock.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/vaani-target}/plugins"

cd "$here"
CARGO_TARGET_DIR="$target_dir" cargo build --release --target wasm32-wasip2 "$@"

mkdir -p "$here/dist"
rm -f "$here/dist/"*.wasm
shopt -s nullglob
built=("$target_dir/wasm32-wasip2/release/"*.wasm)
if [ ${#built[@]} -eq 0 ]; then
    echo "build.sh: no .wasm files in $target_dir/wasm32-wasip2/release" >&2
    exit 1
fi
for wasm in "${built[@]}"; do
    cp "$wasm" "$here/dist/"
done
ls -l "$here/dist/"
