#!/usr/bin/python3
"""Converts a Hugging Face tokenizer.json (from the npm reference packages)
into a tokenizer-only GGUF the way llama.cpp's converter lays it out:
tokens in id order, GPT-2 byte-level text, merges as "left right" strings,
token types 1 normal / 3 control (special added tokens) / 4 user-defined.

Usage: make_gguf.py NAME TOKENIZER_JSON OUT_GGUF
NAME selects the family: llama3 (pre llama-bpe, BOS added), qwen3 (pre qwen2)
or llama2 (SentencePiece: tokenizer model "llama", <0xXX> byte tokens, token
scores derived from the merge ranks, since tokenizer.json carries merges where
the original .model file had scores)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from gguf_writer import GGUFWriter, GGUF_FLOAT32, GGUF_INT32  # noqa: E402

FAMILIES = {
    "llama3": {"pre": "llama-bpe", "bos": "<|begin_of_text|>", "eos": "<|eot_id|>",
               "add_bos": True},
    "qwen3": {"pre": "qwen2", "bos": None, "eos": "<|im_end|>", "add_bos": False},
    "llama2": {"pre": None, "bos": "<s>", "eos": "</s>", "add_bos": True},
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in FAMILIES:
        sys.exit("usage: make_gguf.py llama3|qwen3|llama2 TOKENIZER_JSON OUT_GGUF")
    fam = FAMILIES[sys.argv[1]]
    with open(sys.argv[2], encoding="utf-8") as fh:
        tj = json.load(fh)
    model = tj["model"]
    if model["type"] != "BPE":
        sys.exit("only BPE tokenizer.json files are supported")
    vocab = dict(model["vocab"])
    types = {}
    for at in tj.get("added_tokens", []):
        vocab[at["content"]] = at["id"]
        types[at["id"]] = 3 if at.get("special") else 4
    n = max(vocab.values()) + 1
    tokens = ["[PAD%d]" % i for i in range(n)]
    ttypes = [5] * n  # holes stay "unused"
    for text, i in vocab.items():
        tokens[i] = text
        ttypes[i] = types.get(i, 1)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    ids = {t: i for i, t in enumerate(tokens)}

    spm = fam["pre"] is None
    scores = [0.0] * n
    if spm:
        # A token's score is minus the rank of the first merge producing it,
        # so "highest score first" replays the merge order.
        merged = {}
        for rank, m in enumerate(merges):
            a, b = m.split(" ", 1)
            merged.setdefault(a + b, rank)
        for i, t in enumerate(tokens):
            scores[i] = -float(merged.get(t, 1e9))
            if ttypes[i] == 1 and len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                ttypes[i] = 6
        ttypes[ids["<unk>"]] = 2

    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", "tokenizer-" + sys.argv[1])
    w.add_string("tokenizer.ggml.model", "llama" if spm else "gpt2")
    if not spm:
        w.add_string("tokenizer.ggml.pre", fam["pre"])
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.token_type", ttypes, GGUF_INT32)
    w.add_array("tokenizer.ggml.scores", scores, GGUF_FLOAT32)
    if spm:
        w.add_uint32("tokenizer.ggml.unknown_token_id", ids["<unk>"])
    else:
        w.add_array("tokenizer.ggml.merges", merges)
    if fam["bos"]:
        w.add_uint32("tokenizer.ggml.bos_token_id", ids[fam["bos"]])
    w.add_uint32("tokenizer.ggml.eos_token_id", ids[fam["eos"]])
    w.add_bool("tokenizer.ggml.add_bos_token", fam["add_bos"])
    w.write(sys.argv[3])


if __name__ == "__main__":
    main()
