// Text clean-up for the email trigger: quoted-reply/signature stripping and HTML-to-text.
// Both run on untrusted input of sender-chosen size, so every pattern is anchored to a
// single line or a short tag, and the HTML scanner moves forward with indexOf: no regex
// here can backtrack across the whole message.

// "On Mon, Apr 2, 2012 at 6:26 PM, Megan One <xxx@gmail.com> wrote:" (Gmail), "On Apr 2,
// 2012, at 18:26, Megan One <…> wrote:" (Apple Mail), "On 4/2/12 6:26 PM, Megan One wrote:"
// (Thunderbird). All carry a date (a digit) and a comma; clients wrap long ones over 2 lines.
// Checked piecewise, not as one /^On .*\d.*,.*wrote:$/, which backtracks cubically on a long line.
function isOnWrote(line: string): boolean {
  return line.length <= 400 && line.startsWith('On ') && line.endsWith(' wrote:') && line.includes(',') && /\d/.test(line);
}
// Outlook's plain-text reply header: From:, then Sent:/Date:, To:, Cc:, Subject: lines.
// Outlook's HTML-to-text conversion bolds the labels as *From:*.
const HEADER_FROM = /^\*?From:\*?\s+\S/;
const HEADER_SENT = /^\*?(Sent|Date):\*?\s/;
const HEADER_SUBJECT = /^\*?Subject:\*?/;
const ORIGINAL_MESSAGE = /^-{2,}\s*Original Message\s*-{2,}$/i;
// Forwards carry the report itself (someone passing a customer's mail on), so nothing below
// these markers counts as a quoted reply. Gmail / Thunderbird, then Apple Mail.
const FORWARD_MARKER = /^(-{2,}\s*Forwarded message\s*-{2,}|Begin forwarded message:)$/i;
// Mobile clients' default signatures: "Sent from my iPhone", "Sent from Mail for Windows",
// "Sent with Proton Mail secure email", "Get Outlook for iOS<https://aka.ms/o0ukef>".
const MOBILE_SIGNATURE = /^(Sent from (my )?\S.{0,60}|Sent with \S.{0,60}|Get Outlook for (iOS|Android)\b.{0,60})$/i;
// Outlook's "________________________________" rule above the quoted header block.
const SEPARATOR = /^[_-]{5,}$/;

/**
 * A quoted reply's header ("On … wrote:", Outlook's header block): where it starts, and
 * how many lines it takes when it is an attribution line (1, or 2 when wrapped; 0 for a
 * header block, whose quote is not marked line by line). Null when there is none.
 */
function replyHeader(lines: string[]): { start: number; attribution: number } | null {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (FORWARD_MARKER.test(line)) return null;
    if (ORIGINAL_MESSAGE.test(line)) return { start: i, attribution: 0 };
    if (line.startsWith('On ')) {
      if (isOnWrote(line)) return { start: i, attribution: 1 };
      const next = lines[i + 1]?.trim();
      if (next !== undefined && isOnWrote(`${line} ${next}`)) return { start: i, attribution: 2 };
    }
    if (isHeaderBlock(lines, i)) return { start: i, attribution: 0 };
  }
  return null;
}

/** Whether an Outlook-style From:/Sent:/Subject: header block starts at line `i`. */
function isHeaderBlock(lines: string[], i: number): boolean {
  if (!HEADER_FROM.test(lines[i]!.trim())) return false;
  const block = lines.slice(i + 1, i + 6).map((l) => l.trim());
  return block.some((l) => HEADER_SENT.test(l)) && block.some((l) => HEADER_SUBJECT.test(l));
}

/** A forward's subject ("Fwd:", Outlook's "FW:", German "WG:", French "TR:", Spanish "RV:"): what follows its header block is the report. */
export function isForwardSubject(subject: string): boolean {
  return /^\s*(?:fwd?|wg|tr|rv|doorst)\s*:/i.test(subject);
}

