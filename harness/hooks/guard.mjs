#!/usr/bin/env node
// PreToolUse hook: denies banned tool calls before they run.
// Usage (from the generated --settings file): node guard.mjs --policy <phase>.policy.json
//   (phase, worktree, ticketDir, ticketWrites, writeRoots, mcpTools; see harness/lib/policy.mjs)
// Reads the hook input (JSON) on stdin. A denial is printed as the documented
// hookSpecificOutput (permissionDecision "deny") and appended to
// <ticket-dir>/denials.jsonl for the outcome row: the tool, the reason and a short
// summary of the call, never its whole input (harness/lib/denial.mjs). Hooks fail
// open, so the tool allowlist stays the primary control; this is the second layer.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { denialRecord } from '../lib/denial.mjs';
import { checkToolUse, loadPolicy } from '../lib/policy.mjs';

const { values } = parseArgs({ options: { policy: { type: 'string' } } });
let ctx;
try {
  ctx = loadPolicy(values.policy);
} catch (err) {
  // Without its policy the hook cannot decide: block (exit 2) rather than fail open.
  process.stderr.write(`bugbot guard: ${err.message}\n`);
  process.exit(2);
}

let input;
try {
  input = JSON.parse(readFileSync(0, 'utf8'));
} catch (err) {
  // Unreadable input: deny rather than guess (exit 2 blocks the call).
  process.stderr.write(`bugbot guard: unreadable hook input: ${err.message}\n`);
  process.exit(2);
}

const decision = checkToolUse(String(input.tool_name ?? ''), input.tool_input ?? {}, ctx);
if (!decision) process.exit(0);

if (ctx.ticketDir) {
  const row = { at: new Date().toISOString(), phase: ctx.phase, ...denialRecord({ by: 'hook', tool: input.tool_name, input: input.tool_input, reason: decision.reason }) };
  try {
    appendFileSync(join(ctx.ticketDir, 'denials.jsonl'), JSON.stringify(row) + '\n');
  } catch {
    // The denial itself matters more than its record.
  }
}
process.stdout.write(
  JSON.stringify({
    hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: decision.reason },
  }),
);
