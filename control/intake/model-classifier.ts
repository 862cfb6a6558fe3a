/**
 * Model-based classification of free-text reports: one tool-less `claude -p` call
 * with `--json-schema` (the CLI enforces the shape through its StructuredOutput tool).
 * Used by intake for emailed reports when `triage.classifier` is "model" (a Slack
 * mention must be acknowledged within 3 s: its thread is classified by the rules); any
 * failure, a timeout or calls beyond the limit fall back to the rule classifier, with the
 * reason saying so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fence } from '../dispatcher/brief.ts';
import type { Classification } from '../types.ts';
import { classifyText, type ClassifyResult } from './classify.ts';

export const TRIAGE_SCHEMA = {
  type: 'object',
  properties: {
    classification: { type: 'string', enum: ['bug', 'feature', 'question', 'noise'] },
    reason: { type: 'string' },
    service: { type: 'string' },
    route: { type: 'string' },
    error_text: { type: 'string' },
  },
  required: ['classification', 'reason'],
  additionalProperties: false,
} as const;

export interface ModelClassification extends ClassifyResult {
  service?: string;
  route?: string;
  errorText?: string;
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
  /** Calls at once (default 2): a flood of reports is not a flood of model sessions; beyond it, the rules decide. */
  concurrency?: number;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** The rules' bug score at which the model's "not a bug" does not drop a report. */
const STRONG_BUG = 5;

export type Classifier = (text: string) => Promise<ModelClassification>;

export function createModelClassifier(opts: ModelClassifierOptions): Classifier {
  const instructions = readFileSync(join(opts.promptsDir, 'triage.md'), 'utf8');
  const limit = opts.concurrency ?? 2;
  let running = 0;
  return async (text) => {
    const byRules = (why: string): ModelClassification => {
      const rules = classifyText(text);
      return { ...rules, by: 'rules', reason: `${rules.reason} (model classifier ${why})` };
    };
    if (running >= limit) return byRules(`busy: ${running} call(s) under way`);
    running++;
    try {
      const model = await runModel(instructions, text, opts);
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
    } finally {
      running--;
    }
  };
}

/** A string field of the answer, trimmed and cut; anything else (an object, a number) is dropped. */
function field(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim().slice(0, max);
  return t || undefined;
}

function runModel(instructions: string, text: string, opts: ModelClassifierOptions): Promise<ModelClassification> {
  const home = mkdtempSync(join(tmpdir(), 'bugbot-triage-'));
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
  const child = spawn(opts.claude, args, {
    cwd: home,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: home, CLAUDE_CONFIG_DIR: join(home, 'config'), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', ...opts.env },
  });
  // A CLI that exits before reading (a bad flag, a wrapper without its binary) breaks the
  // pipe: an unhandled EPIPE would end the control plane; the exit is reported by 'close'.
  child.stdin.on('error', () => undefined);
  child.stdin.end(`${instructions}\n\n${fence('report', text.slice(0, 20_000))}\n`);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.resume();
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(home, { recursive: true, force: true });
      try {
        const result = JSON.parse(out) as { structured_output?: Record<string, unknown>; is_error?: boolean; result?: unknown };
        const s = result.structured_output;
        const cls = s && typeof s === 'object' ? s.classification : undefined;
        if (typeof cls !== 'string' || !['bug', 'feature', 'question', 'noise'].includes(cls)) {
          const said = typeof result.result === 'string' ? `: ${result.result.slice(0, 200)}` : '';
          throw new Error(`no classification in the answer (exit ${code}${said})`);
        }
        const service = field(s!.service, 200);
        const route = field(s!.route, 200);
        const errorText = field(s!.error_text, 2000);
        resolve({
          classification: cls as Classification,
          reason: `model: ${field(s!.reason, 500) ?? ''}`.trim(),
          scores: { bug: 0, feature: 0, question: 0, noise: 0, [cls]: 1 },
          by: 'model',
          ...(service ? { service } : {}),
          ...(route ? { route } : {}),
          ...(errorText ? { errorText } : {}),
        });
      } catch (err) {
        reject(err instanceof SyntaxError ? new Error(`unreadable answer (exit ${code})`) : err);
      }
    });
  });
}
