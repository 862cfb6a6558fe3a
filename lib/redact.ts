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
  /** Text every match holds: text without it skips the rule (a substring test costs less than a pattern's scan). */
  needs?: string;
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
      // PGP's armour says "PRIVATE KEY BLOCK" (RFC 4880 6.2).
      re: /-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
      replace: '[REDACTED:private-key]',
    },
    { name: 'jwt', re: /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g, replace: '[REDACTED:jwt]' },
    {
      name: 'url-credentials',
      // The user may be empty: redis://:password@host (Redis before ACLs has no user names).
      re: /\b([a-z][a-z0-9+.-]{0,31}:\/\/)(?=([^\s:/@]*))\2:(?=([^\s@/]+))\3@/gi,
      replace: (_m, scheme: string) => `${scheme}[REDACTED]@`,
      needs: '://',
    },
    { name: 'aws-access-key', re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, replace: '[REDACTED:aws-key]' },
    { name: 'github-token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g, replace: '[REDACTED:github-token]' },
    {
      // Personal, project, group, deploy, runner, trigger, CI job, OAuth and feed tokens; newer
      // ones end in ".01.<checksum>".
      name: 'gitlab-token',
      re: /\bgl(?:pat|ptt|dt|rt|cbt|oas|soat|ffct|imt|agent|ft)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*/g,
      replace: '[REDACTED:gitlab-token]',
    },
    { name: 'slack-token', re: /\bxox[abposre]-[A-Za-z0-9-]{10,}\b/g, replace: '[REDACTED:slack-token]' },
    {
      // An incoming webhook's URL is its credential: anyone holding it can post to the channel.
      name: 'webhook-url',
      re: /\b((?:hooks\.slack(?:-gov)?\.com\/(?:services|workflows|triggers)|discord(?:app)?\.com\/api\/webhooks)\/)[A-Za-z0-9_/-]+/g,
      replace: (_m, base: string) => `${base}[REDACTED]`,
    },
    { name: 'slack-app-token', re: /\bxapp-[A-Za-z0-9-]{10,}\b/g, replace: '[REDACTED:slack-token]' },
    { name: 'api-key', re: /\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_-]{16,}\b/g, replace: '[REDACTED:api-key]' },
    { name: 'google-key', re: /\b(?:AIza[0-9A-Za-z_-]{30,}|GOCSPX-[0-9A-Za-z_-]{24,}|ya29\.[0-9A-Za-z_-]{20,})/g, replace: '[REDACTED:api-key]' },
    {
      // Keys whose prefix names them: Stripe webhook secrets, npm, Twilio API keys, SendGrid,
      // Mailgun (the older key-...), Shopify, Hugging Face, PyPI.
      name: 'vendor-key',
      re: /(?<![\w-])(?:whsec_[A-Za-z0-9]{24,}|npm_[A-Za-z0-9]{36}|SK[0-9a-fA-F]{32}|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|key-[0-9a-z]{32}|shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}|hf_[A-Za-z]{34}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,})(?![\w-])/g,
      replace: '[REDACTED:api-key]',
    },
    {
      name: 'bearer',
      re: /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/g,
      replace: (_m, scheme: string) => `${scheme} [REDACTED]`,
    },
    {
      // A Cookie header holds every cookie of the site, the session's among them wherever it
      // stands (Cookie: locale=en; _shop_session=...): its pairs are masked all together, up
      // to what no cookie holds (RFC 6265 4.1.1: no blank, comma or quote). A quoted header
      // value is the secret pair's below.
      name: 'cookie-header',
      re: /(?<![\w-])((?:set-)?cookie[ \t]*:[ \t]*)(?=([^\s;,"']+))\2(?:;[ \t]*(?=([^\s;,"']+))\3)*/gi,
      replace: (_m, header: string) => `${header}[REDACTED]`,
    },
    {
      // A password-reset, sign-in or invitation link carries its token in the path
      // (/reset-password/<token>, Django's /reset/<uid>/<token>/): a segment after one so
      // named that looks made by a machine (16 characters or more, a digit or a capital in
      // it; not a file's name) is masked. The word is looked for within the named segment,
      // which is then taken whole (a lookahead's capture), so a long one is read once.
      name: 'link-token',
      re: /(\/(?=[\w-]*?(?:reset|password|magic|verif|confirm|activat|invit|unlock|login|sign-?in|token))(?=([\w-]+))\2\/(?:[\w-]{1,15}\/)?)(?=([\w-]{16,}))\3(?!\.\w)/gi,
      replace: (m, path: string, _segment: string, token: string) => (/[\dA-Z]/.test(token) ? `${path}[REDACTED]` : m),
    },
    {
      // A signed URL's signature (X-Amz-Signature, X-Goog-Signature, Azure's sig) lets anyone
      // holding the URL in until it expires, a webhook's (X-Hub-Signature-256, Stripe-Signature's
      // t=...,v1=...) lets a delivery be replayed. Only a value made by a machine (16 characters
      // or more) is masked: "signature: missing" is an error's words, and SignatureVersion=2
      // names no secret. The key is read from its word on, and what may follow the word is
      // bounded (-256, _v4): a run of keys is not read again from each of them.
      name: 'signature',
      re: /(sig(?:nature(?![a-z])[\w-]{0,8})?(?![\w-])["']?\s*[:=]\s*["']?)(?=([^\s"';&}]{16,}))\2/gi,
      replace: (_m, key: string) => `${key}[REDACTED]`,
    },
    {
      // password=..., "api_key": "...", secret: ..., token=..., "credentials": {...}. A
      // quoted value is taken to its closing quote (spaces, commas and all), an object or
      // array to its first closing bracket, anything else up to a delimiter. Each part is
      // taken whole (a lookahead's capture), so an unclosed quote costs one pass, not one
      // per candidate key.
      name: 'secret-pair',
      re: /(?<![\w-])(?=[\w-]*?(?:pass(?:word|wd)?|pwd(?![a-z])|secret|token|api[_-]?key|apikey|access[_-]?key|account[_-]?key|app[_-]?key|auth|credential|session[_-]?id|cookie))(?=([\w-]+))\1(["']?\s*[:=]\s*)(?:(")(?=((?:[^"\\\r\n]|\\.)*))\4"?|(')(?=((?:[^'\\\r\n]|\\.)*))\6'?|[{[](?=([^{}[\]\r\n]*))\7[}\]]?|(\\")(?=((?:[^"\\\r\n]|\\[^"\r\n])*))\9(?:\\")?|(?=([^\s"',;&}]+))\10)/gi,
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
      needs: '@',
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
const KEY_BEGIN = /-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----\s*$/;
const KEY_END = /-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----\s*$/;
/**
 * A line of a key's body (trimmed, a diff's +/- marker off): base64, an armour header (PEM's
 * Proc-Type and DEK-Info, PGP's Version or Comment), or PGP's checksum (=XXXX).
 */
const KEY_BODY = /^(?:[A-Za-z0-9+/=]{8,}|=[A-Za-z0-9+/]{4}|[A-Za-z-]+: .*)?$/;
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
    : /BEGIN|eyJ|:\/\/|AKIA|ASIA|gh[pousr]_|github_pat|\bgl[a-z]{2,6}-|xox|xapp|hooks\.slack|discord|[spr]k[-_]|AIza|GOCSPX|ya29\.|whsec_|npm_|SK[0-9a-f]{32}|SG\.|shp[a-z]{2}_|hf_|pypi-|bearer|basic|token|pass|pwd|secret|key|auth|credential|session|cookie|sig|\/[\w-]*?(?:reset|magic|verif|confirm|activat|invit|unlock|login|sign-?in)|(?:\d[ -]?){13}|@|user|uid|customer|account/i;

  const text = (s: string): string => {
    let out = mask(s);
    if (maybeSecret && !maybeSecret.test(out)) return out;
    for (const r of rules) {
      if (r.needs && !out.includes(r.needs)) continue;
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
