/**
 * What the page said: console messages, uncaught page errors, failed and blocked
 * requests, in one numbered, capped buffer. Numbers only grow, so the model can ask
 * for "what is new since #N" without the server forgetting anything it still holds.
 */

/** Longer entries (a minified bundle in a stack trace) are cut to keep results small. */
const MAX_ENTRY_CHARS = 2_000;

export type ConsoleKind = 'console' | 'pageerror' | 'dialog' | 'blocked' | 'requestfailed' | 'http' | 'popup' | 'download';

export interface ConsoleEntry {
  id: number;
  time: string;
  kind: ConsoleKind;
  /** console.* level (error, warning, log, ...) or the kind again for non-console entries. */
  level: string;
  text: string;
}

/**
 * `text` cut to `max` characters, saying how much was left out. Text that may hold a
 * secret is masked first: a secret cut in half no longer matches its mask.
 */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… [${text.length - max} more chars]` : text;
}

/** A ring of the last `max` entries. */
export class ConsoleBuffer {
  private entries: ConsoleEntry[] = [];
  private nextId = 1;
  private dropped = 0;

  constructor(
    private readonly max: number,
    /** Masks the seeded users' secrets (server.ts): before the cut, which could halve one past the mask. */
    private readonly mask: (text: string) => string = (t) => t,
  ) {}

  push(kind: ConsoleKind, level: string, text: string): ConsoleEntry {
    const cut = clip(this.mask(text), MAX_ENTRY_CHARS);
    const entry: ConsoleEntry = { id: this.nextId++, time: new Date().toISOString(), kind, level, text: cut };
    this.entries.push(entry);
    if (this.entries.length > this.max) {
      this.entries.shift();
      this.dropped++;
    }
    return entry;
  }

  /** The number of the newest entry (0 when empty); pass it to `after()` later. */
  lastId(): number {
    return this.nextId - 1;
  }

  after(id: number): ConsoleEntry[] {
    return this.entries.filter((e) => e.id > id);
  }

  /** How many older entries fell out of the buffer. */
  droppedCount(): number {
    return this.dropped;
  }
}

/** One line per entry: `#12 10:04:05.123 [console.error] Failed to load plan (app.js:40)`. */
export function formatEntry(e: ConsoleEntry): string {
  const label = e.kind === 'console' ? `console.${e.level}` : e.kind;
  return `#${e.id} ${e.time.slice(11, 23)} [${label}] ${e.text}`;
}

/**
 * A nudge for action results: "New in browser_console_logs (after #7): 1 pageerror,
 * 2 blocked.", or '' when nothing but ordinary console.log lines arrived.
 */
export function newEntriesNote(buffer: ConsoleBuffer, afterId: number): string {
  const counts = new Map<string, number>();
  for (const e of buffer.after(afterId)) {
    const key = e.kind === 'console' ? `console.${e.level}` : e.kind;
    if (e.kind === 'console' && e.level !== 'error' && e.level !== 'warning') continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (!counts.size) return '';
  const parts = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
  return `\nNew in browser_console_logs (after #${afterId}): ${parts}.`;
}
