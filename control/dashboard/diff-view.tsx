/**
 * The side-by-side diff: old on the left, new on the right, a run of deleted
 * lines facing the lines that replace it. Every line is text (escaped by JSX).
 */
import { redactLines } from '../../lib/redact.ts';
import type { Scrub } from './data.ts';
import { sideBySide, type DiffLine, type RunDiff } from './git-diff.ts';
import { hasHidden, Shown } from './hidden-chars.tsx';

/** Rows drawn per page; past this the view says how much it left out. */
const MAX_ROWS = 4000;

/** One side of a row; its text is redacted already. */
function Cell(props: { line: DiffLine | null; side: 'old' | 'new' }) {
  const { line } = props;
  if (!line) {
    return (
      <>
        <td class="ln none"></td>
        <td class="none"></td>
      </>
    );
  }
  const cls = line.kind === 'ctx' ? undefined : line.kind;
  return (
    <>
      <td class="ln">{props.side === 'old' ? line.old : line.new}</td>
      <td class={cls}>
        <Shown text={line.text} what="code" />
      </td>
    </>
  );
}

/** The heading of a file whose name git wrote in a way the parser cannot read. */
export const UNNAMED = '(a file whose name could not be read)';

/** `scrub` redacts the lines (agent-written code); `mask` only hides secret values (git's own messages). */
export function DiffView(props: { diff: RunDiff | { error: string } | null; scrub: Scrub; mask: Scrub }) {
  const { diff, scrub } = props;
  if (!diff) return <p class="muted">No diff: this run has no branch or commit.</p>;
  if ('error' in diff) return <p class="muted">No diff: {props.mask(diff.error)}</p>;
  if (!diff.files.length) return <p class="muted">{`${diff.ref} has no changes against ${diff.base}.`}</p>;
  let budget = MAX_ROWS;
  let left = 0;
  const adds = diff.files.reduce((a, f) => a + f.additions, 0);
  const dels = diff.files.reduce((a, f) => a + f.deletions, 0);
  return (
    <div class="diff-view" data-files={diff.files.length}>
      <p class="small muted">
        {`${diff.ref} against ${diff.base} (since they diverged): ${diff.files.length} file${diff.files.length === 1 ? '' : 's'}, +${adds} −${dels}`}
        {diff.truncated ? ' — cut at dashboard.maxDiffBytes' : ''}
      </p>
      {diff.files.map((f) => {
        // A file's lines are redacted in order, as lines (redactLines): a private key added
        // line by line is masked whole, not just the line that begins it.
        const texts = redactLines(
          f.hunks.flatMap((h) => h.lines.map((l) => l.text)),
          scrub,
        );
        let at = 0;
        const hunks = f.hunks.map((h) => ({ header: h.header, lines: h.lines.map((l) => ({ ...l, text: texts[at++]! })) }));
        const rows = hunks.flatMap((h) => [{ hunk: h.header }, ...sideBySide(h)]);
        const shown = rows.slice(0, Math.max(0, budget));
        budget -= shown.length;
        left += rows.length - shown.length;
        // Names and hunk headers are text of the diff too (git puts the nearest line above a
        // change, say an API_TOKEN = "..." assignment, in the @@ header): scrubbed like its lines.
        // A name the parser could not read is said to be one, never an empty heading.
        const named = (n: string) => n || UNNAMED;
        const name = scrub(f.status === 'renamed' ? `${named(f.oldPath)} → ${named(f.newPath)}` : named(f.status === 'deleted' ? f.oldPath : f.newPath));
        return (
          <div class="diff-file" data-path={scrub(f.newPath)}>
            <h3>
              <Shown text={name} what="code" /> <span class="muted small">{`${f.status}, +${f.additions} −${f.deletions}`}</span>
            </h3>
            {[name, ...f.hunks.map((h) => h.header), ...texts].some(hasHidden) ? (
              <p class="hidden-warning">
                This file's diff holds bidirectional or invisible Unicode characters (drawn as <span class="hidden-char">U+…</span>): the code may not do what it reads as.
              </p>
            ) : null}
            {f.binary ? (
              <p class="muted">Binary file.</p>
            ) : (
              <table class="diff">
                <colgroup>
                  <col class="ln" />
                  <col />
                  <col class="ln" />
                  <col />
                </colgroup>
                <tbody>
                  {shown.map((r) =>
                    'hunk' in r ? (
                      <tr class="hunk">
                        <td colspan={4}>
                          <Shown text={scrub(r.hunk)} what="code" />
                        </td>
                      </tr>
                    ) : (
                      <tr>
                        <Cell line={r.left} side="old" />
                        <Cell line={r.right} side="new" />
                      </tr>
                    ),
                  )}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
      {left ? <p class="muted">{`${left} more diff lines not shown.`}</p> : null}
    </div>
  );
}
