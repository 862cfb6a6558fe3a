/**
 * The fence around untrusted text in what the agent reads: `<untrusted-data>` blocks
 * whose content cannot close them. Used by the control plane's brief
 * (control/dispatcher/brief.ts) and by the harness for the files it appends to a
 * phase's prompt (phase.sh harness_phase_prompt):
 *
 *   node fence.mjs SOURCE FILE                  prints FILE fenced as data from SOURCE
 *   node fence.mjs --prompt OUT BASE SPEC...     writes a phase's prompt (assemblePrompt)
 */
import { lstatSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAgentFile } from './agent-file.mjs';

/**
 * Fence untrusted text. Anything that looks like our fence tags inside it is
 * defused, so the content cannot end its own block and speak as the prompt.
 */
export function fence(source, text) {
  // A NUL is no text a reader sees, and a shell reading the prompt drops it (joining what
  // stood around it): shown as the replacement character instead.
  return `<untrusted-data source="${source}">\n${defuse(text).replace(/\0/g, '\uFFFD')}\n</untrusted-data>`;
}

/** What a reader may take for `<`, `/` and `>` around a tag name (after folding); `\u003c` is how Go's JSON writes `<` in a log line. */
// `[` only before a slash: `[/untrusted-data]` reads as a closing tag, `[untrusted data](…)` is a link.
const OPEN = String.raw`<|‹|«|〈|⟨|❬|❮|˂|ᐸ|\[(?=\s*[/∕⁄⧸\\])|&lt;?|&#0*60;?|&#x0*3c;?|\\u003c|%3c`;
const SLASH = String.raw`[/∕⁄⧸\\]`;
const CLOSE = String.raw`>|›|»|〉|⟩|❭|❯|˃|ᐳ|\]|&gt;?|&#0*62;?|&#x0*3e;?|\\u003e|%3e`;
const FENCE_TAG = new RegExp(String.raw`(?:(${OPEN})\s*)?(?:(${SLASH})\s*)?untrusted[^a-z0-9<>\n\r]{0,3}data(?:\s*(${CLOSE}))?`, 'g');

/**
 * Characters a reader does not see: format controls (zero-width, bidi), combining marks,
 * other default-ignorables, control characters other than tab and line ends (a NUL, a
 * backspace, an escape), and the blank braille pattern.
 */
