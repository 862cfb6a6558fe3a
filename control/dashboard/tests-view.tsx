/**
 * A run's test counts as an approver needs them. The harness's gate lets a fix through
 * when every failing test also fails on the base branch (other open bugs; docs/harness.md),
 * so "2 failed" on a clean fix is normal, and the page must say which failures are not
 * this fix's, and make any other failure stand out.
 */

export interface TestCounts {
  passed: number | null;
  failed: number | null;
  /** Failures the base branch has too; null when not recorded (an older row, a run stopped before its push). */
  preexisting: number | null;
}

const count = (v: unknown): number | null => {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : null;
};

/**
 * The counts from an outcome row's `tests` (harness/lib/outcome.mjs writes
 * `preexisting_failures` beside passed and failed), else the run's push.env
 * (`tests_preexisting`), or null when neither recorded any.
 */
export function testCounts(tests: unknown, push?: Record<string, string>): TestCounts | null {
  const t = typeof tests === 'object' && tests !== null ? (tests as Record<string, unknown>) : {};
  const passed = count(t.passed);
  const failed = count(t.failed);
  if (passed === null && failed === null) return null;
  return { passed, failed, preexisting: count(t.preexisting_failures) ?? count(push?.tests_preexisting) };
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * "5 passed, 2 failed (2 also fail on the base branch: not this fix's)". Failures beyond
 * those the harness recorded as failing on the base branch too (none recorded: all of
 * them) are set apart in red: they may be this fix's.
 */
export function TestResult(props: { tests: TestCounts | null }) {
  const t = props.tests;
  if (!t) return <span class="muted">—</span>;
  const failed = t.failed ?? 0;
  const counts = `${t.passed !== null ? `${t.passed} passed, ` : ''}${failed} failed`;
  if (failed === 0) return <span class="tests">{counts}</span>;
  const old = Math.min(failed, t.preexisting ?? 0);
  const fresh = failed - old;
  const oldText = `${plural(old, 'also fails', 'also fail')} on the base branch: not this fix's`;
  return (
    <span class="tests" data-new-failures={fresh}>
      {`${counts} (`}
      {fresh ? <strong class="tests-new">{`${fresh} not known to fail on the base branch`}</strong> : null}
      {fresh && old ? '; ' : ''}
      {old ? oldText : ''}
      {')'}
    </span>
  );
}
