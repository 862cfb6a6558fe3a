/**
 * What grows with every fix in the target repository: approval mode pushes each run's
 * branch (`bot/ticket-...`), which leaves a remote-tracking ref `refs/remotes/<remote>/bot/...`
 * in the shared checkout, and an approval's merge fetches it again (harness/merge.sh). The
 * local branch goes after retention.runFoldersDays; the remote-tracking ref must go with
 * it, or one more ref (and the run's commits, reachable for good) stays for every fix ever.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { Retention } from '../../control/retention.ts';
import type { TicketState } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, FakeClock, tempDir, testConfig } from '../support/helpers.ts';

test("an expired run's remote-tracking branch goes with its local branch; kept runs', recent ones' and the remote's own stay", async (t) => {
  const dir = tempDir(t);
  const origin = join(dir, 'origin.git');
  const repo = join(dir, 'target');
  const run = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, '-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args], { encoding: 'utf8' });
  const git = (...args: string[]) => run(repo, ...args);
  mkdirSync(origin);
  run(origin, 'init', '-q', '--bare', '-b', 'main');
  execFileSync('git', ['clone', '-q', origin, repo], { stdio: 'ignore' });
  git('commit', '-q', '--allow-empty', '-m', 'base');
  git('push', '-q', 'origin', 'HEAD:refs/heads/main');

  const home = join(dir, 'home');
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0, cascadeSeconds: 0 }, retention: { eventsDays: 0, runFoldersDays: 30 }, target: { repo, remote: 'origin' } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const retention = new Retention({ config, store, logger: silentLogger });

  /** A finished run whose branch was pushed for approval (harness_push_branch), as approval mode does. */
  const pushedRun = (name: string, state: TicketState, opts: { keepLocal?: boolean } = {}): string => {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "${name}")`, title: name, route: `GET /${name}`, sourceEventId: name })]);
    const claim = claimNext(store, 1, null, 600)!;
    const branch = `bot/ticket-${claim.ticket.id}-20261121T10000${claim.run.id}`;
    store.stmt('UPDATE runs SET branch = ? WHERE id = ?').run(branch, claim.run.id);
    git('branch', branch);
    git('push', '-q', '--force-with-lease', 'origin', `${branch}:refs/heads/${branch}`);
    // The worker removes nothing; an approval's merge fetches the branch again (merge.sh).
    git('fetch', '-q', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`);
    if (opts.keepLocal === false) git('branch', '-D', branch);
    finishRun(store, claim.run.id, { ticketState: state, outcome: 'clean', reason: name });
    return branch;
  };
  const tracking = () => git('for-each-ref', '--format=%(refname:short)', 'refs/remotes/origin/').split('\n').filter(Boolean).sort();
  const onOrigin = () => run(origin, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/').split('\n').filter(Boolean).sort();

  const merged = pushedRun('merged', 'pushed');
  const skipped = pushedRun('skipped', 'dropped');
  // Its local branch already gone (deleted by hand, or by a pass before this one): its remote-tracking ref still goes.
  const localGone = pushedRun('local-gone', 'failed', { keepLocal: false });
  const waiting = pushedRun('waiting', 'awaiting_approval');
  clock.advance(31 * 86_400);
  const recent = pushedRun('recent', 'pushed');
  assert.equal(tracking().length, 6, 'origin/main and one remote-tracking branch per pushed run');

  const r = await retention.sweep();

  assert.deepEqual(tracking(), ['origin/main', `origin/${recent}`, `origin/${waiting}`].sort());
  assert.equal(r.branches, 2, 'the expired runs still holding a local branch');
  assert.equal(r.trackingBranches, 3);
  assert.ok(![merged, skipped, localGone].some((b) => tracking().includes(`origin/${b}`)));
  assert.deepEqual(onOrigin(), [merged, skipped, localGone, waiting, recent, 'main'].sort(), 'the branches on the remote are left as they are');
  const again = await retention.sweep();
  assert.equal(again.trackingBranches, undefined, 'nothing left to delete');

  // Days later the recent run expires too, and its remote-tracking branch goes then.
  clock.advance(31 * 86_400);
  assert.equal((await retention.sweep()).trackingBranches, 1);
  assert.deepEqual(tracking(), ['origin/main', `origin/${waiting}`].sort());
});
