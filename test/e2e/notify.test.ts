/**
 * The "fixed and live" email, end to end (issue 6): a customer's email arrives at a
 * running `bugbot start` (POST /triggers/email/raw), the REAL Claude Code CLI (scripted
 * model) fixes the pet shop bug and the harness pushes it to staging, and only then a
 * real SMTP server receives one reply, threaded under the customer's message.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { repoRoot, waitFor } from '../support/helpers.ts';
import { happyPathScripts, setupPipeline } from '../support/pipeline.ts';
import { startBugbot } from '../support/process.ts';
import { mailHeader, TestSmtpServer } from '../support/smtp.ts';

const SMTP_USER = 'bugbot-mailer';
const SMTP_PASS = 'smtp-e2e-secret';
const MESSAGE_ID = '<stray-owner-1@mail.petshop-customer.test>';

/** The customer's report, as their mail client sent it (RFC 5322, CRLF). */
const REPORT = [
  'From: Megan Stone <megan@petshop-customer.test>',
  'To: support@petshop.test',
  'Subject: Stray pets page crashes',
  'Date: Mon, 2 Mar 2026 09:12:00 +0000',
  `Message-ID: ${MESSAGE_ID}`,
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hi, opening a stray pet (GET /api/pets/5) shows an error page:',
  "TypeError: Cannot read properties of undefined (reading 'name')",
  '',
  'Megan',
  '',
].join('\r\n');

test('email report → fix pushed to staging → one threaded "fixed and live" reply, never before', { timeout: 300_000 }, async (t) => {
  let origin = '';
  const smtp = new TestSmtpServer({
    user: SMTP_USER,
    pass: SMTP_PASS,
    // What staging holds in the origin at the moment the mail arrives.
    onDelivered: () => execFileSync('git', ['rev-parse', 'staging'], { cwd: origin, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
  });
  const port = await smtp.listen();
  t.after(() => smtp.close());
  const env = await setupPipeline(t, {
    notify: { email: { host: '127.0.0.1', port, from: 'Pet Shop bugbot <bugbot@petshop.test>', requireTLS: false } },
  } as ConfigFile);
  origin = env.target.origin;
  for (const [phase, steps] of Object.entries(happyPathScripts(env))) env.model.script(phase, steps);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: { ...env.env, BUGBOT_SMTP_USER: SMTP_USER, BUGBOT_SMTP_PASSWORD: SMTP_PASS } });
  assert.match(bugbot.output(), /notify: .*email via 127\.0\.0\.1:\d+/);

  const res = await fetch(`${bugbot.url}/triggers/email/raw`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: REPORT });
  assert.equal(res.status, 200, await res.clone().text());
  const filed = (await res.json()) as { results: { ticket: number; state: string }[] };
  assert.equal(filed.results[0]!.state, 'queued');
  const id = filed.results[0]!.ticket;

  const ticket = async () => ((await (await fetch(`${bugbot.url}/api/tickets/${id}`)).json()) as { ticket: { state: string } }).ticket;
  await waitFor(async () => (await ticket()).state === 'running', 60_000, 'the worker to start');
  assert.equal(smtp.delivered.length, 0, 'no mail while the fix is being made');
  await waitFor(async () => ['pushed', 'failed', 'needs_human'].includes((await ticket()).state), 240_000, 'the run to end');
  assert.equal((await ticket()).state, 'pushed', bugbot.output().slice(-3000));

  const staging = env.target.originGit('rev-parse', 'staging');
  const d = await waitFor(() => smtp.delivered[0], 20_000, 'the fixed email');
  assert.equal(d.seen, staging, 'the mail went out after the fix was on staging');
  assert.deepEqual(d.rcptTo, ['megan@petshop-customer.test']);
  assert.equal(d.user, SMTP_USER);
  assert.equal(d.mail.inReplyTo, MESSAGE_ID);
  assert.equal(d.mail.references, MESSAGE_ID);
  assert.equal(d.mail.subject, 'Re: Stray pets page crashes');
  assert.equal(mailHeader(d.mail, 'auto-submitted'), 'auto-replied');
  assert.match(d.mail.text ?? '', new RegExp(`fixed and live: the fix is on staging, commit ${staging.slice(0, 7)}`));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(smtp.delivered.length, 1, 'exactly one reply');
  assert.ok(!bugbot.output().includes(SMTP_PASS) && !bugbot.output().includes('megan@'), 'neither the password nor the address is logged');
});

test('a stop while the mail server refuses for now: the reply stays in the outbox and goes out once, after the next start', { timeout: 300_000 }, async (t) => {
  const smtp = new TestSmtpServer({ user: SMTP_USER, pass: SMTP_PASS });
  const port = await smtp.listen();
  t.after(() => smtp.close());
  const env = await setupPipeline(t, {
    notify: { email: { host: '127.0.0.1', port, from: 'Pet Shop bugbot <bugbot@petshop.test>', requireTLS: false, retryDelaysSeconds: [600] } },
  } as ConfigFile);
  for (const [phase, steps] of Object.entries(happyPathScripts(env))) env.model.script(phase, steps);
  const secrets = { ...env.env, BUGBOT_SMTP_USER: SMTP_USER, BUGBOT_SMTP_PASSWORD: SMTP_PASS };
  const first = await startBugbot(t, { configPath: env.configPath, env: { ...secrets, BUGBOT_LOG_LEVEL: 'info' } });
  smtp.temporaryRefusals = 1_000;
  const res = await fetch(`${first.url}/triggers/email/raw`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: REPORT });
  assert.equal(res.status, 200, await res.clone().text());
  const id = ((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket;
  const state = async (url: string) => ((await (await fetch(`${url}/api/tickets/${id}`)).json()) as { ticket: { state: string } }).ticket.state;
  await waitFor(async () => ['pushed', 'failed', 'needs_human'].includes(await state(first.url)), 240_000, 'the run to end');
  assert.equal(await state(first.url), 'pushed', first.output().slice(-3000));
  // Refused for now (451): it waits 600 s to try again, and bugbot is stopped meanwhile.
  await waitFor(() => /"retryInSeconds":600/.test(first.output()), 30_000, 'the first refusal');
  first.proc.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);
  assert.match(first.output(), /notification not sent yet; it goes out at the next start/);
  assert.equal(smtp.delivered.length, 0);

  smtp.temporaryRefusals = 0;
  const second = await startBugbot(t, { configPath: env.configPath, env: { ...secrets, BUGBOT_LOG_LEVEL: 'info' } });
  const d = await waitFor(() => smtp.delivered[0], 20_000, 'the reply after the restart');
  assert.deepEqual(d.rcptTo, ['megan@petshop-customer.test']);
  assert.equal(d.mail.inReplyTo, MESSAGE_ID);
  assert.match(second.output(), /sending notifications left unsent/);
  second.proc.kill('SIGTERM');
  await second.exited;
  // A third start finds nothing left to send.
  const third = await startBugbot(t, { configPath: env.configPath, env: secrets });
  await new Promise((r) => setTimeout(r, 1000));
  third.proc.kill('SIGTERM');
  await third.exited;
  assert.equal(smtp.delivered.length, 1, 'exactly one reply');
  // `bugbot ticket` says who was told what.
  const shown = execFileSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', env.configPath, 'ticket', String(id)], { encoding: 'utf8' });
  assert.match(shown, /reporters told:\n {2}fixed → email to reporter 1: sent after 2 tries\n/, shown);
});
