#!/usr/bin/python3
"""Write a tiny, complete, internally consistent llama/qwen2 GGUF model.

    /usr/bin/python3 tests/tools/mkgguf.py OUT.gguf [options]

Options (defaults in brackets; the defaults give a file of about 450 KB):
    --arch llama|qwen2     architecture [llama]
    --seed N               RNG seed for every weight [0]; same seed = same bytes
    --vocab N              vocabulary size [320]; at least 320
    --dim N                embedding length [64]
    --layers N             block count [2]
    --heads N              attention heads [4]; dim must be a multiple
    --kv-heads N           KV heads (GQA) [2]; heads must be a multiple
    --ff N                 feed-forward length [128]
    --ctx N                context length [256]
    --type f32|f16|bf16    matrix encoding [f32]; norms and biases are always F32
    --tokenizer llama|gpt2 tokenizer.ggml.model [llama for --arch llama, gpt2 for qwen2]
    --tied                 omit output.weight (the output reuses token_embd)
    --name NAME            general.name [mkgguf-<arch>]

Metadata written: general.architecture, general.name, general.file_type
(LLAMA_FTYPE: 0 F32, 1 F16, 32 BF16), <arch>.context_length, .embedding_length,
.block_count, .feed_forward_length, .attention.head_count,
.attention.head_count_kv, .attention.layer_norm_rms_epsilon (1e-5 llama, 1e-6
qwen2), .attention.key_length, .attention.value_length, .rope.freq_base (10000
llama, 1e6 qwen2), .rope.dimension_count, tokenizer.ggml.model, .tokens,
.scores, .token_type, .bos_token_id, .eos_token_id, .add_bos_token,
.add_eos_token; for "llama" also .unknown_token_id; for "gpt2" also .merges and
.pre ("llama-bpe" with --arch llama, "qwen2" with --arch qwen2).

Tokenizers: the vocabulary is a real BPE trained on a small built-in English
corpus, so tokenizers can be tested on it.
  llama (SentencePiece): <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258 (type 6),
    then pieces with U+2581 for space, score = -(merge rank); unused fillers.
  gpt2 (byte-level BPE): the 256 byte symbols of GPT-2's byte-to-unicode map,
    then merged tokens (merges in rank order), fillers, then the special tokens
    (type 3) at the end of the vocabulary: llama-bpe <|begin_of_text|> (BOS),
    <|end_of_text|> (EOS), <|eot_id|>; qwen2 <|endoftext|> (BOS/EOS),
    <|im_start|>, <|im_end|>.

Tensors (numpy shape (rows, cols) = GGUF ne (cols, rows)): token_embd.weight
(vocab x dim), per layer blk.N.attn_norm, attn_q, attn_k, attn_v, attn_output,
ffn_norm, ffn_gate, ffn_up, ffn_down .weight (+ attn_q/k/v .bias for qwen2),
output_norm.weight, output.weight (unless --tied). Matrices are N(0, 1/n_in).

Also importable: build_model(**same options as keyword args) returns a
gguf_writer.GGUFWriter, and build_vocab(kind, n, arch) returns
(tokens, scores, types, merges, bos, eos).
"""

import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import (GGML_BF16, GGML_F16, GGML_F32, GGUF_FLOAT32,  # noqa: E402
                         GGUF_INT32, GGUF_STRING, GGUFWriter)

CORPUS = """
The quick brown fox jumps over the lazy dog. Why is the sky blue? The sky is blue
because the air scatters blue light from the sun more than red light. Hello world!
Hello, how are you today? I am fine, thank you. Once upon a time there was a little
model that could count: one, two, three, four, five, six, seven, eight, nine, ten.
Machines share models with their peers so that every request finds a warm node.
The cat sat on the mat and the dog sat on the log. What is the capital of France?
Paris is the capital of France. Tell me a story about a robot who learns to sing.
The robot sang a song about the stars, the moon and the sea. Numbers like 42, 1234
and 2026 appear in text too. It's a test; don't worry, we'll see what they've done.
"""

TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER, TYPE_UNUSED, TYPE_BYTE = 1, 2, 3, 4, 5, 6


