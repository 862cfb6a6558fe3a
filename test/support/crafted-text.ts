/**
 * Untrusted text of crafted shapes that once took time growing with the square or the
 * cube of its length in redaction, stack parsing, triage's patterns, chunking docs and
 * reading a ticket's words for the docs search (10 KB of "token-" in an email body: 14 s;
 * 100 KB: hours; "#", 10,000 spaces and a U+2028 in a doc: 200 s). Run as a process of its
 * own (`node --import tsx test/support/crafted-text.ts redact|frames|triage|chunk|query|email`) by
 * tests that give it a time limit: a regular expression that backtracks holds its thread, so
 * no in-process timer could stop it. Prints "ok" when every text was processed.
 */
import { loadConfig } from '../../control/config.ts';
import { chunkMarkdown } from '../../control/docs-search/chunk.ts';
import { buildFtsQuery } from '../../control/docs-search/search.ts';
import { inAppFrames } from '../../control/intake/fingerprint.ts';
import { parseMailgunForm } from '../../control/triggers/email.ts';
import { htmlToText, stripQuotedReply, tidyText } from '../../control/triggers/email-text.ts';
import { createTriage } from '../../control/intake/triage.ts';
import { createRedactor, redactLines } from '../../lib/redact.ts';

const N = 100_000;

export const CRAFTED_FOR_REDACTION = [
  'token-'.repeat(N / 6),
  'a.'.repeat(N / 2),
  ('a'.repeat(60) + '@' + 'b.'.repeat(100)).repeat(N / 261),
  'x://' + 'a:'.repeat(N / 2),
  'user' + ' '.repeat(N) + 'x',
  ('user ' + 'a'.repeat(50) + ' ').repeat(N / 56),
  'password ='.repeat(N / 10),
  // Quoted and bracketed values are taken to their end: unclosed ones, once each.
  'password="'.repeat(N / 10),
  "token='".repeat(N / 7),
  'secret={'.repeat(N / 8),
  'auth=['.repeat(N / 6),
  // Keys named by their prefix, a run without the end the rule wants after it each time.
  ('glpat-' + 'a'.repeat(19) + '.').repeat(N / 26),
  ('whsec_' + 'a'.repeat(30) + '_').repeat(N / 37),
  'hooks.slack.com/services/'.repeat(N / 25),
  '-----BEGIN PGP PRIVATE KEY BLOCK-----'.repeat(N / 37),
  'x://:'.repeat(N / 5),
  'redis://:' + 'p'.repeat(N),
  // A Cookie header's pairs; a signed URL's keys (sig, ...Signature) one after the other.
  'Cookie: a=b;'.repeat(N / 12),
  'set-cookie:' + ' '.repeat(N) + ';',
  'Cookie: a' + '; '.repeat(N / 2),
  'sig-'.repeat(N / 4),
  'X-Amz-Signature-'.repeat(N / 16),
  'signature = '.repeat(N / 12),
  // A link's named segment: one long segment full of the words it looks for, never closed.
  '/' + 'reset'.repeat(N / 5),
  '/login-'.repeat(N / 7),
  '/reset/' + 'A1'.repeat(N / 2) + '.x',
  ('/verify/' + 'a'.repeat(15)).repeat(N / 23),
];

/** An alert's message (up to server.maxBodyBytes) for the built-in third-party ignore rule's ".*". */
export const CRAFTED_FOR_TRIAGE = ['ETIMEDOUT'.repeat(1_000_000 / 9), 'ECONNRESET '.repeat(1_000_000 / 11)];

/** Doc lines for chunking (a doc a branch may add: phase 0 of every later run reads it). */
export const CRAFTED_DOCS = [
  `#${' '.repeat(N)}\u2028`,
  `# x${' '.repeat(N)}y`,
  `# x${' \t'.repeat(N / 2)}#y`,
  `${'`'.repeat(N)}x\u2028`,
  `~~~${' '.repeat(N)}\u2028`,
];

