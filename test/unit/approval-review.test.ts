/**
 * Approval mode: regressions from a review of who may approve what, and what is merged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoApprovalDecision, globToRegExp, sensitiveFiles, type AutoApproveRules } from '../../control/dispatcher/auto-approve.ts';

const PASSED = { files: '1', insertions: '3', deletions: '1', binary: '0', tests_first_try: 'true', tests_preexisting: '0' };

// Review finding: a sensitive path written as a folder, "infra/" (as .gitignore writes one,
// and as docs/configuration.md names the defaults), became ^infra/(?:/.*)?$, which matches
// no file git names: a fix changing infra/deploy.yaml was auto-approved.
test('auto-approval: a sensitive path written with a trailing slash covers the folder, at any depth like .gitignore', () => {
  for (const [glob, file] of [
    ['infra/', 'infra/k8s/deploy.yaml'],
    ['.github/', '.github/workflows/ci.yml'],
    ['deploy//', 'deploy/prod.env'],
    ['**/auth/', 'src/auth/login.ts'],
    ['secrets/', 'services/api/secrets/key.pem'],
    ['db/migrations/', 'db/migrations/004.sql'],
  ] as const) {
    assert.ok(globToRegExp(glob).test(file), `${glob} matches ${file}`);
  }
  assert.ok(!globToRegExp('infra/').test('infrastructure/x.yaml'), 'the folder, not a name that starts like it');
  assert.ok(!globToRegExp('db/migrations/').test('src/db/migrations/1.sql'), 'a glob with an inner / stays anchored at the root');

  const rules: AutoApproveRules = {
    enabled: true,
    maxFilesChanged: 3,
    maxLinesChanged: 50,
    requireTestsPassed: true,
    maxSeverity: 'medium',
    sensitivePaths: ['infra/', '.github/'],
  };
  assert.deepEqual(sensitiveFiles(['src/pets.ts', 'infra/deploy.yaml'], rules.sensitivePaths), ['infra/deploy.yaml']);
  const d = autoApprovalDecision({ severity: 'low' }, PASSED, ['infra/deploy.yaml'], rules);
  assert.equal(d.approve, false, d.reason);
  assert.match(d.reason, /sensitive paths touched: infra\/deploy\.yaml/);
});
