/**
 * Model-based classification of free-text reports: one tool-less `claude -p` call
 * with `--json-schema` (the CLI enforces the shape through its StructuredOutput tool).
 * Used by intake when `triage.classifier` is "model"; any failure falls back to the
 * rule classifier, with the reason saying so.
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
  timeoutMs?: number;
}

export type Classifier = (text: string) => Promise<ModelClassification>;

export function createModelClassifier(opts: ModelClassifierOptions): Classifier {
  const instructions = readFileSync(join(opts.promptsDir, 'triage.md'), 'utf8');
  return async (text) => {
    try {
      return await runModel(instructions, text, opts);
    } catch (err) {
      const rules = classifyText(text);
      return { ...rules, by: 'rules', reason: `${rules.reason} (model classifier unavailable: ${(err as Error).message})` };
    }
  };
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
  child.stdin.end(`${instructions}\n\n${fence('report', text.slice(0, 20_000))}\n`);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no answer within ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(home, { recursive: true, force: true });
      try {
        const result = JSON.parse(out) as { structured_output?: Record<string, string>; is_error?: boolean; result?: string };
        const s = result.structured_output;
        if (!s || !['bug', 'feature', 'question', 'noise'].includes(s.classification ?? '')) {
          throw new Error(`no classification in the answer (exit ${code}${result.result ? `: ${result.result.slice(0, 200)}` : ''})`);
        }
        const cls = s.classification as Classification;
        resolve({
          classification: cls,
          reason: `model: ${s.reason ?? ''}`.trim(),
          scores: { bug: 0, feature: 0, question: 0, noise: 0, [cls]: 1 },
          by: 'model',
          ...(s.service ? { service: s.service } : {}),
          ...(s.route ? { route: s.route } : {}),
          ...(s.error_text ? { errorText: s.error_text } : {}),
        });
      } catch (err) {
        reject(err instanceof SyntaxError ? new Error(`unreadable answer (exit ${code})`) : err);
      }
    });
  });
}