/**
 * A reply's subject: "Re:" (also "Re[2]:"), German "AW:", Scandinavian "SV:", Finnish "VS:",
 * Dutch "Antw:", Polish "Odp:", Italian "RIF:", Portuguese "RES:".
 */
export function isReplySubject(subject: string): boolean {
  return /^\s*(?:re|aw|sv|vs|antw|odp|rif|res)(?:\[\d+\])?\s*:/i.test(subject);
}

/**
 * What a mail is, which decides how much of its text is the sender's own: `reply` (its
 * quote goes), `forward` (the forwarded mail is the report), or `new` (all of it is).
 */
export type MailKind = 'reply' | 'forward' | 'new';

/**
 * A forward by its subject, else a reply by its threading headers (In-Reply-To or
 * References, RFC 5322 §3.6.4) or its subject, else a new mail. Only a reply has a quote to
 * strip: a new mail that pastes a header block or `>` lines of console output keeps them.
 */
export function mailKind(subject: string, threaded: boolean): MailKind {
  if (isForwardSubject(subject)) return 'forward';
  return threaded || isReplySubject(subject) ? 'reply' : 'new';
}

/** Normalizes line breaks and blank runs: LF only, no trailing spaces, at most one blank line in a row. */
export function tidyText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * Keeps only the sender's own text of an email body. For a `reply` (the default) it drops
 * the quoted message ("On … wrote:" blocks, `>` lines, Outlook "-----Original Message-----"
 * and From:/Sent:/To:/Subject: blocks); a reply written below the quote (or between its
 * lines) keeps its text, the quote gone. Every kind loses its signature (after a `-- `
 * line) and a trailing mobile signature such as "Sent from my iPhone". A `forward` keeps
 * the forwarded mail whole, a signature above it included; a `new` mail keeps all the rest.
 */
export function stripQuotedReply(text: string, opts: { kind?: MailKind } = {}): string {
  const all = text.replace(/\r\n?/g, '\n').split('\n');
  if (opts.kind === 'forward') return stripLines(withoutNoteSignature(all), { quotes: false });
  if (opts.kind === 'new') return stripLines(all, { quotes: false });
  const header = replyHeader(all);
  const own = stripLines(header ? all.slice(0, header.start) : all);
  if (own || !header?.attribution) return own;
  // Nothing above the attribution line: a reply written below the quote, or between its
  // lines. Only the attribution and the quoted (">") lines go.
  return stripLines([...all.slice(0, header.start), ...all.slice(header.start + header.attribution)]);
}

/**
 * A forward's lines without the forwarder's signature: a `--` line above the forwarded
 * mail's start (a forward marker or a From:/Sent:/Subject: block) would otherwise count as
 * the last signature and take the forwarded mail with it.
 */
function withoutNoteSignature(lines: string[]): string[] {
  const start = lines.findIndex((l, i) => FORWARD_MARKER.test(l.trim()) || isHeaderBlock(lines, i));
  if (start < 0) return lines;
  const sig = lines.slice(0, start).findLastIndex((l) => l.trimEnd() === '--');
  return sig < 0 ? lines : [...lines.slice(0, sig), '', ...lines.slice(start)];
}

/** The sender's lines: quoted (">") lines (unless `quotes` is false), the signature and trailing separators or mobile signatures dropped. */
function stripLines(input: string[], opts: { quotes?: boolean } = {}): string {
  // RFC 3676 §4.5: quoted lines start with ">"; interleaved replies keep the text between them.
  let lines = opts.quotes === false ? input : input.filter((l) => !l.startsWith('>'));
  // RFC 3676 §4.3: the signature follows a "-- " line. Many clients trim the trailing space
  // (the Mailgun capture has a bare "--"), so accept both; the last one is the signature.
  const sig = lines.findLastIndex((l) => l.trimEnd() === '--');
  if (sig >= 0) lines = lines.slice(0, sig);
  while (lines.length > 0) {
    const last = lines[lines.length - 1]!.trim();
    if (last !== '' && !SEPARATOR.test(last) && !MOBILE_SIGNATURE.test(last)) break;
    lines.pop();
  }
  return tidyText(lines.join('\n'));
}

