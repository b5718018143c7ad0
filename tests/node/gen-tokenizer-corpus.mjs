// gen-tokenizer-corpus.mjs - writes tests/data/tokenizer/corpus.txt, the test corpus of the
// tokenizer reference test (tokenizer-ref.mjs).
//
//   node tests/node/gen-tokenizer-corpus.mjs [OUT]     (default: ../data/tokenizer/corpus.txt)
//
// Format: JSON Lines, one JSON *string* per line, so a corpus line may hold newlines, carriage
// returns, tabs and any other character (written as JSON escapes). The output is a pure function
// of SEED below: run it again and the file is byte for byte the same.
//
// Content: a fixed list of edge cases (contractions in every case, whitespace runs, Unicode
// spaces, combining marks that NFC composes, digits of several scripts, special-token look-alikes)
// followed by generated lines mixing prose, code, numbers, emoji, CJK, Arabic, Hebrew, Devanagari,
// Cyrillic, Greek, Thai, and runs of spaces and newlines.
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const SEED = 20240605;
const N_GENERATED = 2200;

// mulberry32: a small seeded generator (never Math.random, so the corpus is reproducible).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const R = rng(SEED);
const int = (n) => Math.floor(R() * n);
const pick = (a) => a[int(a.length)];
const chance = (p) => R() < p;

const words = ("the of and to in is was for on that with as by at from his her they we you it " +
  "calibration quantization model layer weight activation matrix vector token sequence data " +
  "research paper result table figure experiment baseline accuracy perplexity language small " +
  "large river mountain garden kitchen window yesterday tomorrow quickly slowly beautiful " +
  "strange ordinary international responsibility misunderstanding antidisestablishment " +
  "naïve café résumé coöperate façade jalapeño Zürich São Paulo Kraków Øresund").split(" ");
const contractions = ["don't", "can't", "won't", "it's", "I'm", "you're", "they've", "we'll",
  "she'd", "I'LL", "YOU'RE", "WE'VE", "He'S", "It'D", "I'M", "They'Ll", "o'clock", "rock'n'roll",
  "'tis", "'s", "ma'am", "y'all", "DON'T", "isn't", "'re", "'ve", "'m", "'ll", "'d", "'T"];
const punct = [".", ",", "!", "?", ";", ":", "...", "!!", "?!", " -", " --", " —", "…", ")", "\"",
  "'", "»", "」", "。", "、", "！"];
const cjk = ["你好世界", "我们今天去公园散步", "机器学习模型的量化", "東京は日本の首都です",
  "ひらがなとカタカナ", "コンピューター", "안녕하세요 세계", "한국어 텍스트 토큰화", "中文，标点。",
  "「引用」と『二重』", "漢字かな交じり文", "繁體中文測試"];
const otherScripts = ["مرحبا بالعالم", "اللغة العربية جميلة", "٣٤٥٦ رقم", "שלום עולם",
  "עברית עם ניקוד: שָׁלוֹם", "नमस्ते दुनिया", "हिन्दी भाषा में परीक्षण", "Привет, мир!",
  "Ёжик в тумане", "Γειά σου Κόσμε", "ΑΒΓΔ αβγδ ς", "สวัสดีชาวโลก", "ภาษาไทย", "Türkçe İıŞş",
  "Ελληνικά: ά έ ή", "Tiếng Việt có dấu", "ქართული", "Հայերեն", "አማርኛ", "தமிழ் மொழி"];
const emoji = ["😀", "🎉", "👍", "👍🏽", "🇫🇷", "🇯🇵", "👨‍👩‍👧‍👦", "❤️", "🔥", "1️⃣", "🧑‍💻",
  "☃", "✨", "🏳️‍🌈", "😂😂😂", "🤖", "🍕🍔", "©", "™", "→", "∑", "∞"];
const spaces = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\n   \n",
  "\u00a0", "\u3000", "\u2009", "\u2003", "\u202f", "\u2028", "\u0085", "\u000b", "\u000c",
  "    ", "\n\t", " \r\n\r\n "];
