/**
 * A real alert sender: Debian's Prometheus scrapes a metrics endpoint this test
 * serves, an alert rule fires, Debian's Alertmanager delivers the webhook to a
 * running `bugbot start`, and one ticket appears with the alert's service and message.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir, waitFor } from '../support/helpers.ts';
import { freePort, spawnLogged, startBugbot } from '../support/process.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

test('Prometheus + Alertmanager fire a real webhook at bugbot start → one ticket', { timeout: 120_000 }, async (t) => {
  for (const bin of [PROMETHEUS, ALERTMANAGER]) {
    assert.ok(existsSync(bin), `${bin} is missing: run scripts/install-test-deps.sh (apt packages prometheus, prometheus-alertmanager)`);
  }
  const dir = tempDir(t);

  // The scraped application: one error series that the rule turns into an alert.
  const metrics = createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(
      [
        '# HELP petstore_unhandled_errors Unhandled errors in the last minute.',
        '# TYPE petstore_unhandled_errors gauge',
        'petstore_unhandled_errors{service="petstore",route="GET /api/pets/:id",error="TypeError: Cannot read properties of undefined (reading \'owner\')"} 7',
        '',
      ].join('\n'),
    );
  });
  await new Promise<void>((r) => metrics.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => metrics.close(() => r())));
  const metricsPort = (metrics.address() as { port: number }).port;

  const token = 'am-test-token';
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ home: join(dir, 'home'), intake: { settleSeconds: 1 }, triggers: { grafana: { tokenEnv: 'AM_TOKEN' } } }),
  );
  const bugbot = await startBugbot(t, { configPath, env: { AM_TOKEN: token } });

  const amPort = await freePort();
  const promPort = await freePort();
  mkdirSync(join(dir, 'am-data'));
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: bugbot
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: bugbot
    webhook_configs:
      - url: '${bugbot.url}/triggers/grafana'
        send_resolved: true
        http_config:
          authorization:
            credentials: '${token}'
`,
  );
  writeFileSync(
    join(dir, 'rules.yml'),
    `groups:
  - name: petstore
    interval: 1s
    rules:
      - alert: PetstoreUnhandledErrors
        expr: petstore_unhandled_errors > 0
        labels:
          severity: critical
        annotations:
          summary: 'Unhandled errors in {{ $labels.service }}'
          message: '{{ $labels.error }}'
          count: '{{ $value }}'
`,
  );
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['${join(dir, 'rules.yml')}']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:${amPort}']
scrape_configs:
  - job_name: petstore
    static_configs:
      - targets: ['127.0.0.1:${metricsPort}']
`,
  );

  const am = spawnLogged(t, ALERTMANAGER, [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'am-data')}`,
    `--web.listen-address=127.0.0.1:${amPort}`,
    '--cluster.listen-address=',
  ]);
  const prom = spawnLogged(t, PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'prom-data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ]);

  const ticket = await waitFor(
    async () => {
      for (const p of [am, prom]) {
        if (p.proc.exitCode !== null) throw new Error(`${p.proc.spawnfile} exited:\n${p.output()}`);
      }
      const res = await fetch(`${bugbot.url}/api/tickets`);
      const { tickets } = (await res.json()) as {
        tickets: Array<{ service: string; message: string; title: string; state: string; source: string; count: number; severity: string; triageDecision: string }>;
      };
      return tickets.find((x) => x.state !== 'settling');
    },
    90_000,
    'a triaged ticket from Alertmanager',
  );
  assert.equal(ticket.source, 'alertmanager');
  assert.equal(ticket.service, 'petstore');
  assert.equal(ticket.title, 'Unhandled errors in petstore');
  assert.match(ticket.message, /TypeError: Cannot read properties of undefined \(reading 'owner'\)/);
  assert.equal(ticket.count, 7, 'count taken from the count annotation');
  assert.equal(ticket.severity, 'critical');
  // Triaged into the queue (the dispatcher may already have picked it up).
  assert.equal(ticket.triageDecision, 'queue');
  const all = (await (await fetch(`${bugbot.url}/api/tickets`)).json()) as { tickets: unknown[] };
  assert.equal(all.tickets.length, 1, 'exactly one ticket');
});