// Elements whose content is not text to show (HTML §13.1.2 raw text and escapable raw text
// elements, plus template). An unclosed one swallows the rest, as in a browser.
const HIDDEN = new Set(['script', 'style', 'title', 'textarea', 'template']);
const PARAGRAPH = new Set(['p', 'table', 'ul', 'ol', 'dl', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
const LINE = new Set(['br', 'div', 'tr', 'hr', 'dt', 'dd', 'section', 'article', 'header', 'footer', 'address', 'center']);
const TAG = /(\/?)([a-zA-Z][\w:-]*)/y;

// HTML 4.01's named character references (§24: Latin-1, symbols and Greek, special) at
// their HTML5 code points, plus HTML5's upper-case aliases of the commonest. HTML5 names
// 2,231 in all, but no direct dependency exports that table (postal-mime keeps its copy
// private), and these are the ones mail clients write. Latin-1's run from U+00A0 in order.
const LATIN1 =
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest ' +
  'Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig ' +
  'agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml';
// Greek capitals from U+0391 (U+03A2 is unassigned), small letters from U+03B1.
const GREEK_UPPER = 'Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - Sigma Tau Upsilon Phi Chi Psi Omega';
const GREEK_LOWER = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigmaf sigma tau upsilon phi chi psi omega';
const OTHER_ENTITIES: Record<string, number> = {
  quot: 0x22, amp: 0x26, apos: 0x27, lt: 0x3c, gt: 0x3e, QUOT: 0x22, AMP: 0x26, LT: 0x3c, GT: 0x3e, COPY: 0xa9, REG: 0xae,
  OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6, tilde: 0x2dc,
  thetasym: 0x3d1, upsih: 0x3d2, piv: 0x3d6,
  ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d, bdquo: 0x201e,
  dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032, Prime: 0x2033,
  lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044, euro: 0x20ac,
  image: 0x2111, weierp: 0x2118, real: 0x211c, trade: 0x2122, alefsym: 0x2135,
  larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194, crarr: 0x21b5,
  lArr: 0x21d0, uArr: 0x21d1, rArr: 0x21d2, dArr: 0x21d3, hArr: 0x21d4,
  forall: 0x2200, part: 0x2202, exist: 0x2203, empty: 0x2205, nabla: 0x2207, isin: 0x2208, notin: 0x2209, ni: 0x220b,
  prod: 0x220f, sum: 0x2211, minus: 0x2212, lowast: 0x2217, radic: 0x221a, prop: 0x221d, infin: 0x221e, ang: 0x2220,
  and: 0x2227, or: 0x2228, cap: 0x2229, cup: 0x222a, int: 0x222b, there4: 0x2234, sim: 0x223c, cong: 0x2245, asymp: 0x2248,
  ne: 0x2260, equiv: 0x2261, le: 0x2264, ge: 0x2265, sub: 0x2282, sup: 0x2283, nsub: 0x2284, sube: 0x2286, supe: 0x2287,
  oplus: 0x2295, otimes: 0x2297, perp: 0x22a5, sdot: 0x22c5, lceil: 0x2308, rceil: 0x2309, lfloor: 0x230a, rfloor: 0x230b,
  lang: 0x27e8, rang: 0x27e9, loz: 0x25ca, spades: 0x2660, clubs: 0x2663, hearts: 0x2665, diams: 0x2666,
};
// A Map, not an object: "&constructor;" must not find Object.prototype's.
const NAMED_ENTITIES = new Map<string, string>([
  ...LATIN1.split(' ').map((name, i): [string, string] => [name, String.fromCodePoint(0xa0 + i)]),
  ...GREEK_UPPER.split(' ').map((name, i): [string, string] => [name, String.fromCodePoint(0x391 + i)]),
  ...GREEK_LOWER.split(' ').map((name, i): [string, string] => [name, String.fromCodePoint(0x3b1 + i)]),
  ...Object.entries(OTHER_ENTITIES).map(([name, cp]): [string, string] => [name, String.fromCodePoint(cp)]),
  // A plain space: text is matched and fingerprinted, and U+00A0 would keep "a&nbsp;b" apart from "a b".
  ['nbsp', ' '],
]);

function decodeEntities(s: string): string {
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,31});/g, (m, e: string) => {
    if (e[0] !== '#') return NAMED_ENTITIES.get(e) ?? m;
    const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    // HTML §13.2.5.80: NUL, surrogates and values past U+10FFFF become U+FFFD.
    return cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? '\uFFFD' : String.fromCodePoint(cp);
  });
}

