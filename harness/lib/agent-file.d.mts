/** The text of a regular file at `path` in a run's agent/ folder; null when there is none (missing, a link, anything else). */
export function readAgentFile(path: string): string | null;
/** At most `max` bytes of a regular file at `path` (and whether there was more); null when there is none. */
export function readAgentFileHead(path: string, max: number): { text: string; truncated: boolean } | null;
/** Write `data` to `path` by a new file renamed over it: whatever stood at the name is replaced, never written through. */
export function writeAgentFile(path: string, data: string | Uint8Array): void;
