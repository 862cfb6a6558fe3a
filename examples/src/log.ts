// JSON-lines logging: one object per line on stderr, errors with their stack, so
// log shippers (and `bugbot watch`) can pick them up.
export function logError(msg: string, err: unknown, fields: Record<string, unknown> = {}): void {
  const e = err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
  process.stderr.write(JSON.stringify({ level: 50, time: Date.now(), service: 'petshop', msg, err: e, ...fields }) + '\n');
}

export function logInfo(msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ level: 30, time: Date.now(), service: 'petshop', msg, ...fields }) + '\n');
}