const codeLines = [
  "int main(int argc, char **argv) {", "    return 0;", "}", "\tif (x == NULL) { goto out; }",
  "def f(x):\n    return x ** 2", "for i in range(10):\n\tprint(i)",
  "const y = arr.map((v) => v * 2);", "#include <stdio.h>", "SELECT * FROM jobs WHERE id = 42;",
  "fn main() { println!(\"hi\"); }", "x += 1  # comment", "<div class=\"a\">text</div>",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "$ ls -la /tmp && echo $?",
  "\\begin{equation} E = mc^2 \\end{equation}", "a_b_c = foo__bar(___)", "if(a&&b||!c){}",
  "https://example.com/path?q=1&r=two#frag", "user.name+tag@example.org", "// TODO: fix",
  "/* multi\n * line\n */", "    \n    \n", "s = 'it''s'", "printf(\"%d\\n\", n);",
  "matrix[i][j] = 0.5f * (a[i] - b[j]);", "git commit -m 'fix: don't crash'", "0x7FFF_FFFF",
];

function number() {
  switch (int(9)) {
    case 0: return String(int(10));
    case 1: return String(int(100000));
    case 2: return String(int(1e9)) + String(int(1e9));
    case 3: return (R() * 1000).toFixed(int(5));
    case 4: return `${int(9000) + 1000}-${String(int(12) + 1).padStart(2, "0")}-${String(int(28) + 1).padStart(2, "0")}`;
    case 5: return (int(1e7)).toLocaleString("en-US");
    case 6: return pick(["١٢٣", "٤٥٦٧", "１２３", "²³", "½", "Ⅻ", "①②", "๑๒๓", "१२३४"]);
    case 7: return `+1 (${int(900) + 100}) ${int(900) + 100}-${int(9000) + 1000}`;
    default: return `${int(100)}%`;
  }
}

function word() {
  let w = pick(words);
  const r = R();
  if (r < 0.1) w = w.toUpperCase();
  else if (r < 0.25) w = w[0].toUpperCase() + w.slice(1);
  return w;
}

function prose() {
  const n = 3 + int(14);
  let s = "";
  for (let i = 0; i < n; i++) {
    if (i > 0) s += chance(0.08) ? pick(spaces) : " ";
    const r = R();
    if (r < 0.1) s += pick(contractions);
    else if (r < 0.18) s += number();
    else if (r < 0.22) s += pick(emoji);
    else s += word();
    if (chance(0.12)) s += pick(punct);
  }
  return s;
}

// Combining sequences that NFC composes (or reorders), in decomposed form.
const decomposed = ["e\u0301", "a\u0300", "o\u0308", "n\u0303", "A\u030a", "c\u0327", "u\u0308\u0301",
  "\u1100\u1161\u11a8", "\u1112\u1161\u11ab", "i\u0307", "e\u0323\u0302", "a\u0328\u0301",
  "\u0915\u093c", "\u0627\u0653", "\u05e9\u05c1", "s\u0323\u0307"];
function nfcLine() {
  let s = "";
  const n = 2 + int(6);
  for (let i = 0; i < n; i++) {
    s += (i ? " " : "") + word().slice(0, 4) + pick(decomposed) + word().slice(0, 3);
  }
  return s;
}

function mixed() {
  const parts = [];
  const n = 1 + int(5);
  for (let i = 0; i < n; i++) {
    switch (int(8)) {
      case 0: parts.push(prose()); break;
      case 1: parts.push(pick(cjk)); break;
      case 2: parts.push(pick(otherScripts)); break;
      case 3: parts.push(pick(codeLines)); break;
      case 4: parts.push(pick(emoji).repeat(1 + int(3))); break;
      case 5: parts.push(number()); break;
      case 6: parts.push(nfcLine()); break;
      default: parts.push(pick(spaces).repeat(1 + int(4))); break;
    }
  }
  let s = "";
  for (const p of parts) s += (s && chance(0.7) ? pick([" ", "", "\n", "  ", "\t"]) : "") + p;
  return s;
}

