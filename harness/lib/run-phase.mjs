#!/usr/bin/env node
// Runs one Claude Code phase and watches its stream-json output.
// Usage: node run-phase.mjs --phase P --log FILE --stats FILE [--progress FILE] [--stdin FILE]
//          [--wait-for-stdin] [--ready-file FILE] [--start-when FILE] [--idle SECONDS] [--wall SECONDS] [--on-banned deny|kill]
//          [--worktree DIR] [--ticket-dir DIR] [--policy FILE] -- claude -p ...
// The child gets exactly this process's environment (the caller builds it) and its
// own process group, so a kill takes its MCP servers and tool processes with it.
//
// What it enforces, that the agent can't: idle kill (no stream event for --idle s),
// a wall-clock limit, and the second guard layer: a banned tool call that was not
// denied (a hook failing open) kills the session at once; with --on-banned kill,
// even a denied attempt ends it. Every line is saved to --log, even on failure.
// --stats gets the phase's numbers (tokens, tool calls, cost, denials, result); a denial
// is recorded by its tool, reason and a short summary, never the call's whole input.
// --wait-for-stdin starts the session before its prompt exists: Claude Code starts up
// while the caller still writes --stdin (it must appear whole, e.g. by a rename), and the
// idle and wall-clock limits count from the moment the prompt is handed over.
// --start-when FILE holds the start of Claude Code until FILE exists (the worktree it
// works in is being made meanwhile; this process's own start-up is then already paid).
// --ready-file is created once the session is up (its init event: MCP servers connected,
// the first model request under way), or when it ends without getting there.
// Exit: 0 on a successful result, 1 otherwise, 2 on bad usage.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { denialRecord, summarizeInput } from './denial.mjs';
import { checkToolUse, loadPolicy } from './policy.mjs';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
if (sep === -1 || sep === argv.length - 1) {
  process.stderr.write('usage: run-phase.mjs --phase P --log FILE --stats FILE [...] -- command args...\n');
  process.exit(2);
}
const { values: o } = parseArgs({
  args: argv.slice(0, sep),
  options: {
    phase: { type: 'string' },
    log: { type: 'string' },
    stats: { type: 'string' },
    progress: { type: 'string' },
    idle: { type: 'string', default: '300' },
    wall: { type: 'string', default: '1800' },
    'on-banned': { type: 'string', default: 'deny' },
    worktree: { type: 'string', default: process.cwd() },
    'ticket-dir': { type: 'string' },
    stdin: { type: 'string' },
    'wait-for-stdin': { type: 'boolean', default: false },
    'ready-file': { type: 'string' },
    'start-when': { type: 'string' },
    policy: { type: 'string' },
  },
});
const [cmd, ...args] = argv.slice(sep + 1);
if (!o.phase || !o.log || !o.stats) {
  process.stderr.write('run-phase.mjs: --phase, --log and --stats are required\n');
  process.exit(2);
}
if (o['wait-for-stdin'] && !o.stdin) {
  process.stderr.write('run-phase.mjs: --wait-for-stdin needs --stdin FILE\n');
  process.exit(2);
}
// setTimeout takes at most 2^31-1 ms (24.8 days) and fires at once for more: a limit set
// that high to mean "none" would end every session as it starts. Longer limits wait that long.
const MAX_DELAY = 2 ** 31 - 1;
const idleMs = Math.min(Number(o.idle) * 1000, MAX_DELAY);
const wallMs = Math.min(Number(o.wall) * 1000, MAX_DELAY);
// Durations and deadlines are measured on performance.now(): NTP may step the wall clock
// while a phase runs (an hour forward ended a session waiting for its worktree at once;
// ten minutes back froze its live progress for ten minutes). Times people read stay wall-clock.
let started = performance.now();

