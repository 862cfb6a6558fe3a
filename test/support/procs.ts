/**
 * The machine's processes as /proc shows them, for tests that prove nothing was left
 * running (Claude sessions, MCP servers, Chromium, dev servers).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';

export interface Proc {
  pid: number;
  ppid: number;
  cmd: string;
}

export function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd) out.push({ pid: Number(name), ppid, cmd });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Every process below `pid` (children, grandchildren, ...). */
export function descendants(pid: number, all = processes()): Proc[] {
  const found: Proc[] = [];
  const parents = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** An MCP server's command line: its source through tsx, or its prebuilt bundle (lib/bundle.ts). */
export function mcpServerCommand(name: 'browser' | 'loki' | 'db'): RegExp {
  return new RegExp(`mcp/${name}/main\\.ts|mcp-${name}-[0-9a-f]+/main\\.mjs`);
}
