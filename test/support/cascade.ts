/**
 * Intake on a fake clock, for the cascade tests: errors of one service (alertEvent's
 * `petstore`), each its own fingerprint, severity high unless told otherwise.
 */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { Intake } from '../../control/intake/index.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, FakeClock, tempDir, testConfig } from './helpers.ts';

export function cascadeSetup(t: TestContext, flags: ConfigFile = {}) {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 30 }, ...flags });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 's' }) });
  /** One occurrence, seen now, of error `n` (a digit names a letter: numbers do not tell fingerprints apart). */
  const error = (n: number | string, over: Partial<TriggerEvent> = {}) => {
    const at = clock.now().toISOString();
    const word = typeof n === 'number' ? 'abcdefgh'[n] : n;
    return intake.accept([alertEvent({ title: `Error ${n}`, message: `Error: failure number ${word} in the pet lookup`, route: `GET /api/e${word}`, labels: { severity: 'error' }, firstSeen: at, lastSeen: at, ...over })])[0]!;
  };
  /**
   * Error 1, then error 2 ten seconds later (`member(at)`: more of its event, given the time
   * it began), both settled: the second held in the first's cascade.
   */
  const heldPair = (member: (at: string) => Partial<TriggerEvent> = () => ({})) => {
    const head = error(1).ticketId!;
    clock.advance(10);
    const memberAt = clock.now().toISOString();
    const held = error(2, member(memberAt)).ticketId!;
    clock.advance(31);
    intake.settleDue();
    return { head, member: held, memberAt };
  };
  /** The next queued ticket's run, ended as `ticketState` (pushed: its fix is live from now); the run's ticket. */
  const endRun = (ticketState: 'pushed' | 'failed') => {
    const run = claimNext(store, 1, 4001, 600)!;
    finishRun(store, run.run.id, { ticketState, outcome: ticketState === 'pushed' ? 'clean' : 'failed', reason: ticketState === 'pushed' ? 'pushed to staging' : 'no fix' });
    return run.ticket.id;
  };
  return { clock, config, store, intake, error, heldPair, endRun };
}