function generated() {
  switch (int(10)) {
    case 0: return pick(codeLines) + (chance(0.5) ? "\n" + pick(codeLines) : "");
    case 1: return pick(cjk) + pick(punct) + pick(cjk);
    case 2: return pick(otherScripts) + " " + number() + " " + pick(otherScripts);
    case 3: return nfcLine();
    case 4: return pick(spaces).repeat(1 + int(6)) + prose() + pick(spaces).repeat(int(4));
    case 5: return Array.from({ length: 3 + int(8) }, () => pick(contractions)).join(pick([" ", "", "  "]));
    case 6: return Array.from({ length: 2 + int(6) }, number).join(pick([" ", ",", ", ", "+", "\n"]));
    default: return mixed();
  }
}

const fixed = [
  "", " ", "  ", "\n", "\n\n\n", "\r\n", "\t", " \t \n ", "a", "I", "'", "''", "'s", "'S",
  "I'LL GO", "i'll go", "We'Re HeRe", "THEY'VE", "she'D", "It'S", "you'M", "o'CLOCK",
  "don't DON'T Don'T dOn'T", "'ll'll'll", "x'sy", "'s's's", "the cat's toy's owner's house",
  "l'homme d'État", "rock 'n' roll", "Hello world", "Hello  world", "Hello   world",
  "Hello\nworld", "Hello\n\nworld", "Hello \n world", "Hello\r\nworld", "Hello\rworld",
  "trailing spaces   ", "   leading spaces", "   ", "\n   \n", "a\u00a0b", "a\u3000b",
  "a\u2009b c\u202fd", "line\u2028sep\u2029para", "nel\u0085here", "zw\u200bsp", "bom\ufeffhere",
  "tab\tsep\tvalues\t", "\u000b\u000c", "ctrl\u0001\u007f\u001f", "12", "123", "1234", "12345",
  "123456789012345678901234567890", "3.14159", "1,000,000", "-42", "1e-9", "0.000001",
  "٣٤٥٦", "１２３４５", "²³⁴", "Ⅻ ⅻ", "①②③", "१२३४५६", "abc123def456", "v1.2.3-rc.4",
  "e\u0301", "cafe\u0301", "Cafe\u0301 na\u0131\u0308ve", "\u1100\u1161\u11a8\u1100\u1161",
  "A\u030a\u0301", "o\u0308\u0304", "\u0041\u0301\u0042\u0301", "ﬁ ﬂ ﬀ", "Ω Ω", "Å Å",
  "😀", "👨‍👩‍👧‍👦", "👍🏽👍🏿", "🇫🇷🇩🇪🇯🇵", "1️⃣2️⃣", "🏳️‍🌈", "a😀b", " 😀 ", "😀😀😀😀😀😀",
  "你好", "你好，世界！", "日本語のテキスト", "한국어", "مرحبا", "שלום", "नमस्ते", "สวัสดี",
  "<|endoftext|>", "<|begin_of_text|>Hello", "a<|end_of_text|>b", "<think>\nok\n</think>",
  "<|im_start|>user\nhi<|im_end|>", "<|eot_id|><|start_header_id|>", "<|endoftext|><|endoftext|>",
  "<|notatoken|>", "< |endoftext| >", "<tool_call>{}</tool_call>",
  "a".repeat(300), "ab".repeat(150), "=".repeat(120), " ".repeat(64), "\n".repeat(40),
  "9".repeat(200), "😀".repeat(50), "supercalifragilisticexpialidocious", "!!!???...,,,",
  "¡Hola! ¿Qué tal?", "« guillemets »", "„Anführungszeichen“", "‘single’ “double”",
  "Straße STRASSE ß ẞ", "İstanbul ıi", "ΣΊΣΥΦΟΣ σίσυφος", "ſ 'ſ long s", "'K 'k",
];

const out = [];
for (const s of fixed) out.push(s);
for (let i = 0; i < N_GENERATED; i++) out.push(generated());

const here = path.dirname(fileURLToPath(import.meta.url));
const dest = process.argv[2] || path.join(here, "..", "data", "tokenizer", "corpus.txt");
fs.mkdirSync(path.dirname(dest), { recursive: true });
fs.writeFileSync(dest, out.map((s) => JSON.stringify(s)).join("\n") + "\n");
console.error(`wrote ${out.length} lines to ${dest}`);
