/**
 * The email parser's thread (see email-parse.ts): postal-mime, away from the event loop
 * the routes share. It only parses; what a mail means is read on the HTTP thread (email.ts).
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import PostalMime from 'postal-mime';
import type { Attachment, Email } from 'postal-mime';
import type { Parsed, ParseReply, ParseRequest } from './email-parse.ts';

if (!parentPort) throw new Error('email-parse-thread.ts runs as a worker thread (control/triggers/email-parse.ts starts it)');
const port: MessagePort = parentPort;

/**
 * An attached mail. postal-mime inlines a message/rfc822 part into the body itself (with
 * a header block) unless its disposition is "attachment", as a forward-as-attachment's is.
 */
function isAttachedMessage(a: Attachment): boolean {
  return /^message\/(rfc822|global)$/i.test(a.mimeType);
}

async function parseOne(raw: string | Uint8Array, req: ParseRequest): Promise<Parsed> {
  let email: Email;
  try {
    email = await PostalMime.parse(raw, req.options);
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  const attached: Array<Email | null> = [];
  for (const a of email.attachments.filter(isAttachedMessage).slice(0, req.attached)) {
    try {
      attached.push(await PostalMime.parse(typeof a.content === 'string' ? Buffer.from(a.content) : new Uint8Array(a.content), req.options));
    } catch {
      attached.push(null);
    }
  }
  return { email, attached };
}

/** Attachments' bytes move to the HTTP thread rather than being copied (25 MB of screenshots). */
function buffersOf(parsed: Parsed[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const p of parsed) {
    if (!('email' in p)) continue;
    for (const e of [p.email, ...p.attached]) for (const a of e?.attachments ?? []) if (a.content instanceof ArrayBuffer) out.add(a.content);
  }
  return [...out];
}

async function answer(req: ParseRequest): Promise<void> {
  const parsed: Parsed[] = [];
  for (const raw of req.raws) parsed.push(await parseOne(raw, req));
  port.postMessage({ id: req.id, parsed } satisfies ParseReply, buffersOf(parsed));
}

port.on('message', (req: ParseRequest) => {
  answer(req).catch((err: unknown) => port.postMessage({ id: req.id, failed: err instanceof Error ? err.message : String(err) } satisfies ParseReply));
});
port.postMessage({ ready: true } satisfies ParseReply);