const stats = {
  phase: o.phase,
  started: new Date().toISOString(),
  finished: null,
  duration_s: 0,
  exit_code: null,
  signal: null,
  killed: null,
  // Killed for silence while a model request was outstanding (no tool call running): the
  // endpoint stopped answering, which is the machine's, not the ticket's (harness_phase_fail).
  awaiting_model: false,
  model_error: false,
  // How Claude Code named that failure (its event's `error`: billing_error, rate_limit,
  // authentication_failed, server_error...): harness_phase_fail tells the machine's from the ticket's by it.
  model_error_kind: null,
  subtype: null,
  is_error: null,
  num_turns: 0,
  cost_usd: 0,
  // Claude Code reports a session's cost only in its result event: a session killed before
  // it (idle, wall clock, a banned action, a cancel) cost something nobody knows.
  cost_reported: false,
  tokens: 0,
  input_tokens: 0,
  output_tokens: 0,
  tool_calls: 0,
  tools: {},
  edits: 0,
  denials: [],
  banned: [],
  mcp_servers: [],
  structured_output: null,
  result: null,
  events: 0,
  // Start-up: when Claude Code was started, got its prompt, and reported itself ready
  // (its init event, after its MCP servers connected).
  spawned_at: null,
  prompt_at: null,
  ready_at: null,
  // Ended by this process at its result event rather than by exiting on its own.
  ended_at_result: false,
};
// The same policy the PreToolUse hook applies (config/<phase>.policy.json).
const policyCtx = o.policy ? loadPolicy(o.policy) : { phase: o.phase, worktree: o.worktree, ticketDir: o['ticket-dir'], ticketWrites: [] };
const pendingBanned = new Map();
/** The usage counted for each reply so far, by message id: [input tokens, output tokens]. */
const usageById = new Map();
/** File edits asked for and not answered yet: an edit counts once its result is not an error (a denied or failed one changed nothing). */
const pendingEdits = new Set();
/** Banned calls the CLI refused itself (a tool it does not have): recorded as denials too. */
const refusedBanned = [];

