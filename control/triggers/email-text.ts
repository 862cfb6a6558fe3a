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
    if (HEADER_FROM.test(line)) {
      const block = lines.slice(i + 1, i + 6).map((l) => l.trim());
      if (block.some((l) => HEADER_SENT.test(l)) && block.some((l) => HEADER_SUBJECT.test(l))) return { start: i, attribution: 0 };
    }
  }
  return null;
}

/** A forward's subject ("Fwd:", Outlook's "FW:", German "WG:", French "TR:", Spanish "RV:"): what follows its header block is the report. */
export function isForwardSubject(subject: string): boolean {
  return /^\s*(?:fwd?|wg|tr|rv|doorst)\s*:/i.test(subject);
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
 * Keeps only the sender's own text of an email body: drops the quoted message of a reply
 * ("On … wrote:" blocks, `>` lines, Outlook "-----Original Message-----" and
 * From:/Sent:/To:/Subject: blocks), the signature after a `-- ` line, and mobile
 * signatures such as "Sent from my iPhone". Text below a forward marker is kept, and so is
 * what follows the header block of a forward (`forward`: its subject says so). A reply
 * written below the quote (or between its lines) keeps its text, the quote gone.
 */
export function stripQuotedReply(text: string, opts: { forward?: boolean } = {}): string {
  const all = text.replace(/\r\n?/g, '\n').split('\n');
  // A forward (its subject says so) carries the report below its header block: kept.
  const header = opts.forward ? null : replyHeader(all);
  const own = stripLines(header ? all.slice(0, header.start) : all);
  if (own || !header?.attribution) return own;
  // Nothing above the attribution line: a reply written below the quote, or between its
  // lines. Only the attribution and the quoted (">") lines go.
  return stripLines([...all.slice(0, header.start), ...all.slice(header.start + header.attribution)]);
}

/** The sender's lines: quoted (">") lines, the signature and trailing separators or mobile signatures dropped. */
function stripLines(input: string[]): string {
  // RFC 3676 §4.5: quoted lines start with ">"; interleaved replies keep the text between them.
  let lines = input.filter((l) => !l.startsWith('>'));
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

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', ndash: '–', mdash: '—', hellip: '…',
  lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', bull: '•', copy: '©',
  reg: '®', trade: '™', euro: '€',
};

function decodeEntities(s: string): string {
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,31});/g, (m, e: string) => {
    if (e[0] !== '#') return NAMED_ENTITIES[e] ?? m;
    const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    // HTML §13.2.5.80: NUL, surrogates and values past U+10FFFF become U+FFFD.
    return cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? '\uFFFD' : String.fromCodePoint(cp);
  });
}

/**
 * Renders an HTML mail body as plain text: block elements become line breaks, `<pre>`
 * keeps its whitespace, script/style are dropped, and so are `<blockquote>`s, which mail
 * clients use for the quoted message of a reply (Gmail `gmail_quote`, Apple `type=cite`).
 */
export function htmlToText(html: string): string {
  const out: string[] = [];
  // Output is empty or ends in whitespace, so collapsed text drops its leading space.
  let softBreak = true;
  let quoteDepth = 0;
  let preDepth = 0;
  const emit = (s: string) => {
    if (quoteDepth > 0 || s === '') return;
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
