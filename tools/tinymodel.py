# Shared building blocks for runnel's test-model tools: seeded tensors, dtype conversion, GGML
# Q8_0/Q4_0 quantization, safetensors and GGUF (v3) writers, and the Llama Q/K row permutation.
# Pure numpy + stdlib. Invariant: a tensor's float32 values depend only on (seed, HF tensor name).
import hashlib
import json
import struct

import numpy as np

# ---------------------------------------------------------------------------------------------
# Seeded values


def tensor_rng(seed, name):
    """A PRNG for one tensor, seeded by sha256(seed, name), independent of format and dtype."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ---------------------------------------------------------------------------------------------
# Dtypes


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16, returned as uint16 bit patterns."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_dtype(x, dtype):
    """The float32 values x takes after storage as dtype (f32, f16, bf16)."""
    if dtype == "f32":
        return x.astype(np.float32)
    if dtype == "f16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x))
    raise ValueError(dtype)


# ---------------------------------------------------------------------------------------------
# GGML block quantization (reference layouts of ggml-quants.c, computed in float32)

QK = 32


def quantize_q8_0(x):
    """x: float32 [rows, cols], cols % 32 == 0 -> bytes; block = f16 d, 32 x int8."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = x * inv[:, None]
    a = np.abs(v)
    r = np.floor(a)
    r = np.where(a - r >= np.float32(0.5), r + 1, r)  # roundf: halves away from zero, exactly
    q = (np.sign(v) * r).astype(np.int8)
    out = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK,))])
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out.tobytes()


def dequantize_q8_0(data, n):
    blocks = np.frombuffer(data, dtype=[("d", "<f2"), ("qs", "i1", (QK,))], count=n // QK)
    return (blocks["d"].astype(np.float32)[:, None] * blocks["qs"].astype(np.float32)).reshape(-1)


def quantize_q4_0(x):
    """x: float32 [rows, cols], cols % 32 == 0 -> bytes; block = f16 d, 16 bytes of nibbles.
    d = (value of largest magnitude) / -8; q = min(15, trunc(x/d + 8.5)); element j goes to the
    low nibble of byte j, element j+16 to its high nibble."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    idx = np.argmax(np.abs(x), axis=1)  # first index of the largest |x|, as ggml's strict '<' scan
    mx = x[np.arange(x.shape[0]), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = x * inv[:, None] + np.float32(8.5)
    q = np.minimum(np.float32(15), np.trunc(v)).astype(np.uint8)
    out = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "u1", (QK // 2,))])
    out["d"] = d.astype(np.float16)
    out["qs"] = q[:, : QK // 2] | (q[:, QK // 2 :] << 4)
    return out.tobytes()


def dequantize_q4_0(data, n):
    blocks = np.frombuffer(data, dtype=[("d", "<f2"), ("qs", "u1", (QK // 2,))], count=n // QK)
    lo = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    hi = (blocks["qs"] >> 4).astype(np.float32) - 8
    q = np.concatenate([lo, hi], axis=1)
    return (blocks["d"].astype(np.float32)[:, None] * q).reshape(-1)


# ---------------------------------------------------------------------------------------------
# Llama Q/K permutation (HF rotate-half layout -> GGUF interleaved-pair layout)


def permute_qk(w, n_head):
    """Rows of each head go from [first halves..., second halves...] to (x0,x_half), (x1,...) pairs."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w, n_head):
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---------------------------------------------------------------------------------------------
# safetensors


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype in F32/F16/BF16, shape, raw bytes)."""
    header = {}
    offset = 0
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    header["__metadata__"] = metadata or {"format": "pt"}
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for _, _, _, raw in tensors:
            f.write(raw)


def tensor_bytes_for_safetensors(x, dtype):
    if dtype == "f32":
        return "F32", np.ascontiguousarray(x, dtype="<f4").tobytes()
    if dtype == "f16":
        return "F16", np.ascontiguousarray(x.astype("<f2")).tobytes()
    if dtype == "bf16":
        return "BF16", f32_to_bf16_bits(x).astype("<u2").tobytes()
    raise ValueError(dtype)


# ---------------------------------------------------------------------------------------------
# GGUF v3

GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32 = 0, 1, 2, 3, 4, 5
GGUF_FLOAT32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = (
    6, 7, 8, 9, 10, 11, 12)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
GGML_TYPE_OF = {"f32": GGML_F32, "f16": GGML_F16, "q4_0": GGML_Q4_0, "q8_0": GGML_Q8_0,
                "bf16": GGML_BF16}
# llama_ftype values of general.file_type
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}

_SCALAR_FMT = {GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
               GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
               GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d"}


def _gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _gguf_value(vtype, value):
    if vtype == GGUF_STRING:
        return _gguf_str(value)
    return struct.pack(_SCALAR_FMT[vtype], value)


class GGUFWriter:
    """Collects metadata (key, type, value) and tensors, then writes a GGUF v3 file."""

    def __init__(self, alignment=32):
        self.kv = []
        self.tensors = []  # (name, ne (ggml order), ggml type, bytes)
        self.alignment = alignment

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def add_array(self, key, elem_type, values):
        self.kv.append((key, GGUF_ARRAY, (elem_type, list(values))))

    def add_tensor(self, name, shape, ggml_type, raw):
        """shape: numpy (row-major) shape; GGUF stores it reversed (ne0 = innermost)."""
        self.tensors.append((name, list(reversed(shape)), ggml_type, raw))

    def write(self, path):
        out = bytearray()
        out += b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value in self.kv:
            out += _gguf_str(key) + struct.pack("<I", vtype)
            if vtype == GGUF_ARRAY:
                et, items = value
                out += struct.pack("<IQ", et, len(items))
                for it in items:
                    out += _gguf_value(et, it)
            else:
                out += _gguf_value(vtype, value)
        offset = 0
        offsets = []
        for name, ne, gt, raw in self.tensors:
            offsets.append(offset)
            out += _gguf_str(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", n) for n in ne)
            out += struct.pack("<IQ", gt, offset)
            offset += len(raw)
            offset += (-offset) % self.alignment
        out += b"\0" * ((-len(out)) % self.alignment)
        for (name, ne, gt, raw), off in zip(self.tensors, offsets):
            out += raw
            out += b"\0" * ((-len(raw)) % self.alignment)
        with open(path, "wb") as f:
            f.write(out)
