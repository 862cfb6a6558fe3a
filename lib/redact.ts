/**
 * Redaction runs before anything is stored or shown: secrets are masked, email
 * addresses and user ids in free text are replaced by a one-way hash so tickets
 * can still say "the same user" without revealing who. Shared by the control plane
 * (intake) and the MCP servers (log lines the agent reads), hence lib/.
 */
import { createHmac } from 'node:crypto';

interface Rule {
  name: string;
  re: RegExp;
  /** Replacement; `hash` means keep a stable one-way hash of the matched value. */
  replace: string | ((match: string, ...groups: string[]) => string);
}

export interface Redactor {
  text(s: string): string;
  /** One-way hash of a user id (stable for one salt). */
  hashUser(id: string): string;
}

/**
 * Built-in rules. Order matters: structured secrets (keys, JWTs, URLs with
 * credentials) before generic `password=...` pairs, before emails.
 *
 * Every rule runs in time linear in the text (all text here is untrusted: an email body,
 * an alert, a Slack message): no rule may try a run of characters from each of its
 * positions and then backtrack through it. A key is taken whole where its run starts,
 * never from inside it (a lookbehind, and a lookahead whose capture cannot be given
 * back), separators are not two optional runs of the same characters side by side, and
 * the parts of an address or a URL's credentials are bounded as the standards bound them.
 */
function builtinRules(hash: (v: string) => string): Rule[] {
  return [
    {
      name: 'private-key',
      re: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
      replace: '[REDACTED:private-key]',
    },
    { name: 'jwt', re: /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g, replace: '[REDACTED:jwt]' },
    {
      name: 'url-credentials',
      re: /\b([a-z][a-z0-9+.-]{0,31}:\/\/)(?=([^\s:/@]+))\2:(?=([^\s@/]+))\3@/gi,
      replace: (_m, scheme: string) => `${scheme}[REDACTED]@`,
    },
    { name: 'aws-access-key', re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, replace: '[REDACTED:aws-key]' },
    { name: 'github-token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g, replace: '[REDACTED:github-token]' },
    { name: 'slack-token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g, replace: '[REDACTED:slack-token]' },
    { name: 'slack-app-token', re: /\bxapp-[A-Za-z0-9-]{10,}\b/g, replace: '[REDACTED:slack-token]' },
    { name: 'api-key', re: /\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_-]{16,}\b/g, replace: '[REDACTED:api-key]' },
    { name: 'google-key', re: /\bAIza[0-9A-Za-z_-]{30,}\b/g, replace: '[REDACTED:api-key]' },
    {
      name: 'bearer',
      re: /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/g,
      replace: (_m, scheme: string) => `${scheme} [REDACTED]`,
    },
    {
      // password=..., "api_key": "...", secret: ..., token=..., "credentials": {...}. A
      // quoted value is taken to its closing quote (spaces, commas and all), an object or
      // array to its first closing bracket, anything else up to a delimiter. Each part is
      // taken whole (a lookahead's capture), so an unclosed quote costs one pass, not one
      // per candidate key.
      name: 'secret-pair',
      re: /(?<![\w-])(?=[\w-]*?(?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|access[_-]?key|auth|credential|session[_-]?id|cookie))(?=([\w-]+))\1(["']?\s*[:=]\s*)(?:(")(?=((?:[^"\\\r\n]|\\.)*))\4"?|(')(?=((?:[^'\\\r\n]|\\.)*))\6'?|[{[](?=([^{}[\]\r\n]*))\7[}\]]?|(\\")(?=((?:[^"\\\r\n]|\\[^"\r\n])*))\9(?:\\")?|(?=([^\s"',;&}]+))\10)/gi,
      // A value quoted inside a quoted string (JSON's "msg":"token: \"abc def\"") is taken
      // to its escaped closing quote, not cut at the backslash.
      replace: (_m, key: string, sep: string, dq?: string, _d?: string, sq?: string, _s?: string, _b?: string, eq?: string) => {
        const q = dq ?? sq ?? eq ?? '';
        return `${key}${sep}${q}[REDACTED]${q}`;
      },
    },
    {
      name: 'card-number',
      re: /\b\d(?:[ -]?\d){12,18}\b/g,
      replace: (m) => (luhn(m.replace(/\D/g, '')) ? '[REDACTED:card]' : m),
    },
    {
      // A Slack member's mention, <@U061F7AUR> or <@U061F7AUR|alice>: the id hashed, a display
      // name dropped (before the email rule, which would take an address given as the name).
      // An id has a digit: <@USERNAME> is a template's placeholder.
      name: 'slack-user',
      re: /<@((?=[A-Z0-9]*\d)[UW][A-Z0-9]{6,20})(?:\|[^>\n]{0,200})?>/g,
      replace: (_m, id: string) => `<@user:${hash(id)}>`,
    },
    {
      name: 'email',
      re: /\b[A-Za-z0-9._%+-]{1,256}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\b/g,
      replace: (m) => `<email:${hash(m.toLowerCase())}>`,
    },
    {
      // user_id=123, userId: "abc", user 42, uid=...
      name: 'user-id',
      // The id is taken whole (no backtracking into it), and is never itself a key: in
      // "user uid=1000" the id is 1000 (uid's), not "uid".
      re: /(?<!<@?)\b(user[_-]?id|userid|uid|customer[_-]?id|account[_-]?id|user)(["']?\s*(?:[:=#]\s*)?["']?)((?!(?:user[_-]?id|userid|uid|customer[_-]?id|account[_-]?id)\b)(?=([A-Za-z0-9_-]+))\4)/gi,
      // An id has a digit in it ("user admin" is a word, not an id).
      replace: (m, key: string, sep: string, id: string) => (/\d/.test(id) ? `${key}${sep}<user:${hash(id)}>` : m),
    },
  ];
}

