/**
 * What the workers need on this machine besides Node: git and flock, the agent's Bash sandbox
 * (bubblewrap and socat; every phase's commands run in it and it fails closed, and
 * socat also joins the sessions to their MCP servers), grep (the push checks the diff
 * against the protected paths with `grep -P`, and refuses to push when it cannot; Debian's
 * grep has -P) and the Claude Code CLI. Found on PATH without running anything: the
 * control plane starts no process but its workers. Checked
 * when `bugbot start` starts, so a missing one is named at once rather than by every
 * run failing.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import { claudeBinary } from './phases.ts';

/** Debian packages that provide each command. */
const PACKAGES: Record<string, string> = { git: 'git', flock: 'util-linux', bwrap: 'bubblewrap', socat: 'socat', grep: 'grep' };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => dir !== '' && executable(join(dir, cmd)));
}

/** The commands the workers need that this machine lacks, and how to get them (empty when nothing is missing). */
function missingForWorkers(cfg: BugbotConfig, path = process.env.PATH ?? ''): { missing: string[]; hint: string } {
  const missing = Object.keys(PACKAGES).filter((cmd) => !onPath(cmd, path));
  const claude = claudeBinary(cfg);
  const claudeMissing = claude.includes('/') ? !executable(claude) : !onPath(claude, path);
  const packages = missing.map((cmd) => PACKAGES[cmd]!);
  const hints = [
    ...(packages.length ? [`apt-get install ${packages.join(' ')}`] : []),
    ...(claudeMissing ? ['npm ci (Claude Code comes with bugbot), or set harness.claude'] : []),
  ];
  return { missing: [...missing, ...(claudeMissing ? [`claude (${claude})`] : [])], hint: hints.join('; ') };
}

/**
 * Why no ticket can run on this machine now, or null: a command the workers lack, or no
 * model credentials to give the sessions (none of harness.apiKeyEnv, oauthTokenEnv or
 * baseUrlEnv is set; a custom harness.claude may bring its own). The dispatcher then claims
 * nothing: tickets wait in the queue rather than each run failing on it.
 */
export function workersHeld(cfg: BugbotConfig, path = process.env.PATH ?? ''): string | null {
  const reasons: string[] = [];
  const { missing, hint } = missingForWorkers(cfg, path);
  if (missing.length) reasons.push(`${missing.join(', ')} not found (${hint})`);
  const h = cfg.harness;
  const credentials = [h.apiKeyEnv, h.oauthTokenEnv, h.baseUrlEnv].some((name) => cfg.secrets.get(name));
  if (!credentials && !h.claude) reasons.push(`no model credentials (start bugbot with ${h.apiKeyEnv} or ${h.oauthTokenEnv} set)`);
  return reasons.length ? reasons.join('; ') : null;
}