/** Ticket text for the docs search's query. */
export const CRAFTED_QUERIES = [
  'a'.repeat(N),
  'a.'.repeat(N / 2),
  'a/'.repeat(N / 2),
  `at x${' '.repeat(N)}y`,
  `at x${'\t'.repeat(N)}(`,
  `${'$'.repeat(N)} is nothing`,
];

/**
 * A mail's text and address fields, each a Mailgun form field's worth (server.maxBodyBytes):
 * group openings (":") for the address parser, quote, attribution and signature shapes for
 * the reply stripping.
 */
const MB = 1_000_000;
export const CRAFTED_ADDRESSES = ['From: a\n'.repeat(MB / 8), 'Re: Fwd: '.repeat(MB / 9), 'a:'.repeat(MB / 2), 'Re[1]:'.repeat(MB / 6)];
export const CRAFTED_MAIL_TEXT = [
  '>'.repeat(MB),
  'On 1, x\n'.repeat(MB / 8),
  `On ${'1,'.repeat(MB / 2)} wrote`,
  '-- \n'.repeat(MB / 4),
  `--${' '.repeat(MB / 2)}Original Message${' '.repeat(MB / 2)}-x`,
  'From: a\nSent: b\n'.repeat(MB / 16),
  'Sent from my iPhone\n'.repeat(MB / 20),
  '\r\r\n'.repeat(MB / 3),
  `${'\u2003'.repeat(MB / 2)}x`,
  `${'\u200b'.repeat(MB / 2)}\n`,
  '<script>'.repeat(MB / 8),
  `&${'a'.repeat(30)}`.repeat(MB / 31),
];

export const CRAFTED_STACK = `Error: x\n    at ${'a ('.repeat(130_000)}\rx\n    at handler (/app/src/pets.js:12:5)`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const what = process.argv[2];
  if (what === 'redact') {
    const r = createRedactor({ salt: 'pepper' });
    for (const text of CRAFTED_FOR_REDACTION) r.text(text);
    // Lines of a key's body are told by a pattern too.
    redactLines(['-----BEGIN RSA PRIVATE KEY-----', `${' '.repeat(N)}x`], r.text);
    redactLines([`${' '.repeat(N)}x`, '-----END RSA PRIVATE KEY-----'], r.text);
  } else if (what === 'frames') {
    inAppFrames(CRAFTED_STACK, 3);
  } else if (what === 'triage') {
    const triage = createTriage(loadConfig({ env: {}, cwd: '/' }).triage);
    for (const message of CRAFTED_FOR_TRIAGE) {
      triage.decide({ kind: 'error', service: 'api', title: 'x', message, labels: {}, count: 1, human: false, claimedBy: null, classification: null });
    }
  } else if (what === 'chunk') {
    for (const doc of CRAFTED_DOCS) chunkMarkdown(doc, { maxChunkChars: 2000, maxChunks: 400 });
  } else if (what === 'query') {
    for (const q of CRAFTED_QUERIES) buildFtsQuery(q);
  } else if (what === 'email') {
    const form = { sender: 'a@example.com', token: 't', 'body-plain': 'x' };
    const event = (fields: Record<string, string>) => {
      try {
        parseMailgunForm(fields);
      } catch {
        // Refused (no sender, a bounce): the time it took is what counts.
      }
    };
    for (const value of CRAFTED_ADDRESSES) {
      event({ ...form, sender: value });
      event({ ...form, from: value });
      event({ ...form, recipient: value });
      event({ ...form, 'message-headers': JSON.stringify([['Reply-To', value]]) });
    }
    for (const text of CRAFTED_MAIL_TEXT) {
      for (const kind of ['reply', 'forward', 'new'] as const) stripQuotedReply(text, { kind });
      tidyText(text);
      htmlToText(text);
      event({ ...form, 'body-plain': text, subject: `Re: ${text}` });
    }
  } else {
    process.stderr.write('usage: crafted-text.ts redact|frames|triage|chunk|query|email\n');
    process.exit(2);
  }
  process.stdout.write('ok\n');
}