def gpt2_byte_map():
    """GPT-2's byte -> printable unicode character map."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    chars = list(keep)
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def train_bpe(words, n_merges):
    """Greedy BPE over word counts; returns the merge list [(a, b), ...]."""
    seqs = {tuple(w): c for w, c in words.items()}
    merges = []
    while len(merges) < n_merges:
        pairs = {}
        for s, c in seqs.items():
            for i in range(len(s) - 1):
                pairs[(s[i], s[i + 1])] = pairs.get((s[i], s[i + 1]), 0) + c
        if not pairs:
            break
        # ties broken by the pair itself so the result is deterministic
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for s, c in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        seqs = new
    return merges


def build_vocab(kind, n, arch):
    """Returns (tokens, scores, types, merges or None, bos_id, eos_id)."""
    if n < 320:
        raise ValueError("--vocab must be at least 320")
    text = " ".join(CORPUS.split())
    if kind == "llama":
        tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
        types = [TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL] + [TYPE_BYTE] * 256
        words = {}
        for w in re.findall(r"\S+", text):
            w = "\u2581" + w
            words[w] = words.get(w, 0) + 1
        chars = sorted({ch for w in words for ch in w})
        seen = set(tokens)
        normal = [c for c in chars if c not in seen]
        room = n - len(tokens) - len(normal)
        if room < 0:
            raise ValueError("--vocab too small for the base characters")
        for a, b in train_bpe(words, room):
            if a + b not in seen and a + b not in normal:
                normal.append(a + b)
        # characters score below every merge; merges in rank order
        scores = [0.0] * len(tokens)
        for i, t in enumerate(normal):
            scores.append(-1000.0 - i if len(t) == 1 else -float(i))
        tokens += normal
        types += [TYPE_NORMAL] * len(normal)
        i = 0
        while len(tokens) < n:
            tokens.append("<unused%d>" % i)
            types.append(TYPE_UNUSED)
            scores.append(-1e9)
            i += 1
        return tokens, scores, types, None, 1, 2

    if kind != "gpt2":
        raise ValueError("unknown tokenizer %r" % kind)
    bm = gpt2_byte_map()
    if arch == "qwen2":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tokens = [bm[b] for b in range(256)]
    words = {}
    for w in re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+", text):
        m = "".join(bm[b] for b in w.encode("utf-8"))
        words[m] = words.get(m, 0) + 1
    room = n - len(tokens) - len(specials)
    merges = []
    seen = set(tokens)
    for a, b in train_bpe(words, room):
        if a + b in seen:
            continue
        seen.add(a + b)
        tokens.append(a + b)
        merges.append("%s %s" % (a, b))
    i = 0
    while len(tokens) < n - len(specials):
        tokens.append("<unused%d>" % i)
        i += 1
    types = [TYPE_NORMAL] * len(tokens) + [TYPE_CONTROL] * len(specials)
    for i, t in enumerate(tokens):
        if t.startswith("<unused"):
            types[i] = TYPE_UNUSED
    base = len(tokens)
    tokens += specials
    scores = [0.0] * len(tokens)
    bos = base
    eos = base if arch == "qwen2" else base + 1
    return tokens, scores, types, merges, bos, eos


def build_model(arch="llama", seed=0, vocab=320, dim=64, layers=2, heads=4, kv_heads=2,
                ff=128, ctx=256, type="f32", tokenizer=None, tied=False, name=None):
    if arch not in ("llama", "qwen2"):
        raise ValueError("--arch must be llama or qwen2")
    if dim % heads or heads % kv_heads or (dim // heads) % 2:
        raise ValueError("dim must be a multiple of heads (even head size), heads of kv-heads")
    tokenizer = tokenizer or ("llama" if arch == "llama" else "gpt2")
    ttype, ftype = {"f32": (GGML_F32, 0), "f16": (GGML_F16, 1), "bf16": (GGML_BF16, 32)}[type]
    hd = dim // heads
    rng = np.random.default_rng(seed)
    w = GGUFWriter()
    w.add_string("general.architecture", arch)
    w.add_string("general.name", name or "mkgguf-" + arch)
    w.add_uint32("general.file_type", ftype)
    a = arch + "."
    w.add_uint32(a + "context_length", ctx)
    w.add_uint32(a + "embedding_length", dim)
    w.add_uint32(a + "block_count", layers)
    w.add_uint32(a + "feed_forward_length", ff)
    w.add_uint32(a + "attention.head_count", heads)
    w.add_uint32(a + "attention.head_count_kv", kv_heads)
    w.add_uint32(a + "attention.key_length", hd)
    w.add_uint32(a + "attention.value_length", hd)
    w.add_float32(a + "attention.layer_norm_rms_epsilon", 1e-5 if arch == "llama" else 1e-6)
    w.add_float32(a + "rope.freq_base", 10000.0 if arch == "llama" else 1000000.0)
    w.add_uint32(a + "rope.dimension_count", hd)

    tokens, scores, types, merges, bos, eos = build_vocab(tokenizer, vocab, arch)
    w.add_string("tokenizer.ggml.model", tokenizer)
    if tokenizer == "gpt2":
        w.add_string("tokenizer.ggml.pre", "qwen2" if arch == "qwen2" else "llama-bpe")
    w.add_array("tokenizer.ggml.tokens", tokens, GGUF_STRING)
    w.add_array("tokenizer.ggml.scores", scores, GGUF_FLOAT32)
    w.add_array("tokenizer.ggml.token_type", types, GGUF_INT32)
    if merges is not None:
        w.add_array("tokenizer.ggml.merges", merges, GGUF_STRING)
    else:
        w.add_uint32("tokenizer.ggml.unknown_token_id", 0)
    w.add_uint32("tokenizer.ggml.bos_token_id", bos)
    w.add_uint32("tokenizer.ggml.eos_token_id", eos)
    w.add_bool("tokenizer.ggml.add_bos_token", arch == "llama")
    w.add_bool("tokenizer.ggml.add_eos_token", False)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(vocab, dim), ttype)
    for i in range(layers):
        p = "blk.%d." % i
        w.add_tensor(p + "attn_norm.weight", norm(), GGML_F32)
        w.add_tensor(p + "attn_q.weight", mat(heads * hd, dim), ttype)
        w.add_tensor(p + "attn_k.weight", mat(kv_heads * hd, dim), ttype)
        w.add_tensor(p + "attn_v.weight", mat(kv_heads * hd, dim), ttype)
        if arch == "qwen2":
            for t, n in (("q", heads), ("k", kv_heads), ("v", kv_heads)):
                b = (0.1 * rng.standard_normal(n * hd)).astype(np.float32)
                w.add_tensor(p + "attn_%s.bias" % t, b, GGML_F32)
        w.add_tensor(p + "attn_output.weight", mat(dim, heads * hd), ttype)
        w.add_tensor(p + "ffn_norm.weight", norm(), GGML_F32)
        w.add_tensor(p + "ffn_gate.weight", mat(ff, dim), ttype)
        w.add_tensor(p + "ffn_up.weight", mat(ff, dim), ttype)
        w.add_tensor(p + "ffn_down.weight", mat(dim, ff), ttype)
    w.add_tensor("output_norm.weight", norm(), GGML_F32)
    if not tied:
        w.add_tensor("output.weight", mat(vocab, dim), ttype)
    return w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--arch", choices=["llama", "qwen2"], default="llama")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=320)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--type", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--tokenizer", choices=["llama", "gpt2"])
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--name")
    o = ap.parse_args(argv)
    try:
        w = build_model(arch=o.arch, seed=o.seed, vocab=o.vocab, dim=o.dim, layers=o.layers,
                        heads=o.heads, kv_heads=o.kv_heads, ff=o.ff, ctx=o.ctx, type=o.type,
                        tokenizer=o.tokenizer, tied=o.tied, name=o.name)
    except ValueError as e:
        print("mkgguf: %s" % e, file=sys.stderr)
        return 2
    n = w.write(o.out)
    print("mkgguf: wrote %s (%d bytes)" % (o.out, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
