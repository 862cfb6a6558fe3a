/**
 * The fence around untrusted text in what the agent reads: `<untrusted-data>` blocks
 * whose content cannot close them. Used by the control plane's brief
 * (control/dispatcher/brief.ts) and by the harness for the files it appends to a
 * phase's prompt (phase.sh harness_phase_prompt):
 *
 *   node fence.mjs SOURCE FILE   prints FILE fenced as data from SOURCE
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Fence untrusted text. Anything that looks like our fence tags inside it is
 * defused, so the content cannot end its own block and speak as the prompt.
 */
export function fence(source, text) {
  return `<untrusted-data source="${source}">\n${defuse(text)}\n</untrusted-data>`;
}

/** What a reader may take for `<`, `/` and `>` around a tag name (after folding); `\u003c` is how Go's JSON writes `<` in a log line. */
const OPEN = String.raw`<|‹|«|〈|⟨|❬|❮|˂|ᐸ|&lt;?|&#0*60;?|&#x0*3c;?|\\u003c`;
const SLASH = String.raw`[/∕⁄⧸\\]`;
const CLOSE = String.raw`>|›|»|〉|⟩|❭|❯|˃|ᐳ|&gt;?|&#0*62;?|&#x0*3e;?|\\u003e`;
const FENCE_TAG = new RegExp(String.raw`(?:(${OPEN})\s*)?(?:(${SLASH})\s*)?untrusted[-_\s]?data(?:\s*(${CLOSE}))?`, 'g');

/** Characters a reader does not see: format controls (zero-width, bidi), combining marks, other default-ignorables. */
const INVISIBLE = /^[\p{Cf}\p{Mn}\p{Me}\p{Default_Ignorable_Code_Point}]$/u;
const DASH = /^[\p{Pd}\u2212]$/u;
/** Letters of other scripts (and small capitals) that look like those of `untrusted-data`. */
const LOOKALIKE = {
  'а': 'a', 'ɑ': 'a', 'α': 'a', 'ᴀ': 'a',
  'ԁ': 'd', 'ᴅ': 'd',
  'е': 'e', 'ε': 'e', 'ᴇ': 'e',
  'п': 'n', 'η': 'n', 'ո': 'n', 'ɴ': 'n',
  'г': 'r', 'ʀ': 'r',
  'ѕ': 's', 'ꜱ': 's',
  'т': 't', 'τ': 't', 'ᴛ': 't',
  'υ': 'u', 'ս': 'u', 'ᴜ': 'u',
};

/**
 * Defuse every fence tag in text, opening or closing, however it is spelled: a tag is
 * found in a folded copy of the text (invisible characters such as zero-width spaces,
 * bidi controls and combining marks removed; NFKC, so fullwidth `＜` and small `﹤` read
 * as `<`; lower case; any dash as `-`; look-alike letters of other scripts as Latin),
 * beginning at an opening bracket or ending at a closing one (`<`, `‹`, `〈`, `&lt;`, ...).
 * The original characters of each tag are replaced by a plain defused spelling,
 * `‹/untrusted-data›`, which no reader takes for the fence.
 */
export function defuse(text) {
  const { folded, from, to } = fold(text);
  let out = '';
  let last = 0;
  for (const m of folded.matchAll(FENCE_TAG)) {
    const [all, open, slash, close] = m;
    if (!open && !close) continue; // the bare words, with no bracket: not a tag
    const start = from[m.index];
    const end = to[m.index + all.length - 1];
    out += `${text.slice(last, start)}‹${slash ? '/' : ''}untrusted-data${close ? '›' : ''}`;
    last = end;
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * The text as a reader would compare it with the fence tag, and for each of its
 * characters the range [from, to) of the original text it came from.
 */
function fold(text) {
  let folded = '';
  const from = [];
  const to = [];
  let i = 0;
  for (const ch of text) {
    const next = i + ch.length;
    if (!INVISIBLE.test(ch)) {
      for (const c of ch.normalize('NFKC').toLowerCase()) {
        folded += LOOKALIKE[c] ?? (DASH.test(c) ? '-' : c);
        // Every code unit just added maps back to this code point of the original.
        for (let k = folded.length - from.length; k > 0; k--) {
          from.push(i);
          to.push(next);
        }
      }
    }
    i = next;
  }
  return { folded, from, to };
}

// Run as a script (argv[1] may name it through a link; the module's URL is its real path).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [source, file] = process.argv.slice(2);
  if (!source || !file) {
    process.stderr.write('usage: node fence.mjs SOURCE FILE\n');
    process.exit(2);
  }
  process.stdout.write(`${fence(source, readFileSync(file, 'utf8').replace(/\n$/, ''))}\n`);
}