function luhn(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** A line that is a key's armour (it ends with the marker: a string in code that names one does not). */
const KEY_BEGIN = /-----BEGIN [A-Z ]*PRIVATE KEY-----\s*$/;
const KEY_END = /-----END [A-Z ]*PRIVATE KEY-----\s*$/;
/** A line of a key's body (trimmed, a diff's +/- marker off): base64, or an old PEM header (Proc-Type, DEK-Info). */
const KEY_BODY = /^(?:[A-Za-z0-9+/=]{8,}|[A-Za-z-]+: .*)?$/;
const keyBody = (line: string) => KEY_BODY.test(line.trim().replace(/^[-+](?=[A-Za-z0-9+/=]{8,}$)/, ''));

/**
 * Redact text that comes as lines (a diff's, a log's tail), each with `redact`. A private
 * key spans lines and none of its body lines alone looks like one, so the lines of a key
 * are masked whole: from the line that begins it while the lines look like a key's body,
 * through the line that ends it; and at the top of a window that starts inside a key (a
 * log's last lines), the body lines above the line that ends it.
 */
export function redactLines(lines: readonly string[], redact: (text: string) => string): string[] {
  const out = lines.map((line) => redact(line));
  let inKey = false;
  let sawBegin = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (inKey) {
      if (KEY_END.test(line)) {
        inKey = false;
        out[i] = '[REDACTED:private-key]';
      } else if (keyBody(line)) {
        out[i] = '[REDACTED:private-key]';
      } else {
        inKey = false;
      }
      continue;
    }
    if (KEY_BEGIN.test(line)) {
      inKey = sawBegin = true;
      out[i] = '[REDACTED:private-key]';
    } else if (KEY_END.test(line) && !sawBegin) {
      // The window starts inside a key: the body lines just above are its.
      out[i] = '[REDACTED:private-key]';
      for (let j = i - 1; j >= 0 && keyBody(lines[j]!); j--) out[j] = '[REDACTED:private-key]';
    }
  }
  return out;
}

/**
 * Masks each of `values` as `[secret]` wherever it appears, the longest first (a secret
 * holding another is masked whole). The dashboard's mark, and redaction's for the
 * secrets the config names.
 */
export function literalMask(values: readonly string[]): (text: string) => string {
  const sorted = [...new Set(values)].filter((v) => v.length > 0).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const v of sorted) if (out.includes(v)) out = out.split(v).join('[secret]');
    return out;
  };
}

/**
 * Build a redactor. `salt` keys the one-way hashes; `extra` are config patterns masked
 * whole; `literals` are values masked wherever they appear (the secrets the config names:
 * a token pasted into a report matches no pattern of its own).
 */
export function createRedactor(opts: { salt?: string; extra?: string[]; literals?: string[] } = {}): Redactor {
  const salt = opts.salt ?? 'bugbot';
  const mask = literalMask(opts.literals ?? []);
  const hash = (v: string) => createHmac('sha256', salt).update(v).digest('hex').slice(0, 12);
  const rules = builtinRules(hash);
  for (const [i, p] of (opts.extra ?? []).entries()) {
    rules.push({ name: `config-${i}`, re: new RegExp(p, 'g'), replace: '[REDACTED]' });
  }

  // One cheap test first: text that contains none of these fragments cannot match any
  // built-in rule, and that is nearly all text. Config patterns always run.
  const maybeSecret = opts.extra?.length
    ? null
    : /BEGIN|eyJ|:\/\/|AKIA|ASIA|gh[pousr]_|github_pat|xox|xapp|[spr]k[-_]|AIza|bearer|basic|token|pass|secret|key|auth|credential|session|cookie|(?:\d[ -]?){13}|@|user|uid|customer|account/i;

  const text = (s: string): string => {
    let out = mask(s);
    if (maybeSecret && !maybeSecret.test(out)) return out;
    for (const r of rules) {
      r.re.lastIndex = 0;
      // Cheap pre-checks keep the common case (no secrets) fast.
      if (!r.re.test(out)) continue;
      r.re.lastIndex = 0;
      out = out.replace(r.re, r.replace as (substring: string, ...args: string[]) => string);
    }
    return out;
  };

  const hashUser = (id: string) => `user:${hash(id)}`;

  return { text, hashUser };
}
