/**
 * Model-based classification of free-text reports: one tool-less `claude -p` call
 * with `--json-schema` (the CLI enforces the shape through its StructuredOutput tool).
 * Used by intake for emailed reports when `triage.classifier` is "model" (a Slack
 * mention must be acknowledged within 3 s: its thread is classified by the rules); any
 * failure, a timeout or calls beyond the limits (at once, and in an hour) fall back to the
 * rule classifier, with the reason saying so.
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fence } from '../dispatcher/brief.ts';
import type { Classification } from '../types.ts';
import { classifyText, type ClassifyResult } from './classify.ts';

/**
 * The answer's shape. No error text is asked for: the report's own text, which the ticket
 * and the brief carry whole, is what its fingerprint reads.
 */
export const TRIAGE_SCHEMA = {
  type: 'object',
  properties: {
    classification: { type: 'string', enum: ['bug', 'feature', 'question', 'noise'] },
    reason: { type: 'string' },
    service: { type: 'string' },
    route: { type: 'string' },
  },
  required: ['classification', 'reason'],
  additionalProperties: false,
} as const;

export interface ModelClassification extends ClassifyResult {
  /** The service the model read in the report: kept on the ticket as a label (email-routes.ts), never fingerprinted. */
  service?: string;
  /** The route or page the model read in the report: kept on the ticket as a label, never fingerprinted. */
  route?: string;
  by: 'model' | 'rules';
}

export interface ModelClassifierOptions {
  claude: string;
  promptsDir: string;
  /** Model endpoint credentials (ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL / CLAUDE_CODE_OAUTH_TOKEN). */
  env: Record<string, string>;
  model?: string;
  /** How long a report's acknowledgement may wait for the model (default 20 s); then the rules decide. */
  timeoutMs?: number;
  /**
   * Calls at once (default 2): a flood of reports is not a flood of model sessions; beyond
   * it, the rules decide. A call holds its slot until its processes are gone, past its timeout.
   */
  concurrency?: number;
  /**
   * Calls started in any hour (default 60). Anyone who can write to the bug inbox decides
   * how many reports there are: without it, a flood of thousands of emails is a model
   * call each, one after another, for as long as it lasts.
   */
  callsPerHour?: number;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const DEFAULT_CALLS_PER_HOUR = 60;
const HOUR_MS = 3_600_000;
/** How long a timed-out CLI has to exit on SIGTERM before its process group is killed. */
export const KILL_GRACE_MS = 2_000;
/** The rules' bug score at which the model's "not a bug" does not drop a report. */
const STRONG_BUG = 5;

export type Classifier = (text: string) => Promise<ModelClassification>;

export function createModelClassifier(opts: ModelClassifierOptions): Classifier {
  const instructions = readFileSync(join(opts.promptsDir, 'triage.md'), 'utf8');
  const limit = opts.concurrency ?? 2;
  const perHour = opts.callsPerHour ?? DEFAULT_CALLS_PER_HOUR;
  const now = opts.now ?? Date.now;
  let running = 0;
  /** When each call of the last hour started, oldest first. */
  const started: number[] = [];
  return async (text) => {
    const byRules = (why: string): ModelClassification => {
      const rules = classifyText(text);
      return { ...rules, by: 'rules', reason: `${rules.reason} (model classifier ${why})` };
    };
    if (running >= limit) return byRules(`busy: ${running} call(s) under way`);
    const at = now();
    while (started.length > 0 && started[0]! <= at - HOUR_MS) started.shift();
    if (started.length >= perHour) return byRules(`over its limit: ${started.length} calls in the last hour`);
    started.push(at);
    // The slot is given back when the CLI's processes are gone, not when the report stops
    // waiting: a timed-out CLI still running would let a flood of reports start more
    // sessions than the limit.
    running++;
    const run = runModel(instructions, text, opts);
    void run.gone.then(() => running--);
    try {
      const model = await run.answer;
      // A report the rules read as plainly a bug (two signals or more) is not dropped on the
      // model's word alone: the model reads the report, so the report can talk it round
      // ("classify this as noise"), and a look is cheaper than a lost bug.
      const rules = classifyText(text);
      if (model.classification !== 'bug' && rules.classification === 'bug' && rules.scores.bug >= STRONG_BUG) {
        return { ...model, classification: 'bug', scores: rules.scores, reason: `${model.reason}; but the report reads as a bug (${rules.reason}): looked at` };
      }
      return model;
    } catch (err) {
      return byRules(`unavailable: ${(err as Error).message}`);
    }
  };
}

/** A string field of the answer, trimmed and cut; anything else (an object, a number) is dropped. */
function field(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim().slice(0, max);
  return t || undefined;
}

/**
 * The CLIs under way. Detached, they would outlive a control plane that exits first (a
 * Ctrl-C reaches its process group, not theirs): their groups are killed on the way out.
 */
const live = new Set<ChildProcess>();
let exitHooked = false;

function track(child: ChildProcess): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => live.forEach((c) => signalGroup(c, 'SIGKILL')));
  }
  live.add(child);
}

interface ModelRun {
  /** The model's classification; rejected at the timeout, while the CLI may still be stopping. */
  answer: Promise<ModelClassification>;
  /** Resolves once the CLI has closed, its process group is killed and its folder removed; never rejects. */
  gone: Promise<void>;
}

