#!/usr/bin/python3
"""Independent numpy reference forward pass for llama / qwen2 GGUF models.

    ref_forward.py MODEL.gguf --tokens 1,2,3 --out logits.f32 [--f16-kv]

Writes float32 logits of every position, shape (n_tokens, n_vocab), raw
little-endian, to --out (or prints a summary). Written apart from the C engine:
its own GGUF parser, dequantizers straight from the format description
(shared/spec/gguf.md), and a float64 forward pass with no activation
quantization unless --act-q8. --f16-kv rounds keys and values to float16 as an F16 cache does.
"""

import argparse
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- GGUF parser
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
# type id: (block values, block bytes)
_TYPES = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 6: (32, 22),
          12: (256, 144), 14: (256, 210)}


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n].decode("utf-8", "replace")
        self.o += n
        return s

    def value(self, t):
        if t in _SCALARS:
            return self.take(_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            et = self.take("<I")
            n = self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("bad value type %d" % t)


def load_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.o = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("GGUF version %d" % version)
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        t = r.take("<I")
        off = r.take("<Q")
        infos.append((name, ne, t, off))
    align = meta.get("general.alignment", 32)
    base = (r.o + align - 1) // align * align
    tensors = {}
    types = {}
    for name, ne, t, off in infos:
        types[name] = t
        if t not in _TYPES:
            raise ValueError("unsupported type %d for %s" % (t, name))
        bv, bb = _TYPES[t]
        n = int(np.prod(ne))
        raw = np.frombuffer(data, np.uint8, n // bv * bb, base + off)
        x = dequant(raw, t, n)
        tensors[name] = x.reshape(list(reversed(ne)))
    return meta, tensors, types


# -------------------------------------------------------------- dequantizers
def _f16(b, off):
    """float16 field at byte offset off of each block row b (uint8 [n, size])."""
    return b[:, off:off + 2].copy().view("<f2").astype(np.float64)[:, 0]


def dequant(raw, t, n):
    if t == 0:
        return raw.view("<f4").astype(np.float64)
    if t == 1:
        return raw.view("<f2").astype(np.float64)
    if t == 30:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    bv, bb = _TYPES[t]
    b = raw.reshape(-1, bb)
    if t == 8:  # Q8_0: f16 d, 32 x i8
        q = b[:, 2:].view(np.int8).astype(np.float64)
        return (_f16(b, 0)[:, None] * q).reshape(-1)
    if t == 2:  # Q4_0: f16 d, 16 bytes; low nibbles = 0..15, high = 16..31
        qs = b[:, 2:18]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float64) - 8
        return (_f16(b, 0)[:, None] * q).reshape(-1)
    if t == 6:  # Q5_0: f16 d, u32 qh, 16 bytes
        qh = b[:, 2:6].copy().view("<u4")[:, 0]
        qs = b[:, 6:22]
        bits = ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int64)
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int64) | (bits << 4)
        return (_f16(b, 0)[:, None] * (q - 16)).reshape(-1)
    if t == 12:  # Q4_K
        d, dmin = _f16(b, 0), _f16(b, 2)
        s = b[:, 4:16].astype(np.int64)
        qs = b[:, 16:144]
        out = np.empty((len(b), 256))
        for j in range(8):
            if j < 4:
                sc, m = s[:, j] & 63, s[:, j + 4] & 63
            else:
                sc = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
                m = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
            chunk = qs[:, 32 * (j // 2):32 * (j // 2) + 32]
            q = (chunk & 15) if j % 2 == 0 else (chunk >> 4)
            out[:, 32 * j:32 * j + 32] = (d * sc)[:, None] * q - (dmin * m)[:, None]
        return out.reshape(-1)
    if t == 14:  # Q6_K: ql[128], qh[64], i8 scales[16], f16 d
        ql = b[:, 0:128].astype(np.int64)
        qh = b[:, 128:192].astype(np.int64)
        sc = b[:, 192:208].view(np.int8).astype(np.float64)
        d = _f16(b, 208)
        out = np.empty((len(b), 256))
        for half in range(2):
            L = ql[:, 64 * half:64 * half + 64]
            H = qh[:, 32 * half:32 * half + 32]
            parts = [(L[:, :32] & 15) | ((H & 3) << 4),
                     (L[:, 32:] & 15) | (((H >> 2) & 3) << 4),
                     (L[:, :32] >> 4) | (((H >> 4) & 3) << 4),
                     (L[:, 32:] >> 4) | (((H >> 6) & 3) << 4)]
            for k, q in enumerate(parts):
                for g in range(2):  # 16-value groups
                    idx = 128 * half + 32 * k + 16 * g
                    scale = sc[:, 8 * half + 2 * k + g]
                    out[:, idx:idx + 16] = (d * scale)[:, None] * (q[:, 16 * g:16 * g + 16] - 32)
        return out.reshape(-1)
    raise ValueError("type %d" % t)


# -------------------------------------------------------------- forward pass
def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base, neox, factors):
    """x: (n_tok, n_heads, head_dim); rotates the first n_rot dims."""
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    if factors is not None:
        inv = inv / factors
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        y[..., :half] = a * c - b * s
        y[..., half:n_rot] = a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        y[..., 0:n_rot:2] = a * c - b * s
        y[..., 1:n_rot:2] = a * s + b * c
    return y


def act_q8(x, block, f16_scale):
    """Rounds activations to 8 bits per block of `block` values with scale
    amax/127, as engines do before an integer dot product."""
    b = x.reshape(-1, block)
    d32 = (np.abs(b).max(axis=1, keepdims=True) / 127.0).astype(np.float32)
    # the codes come from the exact scale, the stored scale may be rounded
    inv = np.where(d32 > 0, np.float32(1) / np.where(d32 > 0, d32, 1), 0).astype(np.float32)
    q = np.rint(b.astype(np.float32) * inv)
    d = d32.astype(np.float16) if f16_scale else d32
    return (q * d.astype(np.float64)).reshape(x.shape)


def forward(meta, T, tokens, f16_kv=False, types=None):
    """types: tensor name -> ggml type; when given, activations entering a
    quantized matmul are rounded to 8 bits (blocks of 32 with an f16 scale for
    Q8_0/Q4_0/Q5_0, of 256 with an f32 scale for the K-quants)."""
    def mm(x, name):
        t = types.get(name) if types else None
        if t in (8, 2, 6):
            x = act_q8(x, 32, True)
        elif t in (12, 14):
            x = act_q8(x, 256, False)
        return x @ T[name].T

    arch = meta["general.architecture"]
    p = arch + "."
    n_embd = meta[p + "embedding_length"]
    n_layer = meta[p + "block_count"]
    n_head = meta[p + "attention.head_count"]
    n_kv = meta.get(p + "attention.head_count_kv", n_head)
    hd = meta.get(p + "attention.key_length", n_embd // n_head)
    n_rot = meta.get(p + "rope.dimension_count", hd)
    eps = meta.get(p + "attention.layer_norm_rms_epsilon", 1e-5)
    base = meta.get(p + "rope.freq_base", 10000.0)
    neox = arch == "qwen2"
    factors = T.get("rope_freqs.weight")
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)
    x = T["token_embd.weight"][np.asarray(tokens)]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(n_layer):
        b = "blk.%d." % i
        h = rmsnorm(x, T[b + "attn_norm.weight"], eps)
        q = mm(h, b + "attn_q.weight")
        k = mm(h, b + "attn_k.weight")
        v = mm(h, b + "attn_v.weight")
        if b + "attn_q.bias" in T:
            q = q + T[b + "attn_q.bias"]
            k = k + T[b + "attn_k.bias"]
            v = v + T[b + "attn_v.bias"]
        q = rope(q.reshape(n, n_head, hd), pos, n_rot, base, neox, factors)
        k = rope(k.reshape(n, n_kv, hd), pos, n_rot, base, neox, factors)
        v = v.reshape(n, n_kv, hd)
        if f16_kv:
            k = k.astype(np.float16).astype(np.float64)
            v = v.astype(np.float16).astype(np.float64)
        out = np.empty((n, n_head, hd))
        for hh in range(n_head):
            kv = hh // (n_head // n_kv)
            s = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, hh, :] = s @ v[:, kv, :]
        x = x + mm(out.reshape(n, n_head * hd), b + "attn_output.weight")
        g = rmsnorm(x, T[b + "ffn_norm.weight"], eps)
        a = mm(g, b + "ffn_gate.weight")
        u = mm(g, b + "ffn_up.weight")
        x = x + mm(a / (1 + np.exp(-a)) * u, b + "ffn_down.weight")
    x = rmsnorm(x, T["output_norm.weight"], eps)
    return mm(x, "output.weight" if "output.weight" in T else "token_embd.weight")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out")
    ap.add_argument("--f16-kv", action="store_true")
    ap.add_argument("--act-q8", action="store_true",
                    help="round activations of quantized matmuls to 8 bits")
    args = ap.parse_args(argv)
    meta, T, types = load_gguf(args.model)
    tokens = [int(t) for t in args.tokens.split(",")]
    logits = forward(meta, T, tokens, args.f16_kv, types if args.act_q8 else None).astype("<f4")
    if args.out:
        logits.tofile(args.out)
    else:
        print("logits", logits.shape, "argmax", logits.argmax(axis=1).tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
