"""Minimal GGUF v3 writer for tests (Debian /usr/bin/python3 + numpy only).

Usage:
    import sys; sys.path.insert(0, "<repo>/tests/tools")
    from gguf_writer import GGUFWriter, GGML_F32, GGUF_UINT32
    w = GGUFWriter(alignment=32)            # general.alignment is written
    w.add_string("general.architecture", "llama")  # only when != 32
    w.add_uint32("llama.block_count", 2)
    w.add_array("tokenizer.ggml.tokens", ["a", "b"])           # element type inferred
    w.add_array("tokenizer.ggml.scores", [0.0, -1.0], GGUF_FLOAT32)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))       # F32
    w.add_tensor("x.weight", arr, ggml_type=GGML_F16)                      # F16/BF16
    w.add_raw_tensor("q.weight", raw_block_bytes, GGML_Q8_0, (ne0, ne1))  # quantized
    w.write("out.gguf")          # or w.to_bytes()

Shapes: numpy arrays are given in C order, shape (..., rows, cols); GGUF's
ne[] lists dimensions fastest first, so ne = reversed(shape). For
add_raw_tensor the shape is given directly as ne (ne[0] = row length).
Metadata keeps insertion order; adding the same key or tensor name twice raises
ValueError (GGUF forbids duplicates).
"""

import struct

import numpy as np

GGUF_MAGIC = b"GGUF"

# metadata value types
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16 = 0, 1, 2, 3
GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL = 4, 5, 6, 7
GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR_FMT = {
    GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
    GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
    GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d",
}

# ggml tensor types: id -> (name, block size in elements, bytes per block)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1 = 0, 1, 2, 3
GGML_Q5_0, GGML_Q5_1, GGML_Q8_0, GGML_Q8_1 = 6, 7, 8, 9
GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_Q8_K = 10, 11, 12, 13, 14, 15
GGML_I8, GGML_I16, GGML_I32, GGML_I64, GGML_F64, GGML_BF16 = 24, 25, 26, 27, 28, 30

GGML_TYPES = {
    GGML_F32: ("F32", 1, 4), GGML_F16: ("F16", 1, 2), GGML_Q4_0: ("Q4_0", 32, 18),
    GGML_Q4_1: ("Q4_1", 32, 20), GGML_Q5_0: ("Q5_0", 32, 22), GGML_Q5_1: ("Q5_1", 32, 24),
    GGML_Q8_0: ("Q8_0", 32, 34), GGML_Q8_1: ("Q8_1", 32, 36), GGML_Q2_K: ("Q2_K", 256, 84),
    GGML_Q3_K: ("Q3_K", 256, 110), GGML_Q4_K: ("Q4_K", 256, 144),
    GGML_Q5_K: ("Q5_K", 256, 176), GGML_Q6_K: ("Q6_K", 256, 210),
    GGML_Q8_K: ("Q8_K", 256, 292), GGML_I8: ("I8", 1, 1), GGML_I16: ("I16", 1, 2),
    GGML_I32: ("I32", 1, 4), GGML_I64: ("I64", 1, 8), GGML_F64: ("F64", 1, 8),
    GGML_BF16: ("BF16", 1, 2),
}

# llama.cpp LLAMA_FTYPE values for general.file_type
FTYPE_F32, FTYPE_F16, FTYPE_Q4_0, FTYPE_Q8_0 = 0, 1, 2, 7
FTYPE_Q4_K_M, FTYPE_Q6_K, FTYPE_BF16 = 15, 18, 32


def tensor_nbytes(ggml_type, ne):
    """Bytes of a tensor of ggml_type with dimensions ne (fastest first)."""
    name, block, bsize = GGML_TYPES[ggml_type]
    if ne[0] % block:
        raise ValueError("ne[0]=%d is not a multiple of the %s block size %d"
                         % (ne[0], name, block))
    n = ne[0] // block * bsize
    for d in ne[1:]:
        n *= d
    return n