function runModel(instructions: string, text: string, opts: ModelClassifierOptions): ModelRun {
  let home: string;
  try {
    home = mkdtempSync(join(tmpdir(), 'bugbot-triage-'));
  } catch (err) {
    return { answer: Promise.reject(err as Error), gone: Promise.resolve() };
  }
  const args = [
    '-p',
    '--output-format',
    'json',
    '--json-schema',
    JSON.stringify(TRIAGE_SCHEMA),
    '--tools',
    '',
    '--allowedTools',
    'StructuredOutput',
    '--permission-mode',
    'dontAsk',
    '--strict-mcp-config',
    '--setting-sources',
    'user',
    '--no-session-persistence',
    '--max-turns',
    '3',
    ...(opts.model ? ['--model', opts.model] : []),
  ];
  let child: ChildProcessWithoutNullStreams;
  try {
    // Detached: the CLI leads its own process group, so a timeout stops what it started too
    // (a wrapper's real CLI, its helpers), not only the process spawned here.
    child = spawn(opts.claude, args, {
      cwd: home,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Two retries: the CLI's own default (ten, backing off to half a minute) outlasts the
      // timeout, so a failing or rate-limited endpoint held every report for all of it, and
      // its reason said "no answer" instead of the endpoint's error.
      env: { PATH: process.env.PATH, HOME: home, CLAUDE_CONFIG_DIR: join(home, 'config'), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', CLAUDE_CODE_MAX_RETRIES: '2', ...opts.env },
    });
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    return { answer: Promise.reject(err as Error), gone: Promise.resolve() };
  }
  track(child);
  const group = (signal: NodeJS.Signals) => signalGroup(child, signal);
  // A CLI that exits before reading (a bad flag, a wrapper without its binary) breaks the
  // pipe: an unhandled EPIPE would end the control plane; the exit is reported by 'close'.
  child.stdin.on('error', () => undefined);
  child.stdin.end(`${instructions}\n\n${fence('report', text.slice(0, 20_000))}\n`);
  let out = '';
  // Decoded as a stream: a character cut between two reads (a reason in Japanese, an
  // emoji) would otherwise reach the ticket as replacement characters.
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  child.stderr.resume();

  let gone!: () => void;
  const goneP = new Promise<void>((resolve) => (gone = resolve));
  const answer = new Promise<ModelClassification>((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let grace: NodeJS.Timeout | undefined;
    // The report stops waiting at the timeout; the CLI gets SIGTERM to end its session
    // cleanly, then SIGKILL for what is still there.
    const timer = setTimeout(() => {
      reject(new Error(`no answer within ${timeoutMs} ms`));
      group('SIGTERM');
      grace = setTimeout(() => group('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    let closed = false;
    // 'close' comes on every path, a failed spawn's included (after its 'error'), once
    // nothing holds the CLI's output open.
    const finish = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearTimeout(grace);
      group('SIGKILL');
      live.delete(child);
      rmSync(home, { recursive: true, force: true });
      gone();
    };
    // What the CLI left running in its group would keep its output open (no 'close') and
    // outlive the call: it goes once the CLI has exited; what it wrote is still in the pipe.
    // One that left its group (setsid, a daemon) is out of reach and may hold the output
    // open for good: a moment after the exit, the pipes are let go, and 'close' comes.
    child.on('exit', () => {
      group('SIGKILL');
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, EXIT_PIPE_GRACE_MS).unref();
    });
    child.on('error', (err) => {
      // A spawn that failed has no process to wait for: its slot is free before the report
      // hears of it, as after a 'close'.
      if (child.pid === undefined) finish();
      reject(err);
    });
    child.on('close', (code) => {
      finish();
      try {
        resolve(parseAnswer(out, code));
      } catch (err) {
        reject(err instanceof SyntaxError ? new Error(`unreadable answer (exit ${code})`) : (err as Error));
      }
    });
  });
  return { answer, gone: goneP };
}

/** How long the CLI's output may stay open after it exited (a process it started still writing). */
const EXIT_PIPE_GRACE_MS = 250;

/** Signal the CLI's process group; one already gone is fine. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    // ESRCH: nothing left in the group. Anything else (no process groups here): the CLI alone.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') child.kill(signal);
  }
}

/** The classification in the CLI's JSON output; throws, saying why, when there is none. */
function parseAnswer(out: string, code: number | null): ModelClassification {
  const result = JSON.parse(out) as { structured_output?: Record<string, unknown>; is_error?: boolean; result?: unknown };
  const s = result.structured_output;
  const cls = s && typeof s === 'object' ? s.classification : undefined;
  if (typeof cls !== 'string' || !['bug', 'feature', 'question', 'noise'].includes(cls)) {
    const said = typeof result.result === 'string' ? `: ${result.result.slice(0, 200)}` : '';
    throw new Error(`no classification in the answer (exit ${code}${said})`);
  }
  const service = field(s!.service, 200);
  const route = field(s!.route, 200);
  return {
    classification: cls as Classification,
    reason: `model: ${field(s!.reason, 500) ?? ''}`.trim(),
    scores: { bug: 0, feature: 0, question: 0, noise: 0, [cls]: 1 },
    by: 'model',
    ...(service ? { service } : {}),
    ...(route ? { route } : {}),
  };
}
