/**
 * Structured logging: one JSON object per line on stderr (stdout is for command
 * output). Fields are redacted by the caller; this never logs request bodies.
 */
import { fstatSync, writeSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let warnedLevel = false;

export function createLogger(
  opts: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const fromEnv = process.env.BUGBOT_LOG_LEVEL;
  const unknown = !opts.level && fromEnv && !Object.hasOwn(ORDER, fromEnv);
  const min = ORDER[opts.level ?? (unknown ? 'info' : ((fromEnv as Level | undefined) ?? 'info'))] ?? ORDER.info;
  const write = opts.write ?? ((line: string) => writeStderr(line + '\n'));
  const base = opts.base ?? {};
  const log = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }));
  };
  // Said once, by the first logger made (children are made with opts.base).
  if (unknown && !opts.base && !warnedLevel) {
    warnedLevel = true;
    log('warn', `BUGBOT_LOG_LEVEL=${JSON.stringify(fromEnv)} is not a level (${Object.keys(ORDER).join(', ')}): logging at info`);
  }
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

let stderrIsFile: boolean | undefined;

/**
 * A stderr that is a file (`bugbot start 2>>bugbot.log`, systemd's `append:`) on a full
 * disk fails the write with ENOSPC: through process.stderr that is an 'error' event
 * nothing handles, and the process died without a word. A file is written directly
 * instead, and a line the disk cannot take is dropped; the next goes out once there is space.
 */
function writeStderr(text: string): void {
  if (stderrIsFile === undefined) {
    try {
      stderrIsFile = fstatSync(2).isFile();
    } catch {
      stderrIsFile = false;
    }
  }
  if (!stderrIsFile) {
    process.stderr.write(text);
    return;
  }
  const buf = Buffer.from(text);
  try {
    for (let off = 0; off < buf.length; ) off += writeSync(2, buf, off, buf.length - off);
  } catch {
    // ENOSPC, EIO: logging is not worth the control plane.
  }
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