writeFileSync(o.log, '');
if (o['start-when']) {
  const deadline = performance.now() + wallMs;
  while (!existsSync(o['start-when'])) {
    if (performance.now() > deadline) {
      process.stderr.write(`run-phase.mjs: ${o['start-when']} did not appear within ${o.wall} s\n`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
const waitForStdin = o['wait-for-stdin'];
const stdin = waitForStdin ? 'pipe' : o.stdin ? openSync(o.stdin, 'r') : 'ignore';
// The session works in the worktree: its file tools, git and tests see the ticket's checkout.
const child = spawn(cmd, args, { cwd: o.worktree, stdio: [stdin, 'pipe', 'pipe'], detached: true });
stats.spawned_at = new Date().toISOString();
let killTimer = null;
// The session's process group, for a control plane that must clean up after a crash.
if (o['ticket-dir'] && child.pid) writeFileSync(`${o['ticket-dir']}/phase.pid`, String(child.pid));

/**
 * The tool calls asked for and not answered yet: while there are none, the session waits
 * on the model (its first request, or the next after the tool results went back).
 */
const openToolCalls = new Set();

/** The idle limit's kill: said as the model's silence when no tool call was running. */
function idleKill() {
  if (openToolCalls.size === 0 && !stats.killed) {
    stats.awaiting_model = true;
    kill(`idle: no answer from the model for ${o.idle} s (its endpoint stopped answering)`);
  } else kill(`idle: no stream event for ${o.idle} s`);
}

function kill(reason) {
  if (stats.killed) return;
  stats.killed = reason;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  killTimer = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5000);
}

let idleTimer = null;
let wallTimer = null;
function startClock() {
  started = performance.now();
  stats.started = new Date().toISOString();
  stats.prompt_at = stats.started;
  idleTimer = setTimeout(idleKill, idleMs);
  wallTimer = setTimeout(() => kill(`wall clock: phase exceeded ${o.wall} s`), wallMs);
}

if (waitForStdin) {
  // Hand the prompt over once it exists; give up (and end the session) after the wall limit.
  const deadline = performance.now() + wallMs;
  const poll = setInterval(() => {
    let prompt;
    try {
      prompt = readFileSync(o.stdin);
    } catch {
      if (performance.now() > deadline) {
        clearInterval(poll);
        kill(`no prompt: ${o.stdin} did not appear within ${o.wall} s`);
      }
      return;
    }
    clearInterval(poll);
    startClock();
    child.stdin.on('error', () => undefined); // a session that already exited
    child.stdin.end(prompt);
  }, 10);
  child.once('close', () => clearInterval(poll));
} else {
  startClock();
}

let lastProgress = -Infinity;
/** `done`: the session is over and its numbers are in the stats file (the last snapshot says so). */
function progress(force = false, done = false) {
  if (!o.progress) return;
  const now = performance.now();
  if (!force && now - lastProgress < 1000) return;
  lastProgress = now;
  const snapshot = {
    phase: o.phase,
    elapsed_s: Math.round((now - started) / 1000),
    tokens: stats.tokens,
    tool_calls: stats.tool_calls,
    cost_usd: stats.cost_usd,
    last_tool: stats.lastTool ?? null,
    done,
  };
  writeFileSync(`${o.progress}.tmp`, JSON.stringify(snapshot));
  renameSync(`${o.progress}.tmp`, o.progress);
}

function markReady() {
  if (o['ready-file']) writeFileSync(o['ready-file'], stats.ready_at ?? '');
}

function onEvent(e) {
  stats.events++;
  if (e.type === 'system' && e.subtype === 'init') {
    if (!stats.ready_at) {
      stats.ready_at = new Date().toISOString();
      markReady();
    }
    stats.mcp_servers = (e.mcp_servers ?? []).map((s) => ({ name: s.name, status: s.status }));
  } else if (e.type === 'assistant') {
    // The CLI reports a failed model request (after its retries) as a "<synthetic>" message.
    stats.model_error = e.message?.model === '<synthetic>';
    stats.model_error_kind = stats.model_error && typeof e.error === 'string' ? e.error : null;
    const u = e.message?.usage ?? {};
    const usage = [(u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0), u.output_tokens ?? 0];
    // Claude Code sends one assistant event per content block of a reply (text, then each
    // tool call), each with the reply's id and the same usage: a reply counts once, with
    // the latest usage seen for its id. An event without an id is a reply of its own. (A
    // scripted model that gives every reply one id is counted right by the result's totals.)
    const id = typeof e.message?.id === 'string' ? e.message.id : null;
    const prev = id !== null ? usageById.get(id) : undefined;
    if (id !== null) usageById.set(id, usage);
    stats.input_tokens += usage[0] - (prev?.[0] ?? 0);
    stats.output_tokens += usage[1] - (prev?.[1] ?? 0);
    stats.tokens = stats.input_tokens + stats.output_tokens;
    for (const b of e.message?.content ?? []) {
      if (b.type !== 'tool_use') continue;
      openToolCalls.add(b.id);
      stats.tool_calls++;
      stats.tools[b.name] = (stats.tools[b.name] ?? 0) + 1;
      stats.lastTool = b.name;
      if (['Edit', 'Write', 'MultiEdit', 'NotebookEdit'].includes(b.name)) pendingEdits.add(b.id);
      const d = checkToolUse(b.name, b.input ?? {}, policyCtx);
      if (d) {
        const banned = { tool: b.name, summary: summarizeInput(b.input), reason: d.reason };
        stats.banned.push(banned);
        pendingBanned.set(b.id, banned);
        if (o['on-banned'] === 'kill') kill(`banned action attempted: ${d.reason}`);
      }
    }
  } else if (e.type === 'user') {
    for (const b of Array.isArray(e.message?.content) ? e.message.content : []) {
      if (b.type === 'tool_result') openToolCalls.delete(b.tool_use_id);
      if (b.type === 'tool_result' && pendingEdits.delete(b.tool_use_id) && !b.is_error) stats.edits++;
      if (b.type !== 'tool_result' || !pendingBanned.has(b.tool_use_id)) continue;
      const banned = pendingBanned.get(b.tool_use_id);
      pendingBanned.delete(b.tool_use_id);
      // A banned call that was not refused has run: the first layers failed open.
      if (!b.is_error) kill(`banned action was not denied and ran: ${banned.reason}`);
      else refusedBanned.push(banned);
    }
  } else if (e.type === 'result') {
    stats.subtype = e.subtype ?? null;
    stats.is_error = e.is_error ?? null;
    stats.num_turns = e.num_turns ?? 0;
    stats.cost_usd = e.total_cost_usd ?? 0;
    stats.cost_reported = typeof e.total_cost_usd === 'number';
    stats.result = typeof e.result === 'string' ? e.result.slice(0, 4000) : null;
    // The model endpoint failed (5xx, 529, timeout) after the CLI's own retries.
    stats.api_error_status = e.api_error_status ?? null;
    stats.structured_output = e.structured_output ?? null;
    for (const d of e.permission_denials ?? []) {
      stats.denials.push(denialRecord({ by: 'allowlist', tool: d.tool_name, input: d.tool_input }));
    }
    // The session's totals, where the stream's per-message usage falls short (it reports a
    // message's usage as it starts): the result's usage, and its per-model usage, which is
    // the whole session's even when the result's usage is not (a budget stop).
    const totals = [];
    if (e.usage) {
      const u = e.usage;
      totals.push([(u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0), u.output_tokens ?? 0]);
    }
    if (e.modelUsage && typeof e.modelUsage === 'object') {
      let inTok = 0;
      let outTok = 0;
      for (const m of Object.values(e.modelUsage)) {
        inTok += (Number(m?.inputTokens) || 0) + (Number(m?.cacheReadInputTokens) || 0) + (Number(m?.cacheCreationInputTokens) || 0);
        outTok += Number(m?.outputTokens) || 0;
      }
      totals.push([inTok, outTok]);
    }
    for (const [inTok, outTok] of totals) {
      if (inTok + outTok > stats.tokens) {
        stats.input_tokens = inTok;
        stats.output_tokens = outTok;
        stats.tokens = inTok + outTok;
      }
    }
  }
  progress();
}

const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
lines.on('line', (line) => {
  appendFileSync(o.log, line + '\n');
  if (idleTimer) {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(idleKill, idleMs);
  }
  if (!line.startsWith('{')) return;
  let e;
  try {
    e = JSON.parse(line);
    onEvent(e);
  } catch {
    return; // Not an event (a stray line on stdout): kept in the log, ignored here.
  }
  if (e?.type === 'result' && !stats.killed) {
    stats.ended_at_result = true;
    finish(null, null);
  }
});
child.stderr.on('data', (d) => appendFileSync(`${o.log}.stderr`, d));

child.on('error', (err) => {
  stats.killed = `could not start ${cmd}: ${err.message}`;
});

let finished = false;
// A session is over at its result event: what Claude Code does after it (closing its MCP
// connections, saving its config) is of no use to the run, so the group is ended then and
// the phase is done, instead of waiting for the session to shut itself down.
function finish(code, signal) {
  if (finished) return;
  finished = true;
  clearTimeout(idleTimer);
  clearTimeout(wallTimer);
  if (killTimer) clearTimeout(killTimer);
  // Anything left in the group (a tool's background process) goes with the session.
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // group already empty
  }
  stats.exit_code = code;
  stats.signal = signal;
  stats.finished = new Date().toISOString();
  stats.duration_s = Math.round((performance.now() - started) / 100) / 10;
  if (o['ticket-dir']) {
    try {
      const rows = readFileSync(`${o['ticket-dir']}/denials.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      for (const r of rows.filter((r) => r.phase === o.phase && r.at >= stats.started)) stats.denials.push(denialRecord({ ...r, by: 'hook' }));
    } catch {
      // no hook denials in this run
    }
  }
  // Refused, but neither by the hook nor by the allowlist (e.g. WebFetch, a tool the phase lacks).
  const key = (d) => `${d.tool}\0${d.summary ?? ''}`;
  const recorded = new Set(stats.denials.map(key));
  for (const r of refusedBanned) if (!recorded.has(key(r))) stats.denials.push(denialRecord({ ...r, by: 'cli' }));
  delete stats.lastTool;
  writeFileSync(o.stats, JSON.stringify(stats, null, 2));
  if (!stats.ready_at) markReady();
  progress(true, true);
  const ok = !stats.killed && (code === 0 || stats.ended_at_result) && stats.subtype === 'success' && !stats.is_error;
  process.exit(ok ? 0 : 1);
}
child.on('close', (code, signal) => finish(code, signal));

for (const s of ['SIGTERM', 'SIGINT']) {
  process.on(s, () => kill(`harness received ${s}`));
}