def f32_to_bf16_bytes(a):
    """Round-to-nearest-even float32 -> bfloat16, as raw little-endian bytes."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(np.ascontiguousarray(a, dtype=np.float32))
    rounded = np.where(nan, (u >> 16) | 0x40, rounded)
    return rounded.astype("<u2").tobytes()


def _pack_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _infer_type(v):
    if isinstance(v, bool):
        return GGUF_BOOL
    if isinstance(v, (int, np.integer)):
        return GGUF_INT64 if v < 0 else GGUF_UINT32 if v < 2**32 else GGUF_UINT64
    if isinstance(v, (float, np.floating)):
        return GGUF_FLOAT32
    if isinstance(v, (str, bytes)):
        return GGUF_STRING
    if isinstance(v, (list, tuple, np.ndarray)):
        return GGUF_ARRAY
    raise TypeError("cannot infer a GGUF type for %r" % (v,))


def _pack_value(vtype, v, elem_type=None):
    if vtype in _SCALAR_FMT:
        return struct.pack(_SCALAR_FMT[vtype], v)
    if vtype == GGUF_STRING:
        return _pack_string(v)
    if vtype == GGUF_ARRAY:
        items = list(v)
        if elem_type is None:
            elem_type = _infer_type(items[0]) if items else GGUF_UINT32
            if elem_type in (GGUF_UINT32, GGUF_UINT64, GGUF_INT64):
                # the whole list decides: negatives need a signed type
                lo, hi = min(items), max(items)
                if lo < 0:
                    elem_type = GGUF_INT32 if lo >= -2**31 and hi < 2**31 else GGUF_INT64
                else:
                    elem_type = GGUF_UINT32 if hi < 2**32 else GGUF_UINT64
        out = [struct.pack("<IQ", elem_type, len(items))]
        if elem_type in _SCALAR_FMT:
            dt = np.dtype(_SCALAR_FMT[elem_type].replace("?", "u1"))
            out.append(np.asarray(items).astype(dt).tobytes())
        else:
            for it in items:
                out.append(_pack_value(elem_type, it))
        return b"".join(out)
    raise ValueError("unknown GGUF value type %r" % (vtype,))


class GGUFWriter:
    """Collects metadata and tensors in memory, then writes one GGUF v3 file."""

    def __init__(self, alignment=32, version=3):
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError("alignment must be a power of two")
        self.alignment = alignment
        self.version = version
        self._kv = []        # (key, packed type+value)
        self._keys = set()
        self._tensors = []   # (name, ne tuple, ggml type, bytes)
        if alignment != 32:
            self.add_uint32("general.alignment", alignment)

    # --- metadata ---------------------------------------------------------
    def add(self, key, vtype, value, elem_type=None):
        """Adds key with an explicit GGUF value type (elem_type for arrays)."""
        if key in self._keys:
            raise ValueError("duplicate metadata key %r" % key)
        self._keys.add(key)
        self._kv.append((key, struct.pack("<I", vtype) + _pack_value(vtype, value, elem_type)))

    def add_uint8(self, k, v): self.add(k, GGUF_UINT8, v)
    def add_int8(self, k, v): self.add(k, GGUF_INT8, v)
    def add_uint16(self, k, v): self.add(k, GGUF_UINT16, v)
    def add_int16(self, k, v): self.add(k, GGUF_INT16, v)
    def add_uint32(self, k, v): self.add(k, GGUF_UINT32, v)
    def add_int32(self, k, v): self.add(k, GGUF_INT32, v)
    def add_uint64(self, k, v): self.add(k, GGUF_UINT64, v)
    def add_int64(self, k, v): self.add(k, GGUF_INT64, v)
    def add_float32(self, k, v): self.add(k, GGUF_FLOAT32, v)
    def add_float64(self, k, v): self.add(k, GGUF_FLOAT64, v)
    def add_bool(self, k, v): self.add(k, GGUF_BOOL, bool(v))
    def add_string(self, k, v): self.add(k, GGUF_STRING, v)

    def add_array(self, key, values, elem_type=None):
        """Array of strings, numbers or (nested) arrays; elem_type inferred
        when omitted: ints -> uint32/uint64, or int32/int64 when any is
        negative; floats -> float32; bools -> bool; str -> string."""
        self.add(key, GGUF_ARRAY, values, elem_type)

    # --- tensors ----------------------------------------------------------
    def add_tensor(self, name, array, ggml_type=None):
        """Adds a numpy array; ggml_type F32 (default for floats), F16, BF16,
        or the integer/F64 types matching the array's dtype."""
        a = np.asarray(array)
        if ggml_type is None:
            ggml_type = {np.dtype(np.float16): GGML_F16, np.dtype(np.float64): GGML_F64,
                         np.dtype(np.int8): GGML_I8, np.dtype(np.int16): GGML_I16,
                         np.dtype(np.int32): GGML_I32, np.dtype(np.int64): GGML_I64,
                         }.get(a.dtype, GGML_F32)
        if ggml_type == GGML_F32:
            raw = a.astype("<f4").tobytes()
        elif ggml_type == GGML_F16:
            raw = a.astype("<f2").tobytes()
        elif ggml_type == GGML_BF16:
            raw = f32_to_bf16_bytes(a)
        elif ggml_type == GGML_F64:
            raw = a.astype("<f8").tobytes()
        elif ggml_type in (GGML_I8, GGML_I16, GGML_I32, GGML_I64):
            raw = a.astype({GGML_I8: "<i1", GGML_I16: "<i2", GGML_I32: "<i4",
                            GGML_I64: "<i8"}[ggml_type]).tobytes()
        else:
            raise ValueError("add_tensor cannot encode type %d; use add_raw_tensor" % ggml_type)
        ne = tuple(reversed(a.shape)) if a.ndim else (1,)
        self.add_raw_tensor(name, raw, ggml_type, ne)

    def add_raw_tensor(self, name, raw, ggml_type, ne):
        """Adds already-encoded bytes (e.g. quantized blocks) with dimensions
        ne (fastest first, at most 4). The length must match type and shape."""
        ne = tuple(int(d) for d in ne)
        if not 1 <= len(ne) <= 4:
            raise ValueError("tensor %r: 1..4 dimensions, got %d" % (name, len(ne)))
        if any(t[0] == name for t in self._tensors):
            raise ValueError("duplicate tensor name %r" % name)
        raw = bytes(raw)
        want = tensor_nbytes(ggml_type, ne)
        if len(raw) != want:
            raise ValueError("tensor %r: %d bytes given, %s %r needs %d"
                             % (name, len(raw), GGML_TYPES[ggml_type][0], ne, want))
        self._tensors.append((name, ne, ggml_type, raw))

    # --- output -----------------------------------------------------------
    def _pad(self, n):
        return (-n) % self.alignment

    def to_bytes(self):
        out = [GGUF_MAGIC, struct.pack("<IQQ", self.version, len(self._tensors), len(self._kv))]
        for key, packed in self._kv:
            out.append(_pack_string(key))
            out.append(packed)
        offset = 0
        offsets = []
        for name, ne, ttype, raw in self._tensors:
            offsets.append(offset)
            offset += len(raw) + self._pad(len(raw))
        for (name, ne, ttype, raw), off in zip(self._tensors, offsets):
            out.append(_pack_string(name))
            out.append(struct.pack("<I", len(ne)))
            out.append(struct.pack("<%dQ" % len(ne), *ne))
            out.append(struct.pack("<IQ", ttype, off))
        head = b"".join(out)
        parts = [head, b"\0" * self._pad(len(head))]
        for i, (name, ne, ttype, raw) in enumerate(self._tensors):
            parts.append(raw)
            # no padding after the last tensor: the file ends with its data
            if i + 1 < len(self._tensors):
                parts.append(b"\0" * self._pad(len(raw)))
        return b"".join(parts)

    def write(self, path):
        data = self.to_bytes()
        with open(path, "wb") as f:
            f.write(data)
        return len(data)
