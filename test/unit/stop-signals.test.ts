/**
 * `bugbot start`'s signals: the first stops it gracefully; while it stops, a second Ctrl-C
 * leaves at once saying what it leaves behind, and a repeated SIGTERM or SIGHUP (a service
 * manager, a closed terminal) changes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stopOnSignals } from '../../control/cli.ts';
import { silentLogger } from '../../control/log.ts';

function harness(workers: number) {
  const written: string[] = [];
  const exits: number[] = [];
  let stops = 0;
  let finish: () => void = () => {};
  const onSignal = stopOnSignals({
    logger: silentLogger,
    budgetMs: 60_000,
    workers: () => workers,
    stop: () => {
      stops++;
      return new Promise<void>((resolve) => (finish = resolve));
    },
    write: (text) => written.push(text),
    exit: (code) => exits.push(code),
  });
  return { onSignal, written, exits, stops: () => stops, finish: () => finish() };
}

test('a second Ctrl-C while workers stop quits at once, saying what the next start does; a repeated TERM or HUP does nothing', () => {
  const h = harness(2);
  h.onSignal('SIGINT');
  assert.deepEqual(h.written, ['stopping (SIGINT): 2 worker(s) commit their partial work and clean up first; their tickets go back to the queue (Ctrl-C again to quit at once)\n']);
  assert.equal(h.stops(), 1);
  h.onSignal('SIGTERM');
  h.onSignal('SIGHUP');
  assert.equal(h.stops(), 1, 'one stop');
  assert.deepEqual(h.exits, []);
  h.onSignal('SIGINT');
  assert.deepEqual(h.exits, [130]);
  assert.equal(h.written[1], 'quitting now: 2 worker(s) left to finish on their own; the next bugbot start stops what is still running and requeues their tickets\n');
});

test('a stop that ends exits 0; with no workers the message says nothing of them', async () => {
  const h = harness(0);
  h.onSignal('SIGTERM');
  assert.deepEqual(h.written, ['stopping (SIGTERM)\n']);
  h.finish();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.exits, [0]);
});
