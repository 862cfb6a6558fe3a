/**
 * A real SMTP server (the `smtp-server` package) on loopback for tests that send mail:
 * it requires a login, refuses recipients at one domain (550), keeps every message it
 * accepted, parsed with postal-mime, and counts the connections open at once.
 */
import type { AddressInfo } from 'node:net';
import PostalMime, { type Email } from 'postal-mime';
import { SMTPServer } from 'smtp-server';

export interface Delivered {
  mailFrom: string;
  rcptTo: string[];
  /** Who logged in. */
  user: string | undefined;
  mail: Email;
  /** What `onDelivered` returned at delivery time (a test's snapshot of the world). */
  seen: unknown;
}

export interface SmtpOptions {
  user: string;
  pass: string;
  /** Recipients ending with this are refused with 550. */
  refuseDomain?: string;
  /** Called as each message arrives; its result is kept as `seen`. */
  onDelivered?: () => unknown;
}

export class TestSmtpServer {
  readonly delivered: Delivered[] = [];
  /** Refuse this many recipients next with a temporary 451 (a busy server). */
  temporaryRefusals = 0;
  /** Connections open now, and the most there were at once (a test may set it back to 0). */
  open = 0;
  peakOpen = 0;
  private readonly server: SMTPServer;

  constructor(opts: SmtpOptions) {
    this.server = new SMTPServer({
      // No certificate here: senders must be configured with requireTLS off.
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onConnect: (_session, cb) => {
        this.peakOpen = Math.max(this.peakOpen, ++this.open);
        cb();
      },
      onClose: () => {
        this.open--;
      },
      onAuth: (auth, _session, cb) =>
        auth.username === opts.user && auth.password === opts.pass ? cb(null, { user: auth.username }) : cb(new Error('Invalid username or password')),
      onRcptTo: (address, _session, cb) => {
        if (this.temporaryRefusals > 0) {
          this.temporaryRefusals--;
          return cb(Object.assign(new Error('4.3.2 busy, try again later'), { responseCode: 451 }));
        }
        return opts.refuseDomain && address.address.endsWith(opts.refuseDomain)
          ? cb(Object.assign(new Error('5.1.1 mailbox unavailable'), { responseCode: 550 }))
          : cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const seen = opts.onDelivered?.();
          PostalMime.parse(Buffer.concat(chunks)).then((mail) => {
            this.delivered.push({
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              user: typeof session.user === 'string' ? session.user : undefined,
              mail,
              seen,
            });
            cb();
          }, cb);
        });
      },
    });
  }

  /** Listen on 127.0.0.1 and an ephemeral port; resolves with the port. */
  listen(): Promise<number> {
    return new Promise((ok) => this.server.listen(0, '127.0.0.1', () => ok((this.server.server.address() as AddressInfo).port)));
  }

  close(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

/** A header's value, by lower-case name. */
export const mailHeader = (mail: Email, name: string): string | undefined => mail.headers.find((h) => h.key === name)?.value;