/**
 * Renders an HTML mail body as plain text: block elements become line breaks, `<pre>`
 * keeps its whitespace, script/style are dropped, and so are `<blockquote>`s, which mail
 * clients use for the quoted message of a reply (Gmail `gmail_quote`, Apple `type=cite`),
 * unless `keepQuotes`: Apple Mail puts a forwarded mail in one too, and in a new mail a
 * blockquote is the sender's own text.
 */
export function htmlToText(html: string, opts: { keepQuotes?: boolean } = {}): string {
  const out: string[] = [];
  // Output is empty or ends in whitespace, so collapsed text drops its leading space.
  let softBreak = true;
  let quoteDepth = 0;
  let preDepth = 0;
  const emit = (s: string) => {
    if ((quoteDepth > 0 && !opts.keepQuotes) || s === '') return;
    out.push(s);
    softBreak = /\s$/.test(s);
  };
  const text = (raw: string) => {
    let s = decodeEntities(raw);
    if (preDepth === 0) {
      s = s.replace(/\s+/g, ' ');
      if (softBreak) s = s.replace(/^ /, '');
    }
    emit(s);
  };

  let i = 0; // start of the text not yet emitted
  let from = 0; // where to look for the next "<"
  while (i < html.length) {
    const lt = html.indexOf('<', from);
    if (lt < 0) {
      text(html.slice(i));
      break;
    }
    TAG.lastIndex = lt + 1;
    const m = TAG.exec(html);
    if (!m && !html.startsWith('<!', lt) && !html.startsWith('<?', lt)) {
      from = lt + 1; // a bare "<" in text, e.g. "a < b"
      continue;
    }
    text(html.slice(i, lt));
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = from = end < 0 ? html.length : end + 3;
      continue;
    }
    const gt = html.indexOf('>', lt);
    if (gt < 0) break;
    i = from = gt + 1;
    if (!m) continue; // <!DOCTYPE>, <![endif]>, <?xml?>
    const closing = m[1] === '/';
    const name = m[2]!.toLowerCase();
    if (HIDDEN.has(name) && !closing) {
      const close = new RegExp(`</${name}\\b`, 'gi');
      close.lastIndex = i;
      const found = close.exec(html);
      const end = found ? html.indexOf('>', found.index) : -1;
      i = from = end < 0 ? html.length : end + 1;
    } else if (name === 'blockquote') {
      quoteDepth = Math.max(0, quoteDepth + (closing ? -1 : 1));
      emit('\n');
    } else if (name === 'pre') {
      preDepth = Math.max(0, preDepth + (closing ? -1 : 1));
      emit('\n\n');
    } else if (name === 'li' && !closing) {
      emit('\n- ');
    } else if (name === 'td' || name === 'th') {
      emit(' ');
    } else if (PARAGRAPH.has(name)) {
      emit('\n\n');
    } else if (LINE.has(name)) {
      emit('\n');
    }
  }
  return tidyText(out.join(''));
}
