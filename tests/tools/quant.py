#!/usr/bin/python3
"""numpy quantizers producing raw ggml block bytes, and tiny random models.

    import quant; raw = quant.quantize(x, "q4_k")   # x: float32 (rows, cols)
    w.add_raw_tensor(name, raw, quant.TYPE_ID["q4_k"], (cols, rows))

Types: f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k (cols a multiple of the
block size: 32, or 256 for the K-quants). Quantization is plain max-abs /
min-max rounding; the format, not the best rounding, is what tests need.

Command line (Debian /usr/bin/python3 with numpy):
    quant.py model OUT.gguf [--arch llama|qwen2] [--type T|q4_k_m] [--seed N]
        [--dim 256] [--layers 2] [--heads 4] [--kv-heads 2] [--ff 512]
        [--vocab 384] [--tied] [--rope-freqs]
writes a random model whose matrices (and token_embd) are all of type T;
q4_k_m mixes Q4_K with Q6_K for attn_v, ffn_down and token_embd/output.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

TYPE_ID = {"f32": gw.GGML_F32, "f16": gw.GGML_F16, "bf16": gw.GGML_BF16, "q8_0": gw.GGML_Q8_0,
           "q4_0": gw.GGML_Q4_0, "q5_0": gw.GGML_Q5_0, "q4_k": gw.GGML_Q4_K,
           "q6_k": gw.GGML_Q6_K}
BLOCK = {"f32": 1, "f16": 1, "bf16": 1, "q8_0": 32, "q4_0": 32, "q5_0": 32, "q4_k": 256,
         "q6_k": 256}


def _f16(a):
    return np.asarray(a, np.float32).astype("<f2")


def _blocks(x, n):
    x = np.ascontiguousarray(x, np.float32)
    if x.shape[-1] % n:
        raise ValueError("row length %d is not a multiple of %d" % (x.shape[-1], n))
    return x.reshape(-1, n)


def _safe_inv(d):
    return np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)


def _signed_max(b):
    idx = np.argmax(np.abs(b), axis=1)
    return b[np.arange(len(b)), idx]


def q8_0(x):
    b = _blocks(x, 32)
    d = np.abs(b).max(axis=1) / 127.0
    q = np.rint(b * _safe_inv(d)[:, None]).astype(np.int8)
    out = np.zeros(len(b), dtype=[("d", "<f2"), ("qs", "i1", 32)])
    out["d"] = _f16(d)
    out["qs"] = q
    return out.tobytes()


def q4_0(x):
    b = _blocks(x, 32)
    d = _signed_max(b) / -8.0
    q = np.clip(np.floor(b * _safe_inv(d)[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.zeros(len(b), dtype=[("d", "<f2"), ("qs", "u1", 16)])
    out["d"] = _f16(d)
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def q5_0(x):
    b = _blocks(x, 32)
    d = _signed_max(b) / -16.0
    q = np.clip(np.floor(b * _safe_inv(d)[:, None] + 16.5), 0, 31).astype(np.uint32)
    qh = ((q >> 4) << np.arange(32, dtype=np.uint32)[None, :]).sum(axis=1).astype("<u4")
    out = np.zeros(len(b), dtype=[("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)])
    out["d"] = _f16(d)
    out["qh"] = qh
    out["qs"] = ((q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)).astype(np.uint8)
    return out.tobytes()


def q4_k(x):
    b = _blocks(x, 256)
    n = len(b)
    sub = b.reshape(n, 8, 32)
    lo = np.minimum(sub.min(axis=2), 0)
    hi = sub.max(axis=2)
    scale = (hi - lo) / 15.0
    mins = -lo
    d = scale.max(axis=1) / 63.0
    dmin = mins.max(axis=1) / 63.0
    ls = np.clip(np.rint(scale * _safe_inv(d)[:, None]), 0, 63).astype(np.uint8)
    lm = np.clip(np.rint(mins * _safe_inv(dmin)[:, None]), 0, 63).astype(np.uint8)
    sc = np.zeros((n, 12), np.uint8)
    sc[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    sc[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    sc[:, 8:12] = (ls[:, 4:8] & 15) | ((lm[:, 4:8] & 15) << 4)
    df = _f16(d).astype(np.float32)
    dminf = _f16(dmin).astype(np.float32)
    s = df[:, None] * ls
    m = dminf[:, None] * lm
    q = np.clip(np.rint((sub + m[:, :, None]) * _safe_inv(s)[:, :, None]), 0, 15).astype(np.uint8)
    q = q.reshape(n, 4, 2, 32)  # chunk, low/high nibble, value
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(n, 128)
    out = np.zeros(n, dtype=[("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12),
                             ("qs", "u1", 128)])
    out["d"] = _f16(d)
    out["dmin"] = _f16(dmin)
    out["scales"] = sc
    out["qs"] = qs
    return out.tobytes()


def q6_k(x):
    b = _blocks(x, 256)
    n = len(b)
    g = b.reshape(n, 16, 16)
    scale = np.abs(g).max(axis=2) / 31.0
    d = scale.max(axis=1) / 127.0
    df = _f16(d).astype(np.float32)
    ls = np.clip(np.rint(scale * _safe_inv(df)[:, None]), 0, 127).astype(np.int8)
    s = df[:, None] * ls
    q = np.clip(np.rint(g * _safe_inv(s)[:, :, None]), -32, 31).astype(np.int16) + 32
    q = q.reshape(n, 2, 4, 32).astype(np.uint8)  # half, quarter, l
    ql = np.zeros((n, 2, 64), np.uint8)
    ql[:, :, :32] = (q[:, :, 0] & 15) | ((q[:, :, 2] & 15) << 4)
    ql[:, :, 32:] = (q[:, :, 1] & 15) | ((q[:, :, 3] & 15) << 4)
    qh = ((q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4)
          | ((q[:, :, 3] >> 4) << 6))
    out = np.zeros(n, dtype=[("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16),
                             ("d", "<f2")])
    out["ql"] = ql.reshape(n, 128)
    out["qh"] = qh.reshape(n, 64)
    out["scales"] = ls
    out["d"] = _f16(d)
    return out.tobytes()


def quantize(x, kind):
    """Raw bytes of x (float32, rows x cols) encoded as kind."""
    x = np.ascontiguousarray(x, np.float32)
    if kind == "f32":
        return x.astype("<f4").tobytes()
    if kind == "f16":
        return x.astype("<f2").tobytes()
    if kind == "bf16":
        return gw.f32_to_bf16_bytes(x)
    return {"q8_0": q8_0, "q4_0": q4_0, "q5_0": q5_0, "q4_k": q4_k, "q6_k": q6_k}[kind](x)


def add(w, name, x, kind):
    x = np.asarray(x, np.float32)
    ne = tuple(reversed(x.shape))
    w.add_raw_tensor(name, quantize(x.reshape(-1, x.shape[-1]), kind), TYPE_ID[kind], ne)


def build_model(arch="llama", kind="q8_0", seed=0, dim=256, layers=2, heads=4, kv_heads=2,
                ff=512, vocab=384, tied=False, rope_freqs=False, bad=None):
    rng = np.random.default_rng(seed)
    hd = dim // heads
    mix = kind == "q4_k_m"
    base = "q4_k" if mix else kind
    w = gw.GGUFWriter()
    a = ("phi3" if bad == "arch" else arch) + "."
    w.add_string("general.architecture", "phi3" if bad == "arch" else arch)
    w.add_string("general.name", "quant-%s-%s" % (arch, kind))
    w.add_uint32(a + "context_length", 512)
    w.add_uint32(a + "embedding_length", dim)
    w.add_uint32(a + "block_count", layers)
    w.add_uint32(a + "feed_forward_length", ff)
    w.add_uint32(a + "attention.head_count", heads)
    w.add_uint32(a + "attention.head_count_kv", kv_heads)
    w.add_float32(a + "attention.layer_norm_rms_epsilon", 1e-5 if arch == "llama" else 1e-6)
    w.add_float32(a + "rope.freq_base", 10000.0 if arch == "llama" else 1000000.0)
    w.add_uint32(a + "rope.dimension_count", hd)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def vec(n, mean, sd):
        return (mean + sd * rng.standard_normal(n)).astype(np.float32)

    add(w, "token_embd.weight", rng.standard_normal((vocab, dim)).astype(np.float32),
        "q6_k" if mix else base)
    if rope_freqs:
        add(w, "rope_freqs.weight", vec(hd // 2, 1.5, 0.5).clip(0.5, 4), "f32")
    for i in range(layers):
        p = "blk.%d." % i
        add(w, p + "attn_norm.weight", vec(dim, 1, 0.1), "f32")
        if bad == "q2_k" and i == 0:  # Q2_K: 84 bytes per 256 values
            w.add_raw_tensor(p + "attn_q.weight", bytes(heads * hd * dim // 256 * 84),
                             gw.GGML_Q2_K, (dim, heads * hd))
        elif bad == "shape" and i == 1:
            add(w, p + "attn_q.weight", mat(heads * hd + 32, dim), base)
        else:
            add(w, p + "attn_q.weight", mat(heads * hd, dim), base)
        add(w, p + "attn_k.weight", mat(kv_heads * hd, dim), base)
        add(w, p + "attn_v.weight", mat(kv_heads * hd, dim), "q6_k" if mix else base)
        if arch == "qwen2":
            add(w, p + "attn_q.bias", vec(heads * hd, 0, 0.2), "f32")
            add(w, p + "attn_k.bias", vec(kv_heads * hd, 0, 0.2), "f32")
            add(w, p + "attn_v.bias", vec(kv_heads * hd, 0, 0.2), "f32")
        add(w, p + "attn_output.weight", mat(dim, heads * hd), base)
        add(w, p + "ffn_norm.weight", vec(dim, 1, 0.1), "f32")
        add(w, p + "ffn_gate.weight", mat(ff, dim), base)
        if not (bad == "missing" and i == 1):
            add(w, p + "ffn_up.weight", mat(ff, dim), base)
        add(w, p + "ffn_down.weight", mat(dim, ff), "q6_k" if mix and i % 2 == 0 else base)
    add(w, "output_norm.weight", vec(dim, 1, 0.1), "f32")
    if not tied:
        add(w, "output.weight", mat(vocab, dim), "q6_k" if mix else base)
    return w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("out")
    m.add_argument("--arch", choices=["llama", "qwen2"], default="llama")
    m.add_argument("--type", default="q8_0", choices=sorted(TYPE_ID) + ["q4_k_m"])
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--dim", type=int, default=256)
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--heads", type=int, default=4)
    m.add_argument("--kv-heads", type=int, default=2)
    m.add_argument("--ff", type=int, default=512)
    m.add_argument("--vocab", type=int, default=384)
    m.add_argument("--tied", action="store_true")
    m.add_argument("--rope-freqs", action="store_true")
    m.add_argument("--bad", choices=["arch", "q2_k", "shape", "missing"],
                   help="write a defective model for loader error tests")
    args = ap.parse_args(argv)
    w = build_model(args.arch, args.type, args.seed, args.dim, args.layers, args.heads,
                    args.kv_heads, args.ff, args.vocab, args.tied, args.rope_freqs, args.bad)
    w.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