const INVISIBLE = /^[\p{Cf}\p{M}\p{Default_Ignorable_Code_Point}\u2800]$|^(?![\t\n\r])\p{Cc}$/u;
const MARK = /\p{M}/gu;
// A terminal's colour code (SGR: digits and separators, then `m`) shows as nothing. Only
// that: other escape sequences may hold `<`, `/` and letters, which must stay to be read.
// eslint-disable-next-line no-control-regex -- an escape sequence is what it matches
const COLOUR = /^\x1b\[[0-9;:]*m/;
const DASH = /^[\p{Pd}\u2212]$/u;
/**
 * Letters of other scripts (and small capitals) that look like those of `untrusted-data`,
 * looked up before and after lower-casing (a capital's lower case may look like nothing
 * Latin: Greek Ν is ν, Cherokee Ꭲ is ꭲ).
 */
const LOOKALIKE = {
  'а': 'a', 'ɑ': 'a', 'α': 'a', 'ᴀ': 'a', 'Ꭺ': 'a', 'ꓮ': 'a', 'ᗅ': 'a',
  'ԁ': 'd', 'ᴅ': 'd', 'Ꭰ': 'd', 'ꓓ': 'd', 'ᗪ': 'd',
  'е': 'e', 'ε': 'e', 'ᴇ': 'e', 'Ꭼ': 'e', 'ꓰ': 'e', 'Ⲉ': 'e',
  'п': 'n', 'η': 'n', 'ո': 'n', 'ɴ': 'n', 'Ν': 'n', 'ν': 'n', 'ꓠ': 'n', 'Ⲛ': 'n',
  'г': 'r', 'ʀ': 'r', 'Ꮢ': 'r', 'ꓣ': 'r', 'ꓤ': 'r', 'ᖇ': 'r',
  'ѕ': 's', 'ꜱ': 's', 'Ꮪ': 's', 'ꓢ': 's', 'Տ': 's',
  'т': 't', 'τ': 't', 'ᴛ': 't', 'Ꭲ': 't', 'ꓔ': 't', 'Ⲧ': 't',
  'υ': 'u', 'ս': 'u', 'ᴜ': 'u', 'Ս': 'u', 'ꓴ': 'u', 'ᑌ': 'u',
};

/**
 * Defuse every fence tag in text, opening or closing, however it is spelled: a tag is
 * found in a folded copy of the text (invisible characters such as zero-width spaces,
 * bidi controls, combining marks and control characters removed; NFKD with its marks
 * dropped, so fullwidth `＜` and small `﹤` read as `<` and an accented `ü` as `u`; lower
 * case; any dash as `-`; look-alike letters of other scripts as Latin),
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
    if (!open && !slash && close === ']') continue; // `[untrusted data]`, a link's text: not a tag
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
  let skipTo = 0;
  for (const ch of text) {
    const next = i + ch.length;
    // A colour code is skipped whole; a lone escape is invisible like any control character.
    if (ch === '\x1b') skipTo = i + (COLOUR.exec(text.slice(i, i + 64))?.[0].length ?? 1);
    if (i >= skipTo && !INVISIBLE.test(ch)) {
      // NFKD, marks dropped: `ü` (one character) reads as `u`, fullwidth `＜` as `<`.
      for (const d of ch.normalize('NFKD').replace(MARK, '')) {
        const c = LOOKALIKE[d] ?? d.toLowerCase();
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

/**
 * A phase's prompt: BASE (prompts/<phase>.md), then each FILE that is there and not empty,
 * in order: as it is (`FILE`: the brief, whose untrusted parts are fenced already), under
 * its name with fence tags defused (`notes:FILE`: what an earlier phase or the docs search
 * wrote, which may quote the report), or under its name fenced as data (`fenced:FILE`:
 * the diff, whose tests quote the report). The FILEs are the run's agent/ folder, which
 * the agent writes: one that is no regular file (a symbolic link to the local key or a
 * private key, a FIFO) is left out like a missing one, never followed (readAgentFile).
 */
export function assemblePrompt(base, specs) {
  let out = readFileSync(base, 'utf8');
  for (const spec of specs) {
    const [, kind = '', file] = /^(?:(notes|fenced):)?(.*)$/s.exec(spec);
    const text = readAgentFile(file);
    if (text === null && existsNoFollow(file)) process.stderr.write(`fence.mjs: ${file} is not a regular file (a link?): left out of the prompt\n`);
    if (!text) continue;
    const name = basename(file);
    if (kind === 'fenced') out += `\n\n## ${name}\n\n${fence(name, text.replace(/\n$/, ''))}\n`;
    else if (kind === 'notes') out += `\n\n## ${name}\n\n${defuse(text).replace(/\0/g, '\uFFFD')}`;
    else out += `\n\n${text}`;
  }
  return out;
}

/** Whether anything stands at PATH, a link included (not followed). */
function existsNoFollow(path) {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

// Run as a script (argv[1] may name it through a link; the module's URL is its real path).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args[0] === '--prompt' && args.length >= 3) {
    writeFileSync(args[1], assemblePrompt(args[2], args.slice(3)));
  } else if (args.length === 2 && !args[0].startsWith('--')) {
    process.stdout.write(`${fence(args[0], readFileSync(args[1], 'utf8').replace(/\n$/, ''))}\n`);
  } else {
    process.stderr.write('usage: node fence.mjs SOURCE FILE | --prompt OUT BASE [FILE | notes:FILE | fenced:FILE]...\n');
    process.exit(2);
  }
}
