#!/usr/bin/env bash
# One worker = one ticket. Runs the six phases in the ticket's own worktree and
# dev server, then exits; every exit path cleans up (trap) and leaves outcome.json.
#
# Usage: harness/worker.sh <worker-id> <ticket-dir>
#   <ticket-dir>/ticket.env     settings written by the control plane (sourced)
#   <ticket-dir>/agent/         what the agent may read: ticket.md, pre-context.md, plan.md, ...
#   <ticket-dir>/config/        per-phase CLI arguments, hook settings, MCP configs
#   <ticket-dir>/query.txt      the ticket's own words, what phase 0 searches the docs for
# Writes: status (progress lines), stage-<phase>.jsonl, stats-<phase>.json, result,
#   push.env, tests.log, outcome.json.
# Exit: 0 pushed or awaiting approval, 1 failed, 3 needs a person, 2 bad usage.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 <worker-id> <ticket-dir>" >&2
  exit 2
fi
BUGBOT_WORKER_ID=$1
TICKET_DIR=$(cd "$2" && pwd)
BUGBOT_HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BUGBOT_WORKER_ID TICKET_DIR BUGBOT_HARNESS

# shellcheck source=lib/common.sh
source "$BUGBOT_HARNESS/lib/common.sh"
# shellcheck source=lib/worktree.sh
source "$BUGBOT_HARNESS/lib/worktree.sh"
# shellcheck source=lib/devserver.sh
source "$BUGBOT_HARNESS/lib/devserver.sh"
# shellcheck source=lib/phase.sh
source "$BUGBOT_HARNESS/lib/phase.sh"
# shellcheck source=lib/push.sh
source "$BUGBOT_HARNESS/lib/push.sh"

[ -f "$TICKET_DIR/ticket.env" ] || { echo "harness: $TICKET_DIR/ticket.env is missing" >&2; exit 2; }
# shellcheck source=/dev/null
source "$TICKET_DIR/ticket.env"
harness_require BUGBOT_TICKET_ID BUGBOT_REPO BUGBOT_REMOTE BUGBOT_BASE BUGBOT_STAGING BUGBOT_BRANCH \
  BUGBOT_WORKTREE BUGBOT_BASE_PORT BUGBOT_CLAUDE BUGBOT_PROMPTS BUGBOT_TEST_COMMAND BUGBOT_PUSH_MODE
BUGBOT_PORT=$((BUGBOT_BASE_PORT + BUGBOT_WORKER_ID))
WORKTREE=$BUGBOT_WORKTREE
BUGBOT_IDLE_S=${BUGBOT_IDLE_S:-300}
BUGBOT_ON_BANNED=${BUGBOT_ON_BANNED:-deny}
BUGBOT_PUSH_RETRIES=${BUGBOT_PUSH_RETRIES:-5}
export BUGBOT_PORT WORKTREE
# The run's temp folder (the control plane made it): everything the run starts makes its
# temporary files there (Claude Code leaves some after every session), and it goes when
# the run ends.
if [ -n "${BUGBOT_RUN_TMP:-}" ]; then
  [ -d "$BUGBOT_RUN_TMP" ] || (umask 077 && mkdir -p "$BUGBOT_RUN_TMP")
  export TMPDIR=$BUGBOT_RUN_TMP
fi
# Commits by the harness and the agent: an identity without touching the shared git config.
export GIT_AUTHOR_NAME="${BUGBOT_GIT_NAME:-bugbot}" GIT_AUTHOR_EMAIL="${BUGBOT_GIT_EMAIL:-bugbot@localhost}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
# The agent's sessions write agent/: what stands at a name there may be a symbolic link of
# theirs, so the harness reads its files only without following one (fence.mjs,
# agent-file.mjs) and writes them by a new file renamed over the name
# (harness_replace_file, writeAgentFile), never through what is there.
AGENT="$TICKET_DIR/agent"
DEV_PID=""
DEV_WATCH_PID=""
PUSHED=""

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  set +e
  # Cleanup runs to its end: another SIGTERM (the control plane's, to the whole group)
  # would stop it halfway, the worktree left and the partial work not committed. The
  # commands below inherit the ignored signals.
  trap '' TERM INT
  if [ -n "$DEV_WATCH_PID" ]; then kill "$DEV_WATCH_PID" 2>/dev/null; fi
  harness_phase_stop
  harness_mcp_host_stop
  harness_gate_stop
  harness_devserver_stop "$DEV_PID"
  if [ -d "$WORKTREE" ] && [ -z "$PUSHED" ]; then
    # Partial work is kept on the branch, never lost with the worktree.
    harness_keep_partial_work "$WORKTREE" "bugbot: partial work on ticket $BUGBOT_TICKET_ID (run stopped)" >/dev/null ||
      harness_log "could not commit the partial work on $BUGBOT_BRANCH (see git's words above); it goes with the worktree"
  fi
  harness_worktree_remove "$BUGBOT_REPO" "$WORKTREE"
  harness_set_result failed "worker exited with status $rc before finishing"
  node "$BUGBOT_HARNESS/lib/outcome.mjs" "$TICKET_DIR"
  if [ -n "${BUGBOT_RUN_TMP:-}" ]; then harness_rm_tree "$BUGBOT_RUN_TMP"; fi
  harness_status finished "$(cut -f1 "$TICKET_DIR/result")" "$(cut -f2 "$TICKET_DIR/result")"
  exit "$rc"
}
trap cleanup EXIT
trap 'harness_set_result cancelled "stopped by a signal (SIGTERM or SIGINT)"; exit 143' TERM INT

# harness_deferred_stop STATUS : a SIGTERM or SIGINT held off during a push that failed
# (STATUS not 0) stops the run now, as it would have then.
harness_deferred_stop() {
  [ -n "$HARNESS_DEFERRED_SIGNAL" ] && [ "$1" -ne 0 ] || return 0
  harness_set_result cancelled "stopped by a signal (SIG$HARNESS_DEFERRED_SIGNAL) during the push, which did not go through"
  exit 143
}

# --- setup: worktree, dependencies; research's session starting meanwhile ----------
# The sandbox's placeholders are excluded from every git command of this run, the
# agent's included (the file is written below); the harness's own run no hooks.
harness_git_env "$TICKET_DIR/config/git-excludes"
harness_git_pin "$BUGBOT_REPO" || harness_fail_env "$BUGBOT_REPO is not a git repository, or its .git holds a commondir (see above)"
harness_status setup start
if [ -n "${BUGBOT_DEV_COMMAND:-}" ] && harness_port_taken "$BUGBOT_PORT"; then
  harness_fail_env "port $BUGBOT_PORT (target.basePort + worker $BUGBOT_WORKER_ID) is taken by another process: the dev server could not listen there, and the browser would reach that process instead" slot
fi
# The MCP servers start first: the sessions connect to them instead of starting them.
harness_mcp_host_start
# Claude Code starts once the worktree exists, and gets its prompt once phase 0 wrote the
# pre-context: its start-up overlaps both.
harness_phase_start research "$TICKET_DIR/prompt-research.md" research wait "$TICKET_DIR/worktree.ready"
harness_worktree_create "$BUGBOT_REPO" "$BUGBOT_REMOTE" "$BUGBOT_BASE" "$BUGBOT_BRANCH" "$WORKTREE"
# The commit the fix starts from, taken before any session runs: the agent's sandbox can
# write the shared repository's refs (refs/remotes/<remote>/<base> among them), so what
# the fix changed, what review reads and what the push replays are measured from this.
BASE_SHA=$(git -C "$WORKTREE" rev-parse HEAD) || harness_fail_env "could not read the worktree's commit"
harness_sandbox_excludes "$WORKTREE" "$TICKET_DIR/config/git-excludes"
: >"$TICKET_DIR/worktree.ready"
deps=$(harness_deps_install "$BUGBOT_REPO" "$WORKTREE") || harness_fail_env "dependency install failed in the worktree"
harness_log "dependencies: ${deps:-none}"
harness_status setup "done" "port $BUGBOT_PORT"

# --- phase 0: docs retrieval, while phase 1's session starts up ------------------------
# Research gets its prompt, and its limits start counting, once ticket + pre-context are written.
harness_status docs-retrieval start
query="$TICKET_DIR/query.txt"
[ -f "$query" ] || query="$AGENT/ticket.md"
if [ -n "${BUGBOT_BIN:-}" ] && [ -x "$BUGBOT_BIN" ]; then
  # Niced: it runs while research's Claude Code starts up, which is on the path to the
  # first model request; the search is done well before the session reads its prompt.
  nice -n 10 "$BUGBOT_BIN" docs-search --repo "$WORKTREE" --pre-context "$AGENT/pre-context.md" --query-file "$query" \
    >"$TICKET_DIR/docs-search.log" 2>&1 ||
    printf '# Pre-context\n\nDocs retrieval failed (see docs-search.log); work from the repository itself.\n' | harness_replace_file "$AGENT/pre-context.md"
else
  printf '# Pre-context\n\nNo docs index is available for this repository: work from the code and its docs directly.\n' | harness_replace_file "$AGENT/pre-context.md"
fi
# The repository's CLAUDE.md as the base has it, for every session: they run without
# project settings (the repository's .claude/ hooks would run), and so without its memory.
harness_project_notes "$WORKTREE" "$AGENT/project-notes.md"
harness_status docs-retrieval "done"

# --- phase 1: research -> plan.md ---------------------------------------------------
harness_phase_deliver "$TICKET_DIR/prompt-research.md" research "$AGENT/ticket.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/pre-context.md"
if [ -n "${BUGBOT_DEV_COMMAND:-}" ]; then
  # The dev server starts once the session is up (not to slow its start-up) and comes up
  # while the model thinks; the browser tools wait until it listens, implementing waits
  # for it (below).
  harness_phase_ready 30
  DEV_PID=$(harness_devserver_start "$WORKTREE" "$BUGBOT_PORT" "$BUGBOT_DEV_COMMAND" "$TICKET_DIR/devserver.log")
  echo "$DEV_PID" >"$TICKET_DIR/devserver.pid"
  # The one wait for it: a dev server that exits or never listens ends research at once
  # (no model time spent on a run that cannot verify anything); implementing waits below.
  (harness_devserver_wait "$BUGBOT_PORT" "$DEV_PID" "${BUGBOT_DEV_TIMEOUT_S:-60}" || {
    : >"$TICKET_DIR/devserver.failed"
    [ -e "$TICKET_DIR/research.done" ] || kill -TERM "$HARNESS_PHASE_PID" 2>/dev/null
  }) &
  DEV_WATCH_PID=$!
fi
research_rc=0
harness_phase_wait || research_rc=$?
: >"$TICKET_DIR/research.done"
if [ -n "$DEV_WATCH_PID" ]; then
  # Research that failed by itself does not wait for the dev server.
  if [ "$research_rc" -ne 0 ] && [ ! -e "$TICKET_DIR/devserver.failed" ]; then kill "$DEV_WATCH_PID" 2>/dev/null || true; fi
  wait "$DEV_WATCH_PID" || true
  DEV_WATCH_PID=""
fi
if [ -e "$TICKET_DIR/devserver.failed" ]; then
  why="dev server did not listen on port $BUGBOT_PORT within ${BUGBOT_DEV_TIMEOUT_S:-60} s, or exited (see devserver.log)"
  # Nothing of the fix is in the worktree yet (research may write only agent/plan.md; its
  # tracked files and commit are checked all the same): the dev server ran the base commit
  # and would fail the same way for every ticket. Not the ticket's doing: target.devCommand,
  # the base branch or the machine is at fault.
  if [ "$(git -C "$WORKTREE" rev-parse HEAD)" = "$BASE_SHA" ] && tracked=$(git -C "$WORKTREE" status --porcelain --untracked-files=no) && [ -z "$tracked" ]; then
    harness_fail_env "$why, on the base commit before any change: check target.devCommand"
  fi
  harness_fail "$why"
fi
[ "$research_rc" -eq 0 ] || harness_phase_fail research research
# A regular file, as the prompts read it (a link there is not followed: fence.mjs).
{ [ -f "$AGENT/plan.md" ] && [ ! -L "$AGENT/plan.md" ] && [ -s "$AGENT/plan.md" ]; } ||
  harness_fail "research finished without writing plan.md$([ ! -L "$AGENT/plan.md" ] || echo ' (only a link, not read)')"

# --- phase 2: implement -------------------------------------------------------------
harness_phase_prompt implement "$TICKET_DIR/prompt-implement.md" "$AGENT/ticket.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/pre-context.md" "notes:$AGENT/plan.md"
harness_phase_run implement "$TICKET_DIR/prompt-implement.md" || harness_phase_fail implement implement
harness_force_commit "$WORKTREE" "bugbot: fix for ticket $BUGBOT_TICKET_ID" >/dev/null
# A session may commit, and `commit --amend` before a commit of its own rewrites the base
# commit: nothing of such a branch can be pushed (see harness_push_staging), so the run
# ends now rather than after review, docs and the test gate.
git -C "$WORKTREE" merge-base --is-ancestor "$BASE_SHA" HEAD ||
  harness_fail "the branch no longer descends from $BASE_SHA, the commit its worktree was made from (a commit --amend or a reset below it rewrote it): nothing of it can be pushed"

# --- phase 5's test gate, early: it tests the committed fix in a checkout of its own
# while review and docs run, and starts over whenever code (not docs) changes.
# FIRST_GATE: the status of the first gate run that finished ("tests passed first try").
GATE_REV=""
FIRST_GATE=""
gate_on_head() {
  local head
  head=$(git -C "$WORKTREE" rev-parse HEAD)
  if [ -n "$GATE_REV" ]; then
    [ -n "$(git -C "$WORKTREE" diff --name-only "$GATE_REV" "$head" -- . ':(exclude)docs/' ':(exclude)CLAUDE.md')" ] || return 0
    if [ -z "$FIRST_GATE" ] && [ -s "$TICKET_DIR/gate.rc" ]; then FIRST_GATE=$(cat "$TICKET_DIR/gate.rc"); fi
    harness_gate_stop
    harness_log "code changed since the test gate started: it runs again on $head"
  fi
  GATE_REV=$head
  harness_gate_start "$WORKTREE" "$BUGBOT_TEST_COMMAND" "$TICKET_DIR/tests.log" "$BASE_SHA" "$head"
}
gate_on_head

# --- phase 3: review (one bounded rework loop) ----------------------------------------
# review LABEL : run the review phase, write agent/verdict.json, set VERDICT.
VERDICT=""
review() {
  local label=$1
  # Plain a/ b/ names and git's own diff, whatever the repository's config says
  # (diff.noprefix, an external diff or textconv driver).
  git -C "$WORKTREE" diff --no-ext-diff --no-textconv --src-prefix=a/ --dst-prefix=b/ "$BASE_SHA"...HEAD | harness_replace_file "$AGENT/diff.patch"
  harness_phase_prompt review "$TICKET_DIR/prompt-$label.md" "$AGENT/ticket.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/plan.md" "fenced:$AGENT/diff.patch"
  harness_phase_run review "$TICKET_DIR/prompt-$label.md" "$label" || harness_phase_fail review "$label"
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { pathToFileURL } from "node:url";
    const { writeAgentFile } = await import(pathToFileURL(process.argv[1]).href);
    const s = JSON.parse(readFileSync(process.argv[2], "utf8"));
    if (!s.structured_output) process.exit(1);
    writeAgentFile(process.argv[3], JSON.stringify({ ...s.structured_output, edits_observed: s.edits }, null, 2));
  ' "$BUGBOT_HARNESS/lib/agent-file.mjs" "$TICKET_DIR/stats-$label.json" "$AGENT/verdict.json" || harness_fail "review returned no verdict"
  VERDICT=$(node --input-type=module -e '
    import { pathToFileURL } from "node:url";
    const { readAgentFile } = await import(pathToFileURL(process.argv[1]).href);
    const text = readAgentFile(process.argv[2]);
    if (text === null) throw new Error(process.argv[2] + " is not a regular file");
    process.stdout.write(String(JSON.parse(text).verdict));
  ' "$BUGBOT_HARNESS/lib/agent-file.mjs" "$AGENT/verdict.json")
  harness_force_commit "$WORKTREE" "bugbot: review fixes for ticket $BUGBOT_TICKET_ID" >/dev/null
  gate_on_head
}
review review
if [ "$VERDICT" != approved ]; then
  harness_log "review asked for rework"
  # shellcheck disable=SC2016 # JavaScript, not shell: the backticks are a template literal
  node --input-type=module -e '
    import { pathToFileURL } from "node:url";
    const { readAgentFile, writeAgentFile } = await import(pathToFileURL(process.argv[1]).href);
    const text = readAgentFile(process.argv[2]);
    if (text === null) throw new Error(process.argv[2] + " is not a regular file");
    const v = JSON.parse(text);
    const lines = ["# Review notes", "", "The review asked for rework. Address every point, then stop:", "", ...(v.reasons ?? []).map((r) => `- ${r}`)];
    writeAgentFile(process.argv[3], lines.join("\n") + "\n");
  ' "$BUGBOT_HARNESS/lib/agent-file.mjs" "$AGENT/verdict.json" "$AGENT/review-notes.md"
  harness_phase_prompt implement "$TICKET_DIR/prompt-implement-rework.md" "$AGENT/ticket.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/plan.md" "notes:$AGENT/review-notes.md"
  harness_phase_run implement "$TICKET_DIR/prompt-implement-rework.md" implement-rework ||
    harness_phase_fail rework implement-rework
  harness_force_commit "$WORKTREE" "bugbot: rework for ticket $BUGBOT_TICKET_ID" >/dev/null
  gate_on_head
  review review-rework
  [ "$VERDICT" = approved ] || harness_fail "review still asks for rework after one rework loop"
fi

# --- phase 4: docs ------------------------------------------------------------------
REVIEWED=$(git -C "$WORKTREE" rev-parse HEAD)
harness_phase_prompt docs "$TICKET_DIR/prompt-docs.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/plan.md" "fenced:$AGENT/diff.patch"
docs_failed=""
if ! harness_phase_run docs "$TICKET_DIR/prompt-docs.md"; then
  docs_failed="docs phase failed ($(harness_phase_reason docs))"
fi
harness_force_commit "$WORKTREE" "bugbot: docs for ticket $BUGBOT_TICKET_ID" >/dev/null
# The docs phase writes docs/ and CLAUDE.md only. Anything else it changed (through a
# command its guard let pass) is not what review approved: its commit is dropped, and the
# reviewed fix goes out without doc updates. So is what a session that failed left (its
# commits too): half an edit when a limit stopped it, or the work of one ended for a
# banned action; CLAUDE.md is in every later run's prompts.
outside_docs=$(git -C "$WORKTREE" diff --name-only "$REVIEWED" HEAD -- . ':(exclude)docs/' ':(exclude)CLAUDE.md')
if [ -n "$outside_docs" ]; then
  docs_failed="the docs phase changed files outside docs/ and CLAUDE.md ($(printf '%s' "$outside_docs" | tr '\n' ' '))"
fi
if [ -n "$docs_failed" ]; then
  harness_log "$docs_failed: its changes are dropped; the reviewed fix is pushed without doc updates"
  git -C "$WORKTREE" reset --quiet --hard "$REVIEWED" || harness_fail "could not drop the docs phase's changes"
fi

# --- phase 5: push ------------------------------------------------------------------
harness_status push start
push_started=$EPOCHSECONDS
changed=$(harness_changed_files "$WORKTREE" "$BASE_SHA") || harness_fail "could not list the changed files"
[ -n "$changed" ] || harness_fail "no changes to push"
protected=$(printf '%s\n' "$changed" | harness_protected_paths) || harness_fail "could not check the diff against protected paths (grep -P)"
[ -z "$protected" ] || harness_fail "the diff touches protected paths: $(echo "$protected" | tr '\n' ' ')"
# Only docs changed since the gate started (the docs phase's other changes were dropped),
# so it does not start again; if code did change, it runs again on what is pushed.
gate_on_head
gate_rc=0
harness_gate_wait || gate_rc=$?
case $gate_rc in
  0) ;;
  # It names no failing test, and passed (or named some) on the base: the fix broke it.
  2)
    said=$(harness_first_line "$TICKET_DIR/tests.log")
    harness_fail "the test command failed and names no failing test ($BUGBOT_TEST_COMMAND): ${said:-it printed nothing} (see tests.log)"
    ;;
  # It cannot run at all, fix or no fix: every ticket would pay all its phases to end here.
  3)
    said=$(harness_first_line "$TICKET_DIR/tests-base.log")
    harness_fail_env "target.testCommand fails on the base commit too and names no test: ${said:-it printed nothing} ($BUGBOT_TEST_COMMAND; see tests-base.log)"
    ;;
  # A checkout of the repository, or the base's own dependencies, could not be made: the
  # disk, the network or the registry, not the fix.
  4) harness_fail_env "the test gate could not make its checkout or install its dependencies (see tests.log and tests-base.log)" ;;
  5) harness_fail "the fix changed package.json, its lockfile or .npmrc, and the test gate could not install from them (npm ci, confined: no credentials; see tests.log)" ;;
  *) harness_fail "the test command failed with new failures ($BUGBOT_TEST_COMMAND; see tests.log and tests-compare.json)" ;;
esac
preexisting=$HARNESS_GATE_OUT
# The gate that just passed was the first to finish unless an earlier one had (and failed).
tests_first_try=true
[ "${FIRST_GATE:-0}" = 0 ] || tests_first_try=false
[ "$preexisting" = 0 ] || harness_log "$preexisting test(s) fail on the base branch too; they do not block this fix"
# The diff's size, file by file (--numstat: a binary file has "-" for its lines, which
# --shortstat would count as none; the auto-approval rules refuse what they cannot count).
diff_files=0 diff_insertions=0 diff_deletions=0 diff_binary=0
while IFS=$'\t' read -r ins del _; do
  diff_files=$((diff_files + 1))
  if [ "$ins" = - ]; then diff_binary=$((diff_binary + 1)); continue; fi
  diff_insertions=$((diff_insertions + ins)) diff_deletions=$((diff_deletions + del))
done < <(git -C "$WORKTREE" diff --numstat "$BASE_SHA"...HEAD)
{
  echo "branch=$BUGBOT_BRANCH"
  # The commit the fix starts from (refs the agent could move are not): what approval
  # diffs, auto-approval's file rules and the merge measure from.
  echo "base_commit=$BASE_SHA"
  echo "files=$diff_files"
  echo "insertions=$diff_insertions"
  echo "deletions=$diff_deletions"
  echo "binary=$diff_binary"
  echo "tests_first_try=$tests_first_try"
  echo "tests_preexisting=$preexisting"
} >"$TICKET_DIR/push.env"

# The push itself is not stopped halfway (harness_run_uninterrupted): a cancel or a
# shutdown that comes meanwhile takes effect once its result is recorded (the traps come
# back with harness_signals_restore; a failed push exits while they are held off).
commit=""
if [ "$BUGBOT_PUSH_MODE" = approve ]; then
  rc=0
  harness_run_uninterrupted commit harness_push_branch "$WORKTREE" "$BUGBOT_REMOTE" "$BUGBOT_BRANCH" || rc=$?
  harness_deferred_stop "$rc"
  if [ "$rc" -ne 0 ] && harness_push_refused_by_machine "$TICKET_DIR/push.err"; then
    harness_fail_env "could not push $BUGBOT_BRANCH: $BUGBOT_REMOTE refused it for a reason of its own, not the fix's: $(tr '\n' ' ' <"$TICKET_DIR/push.err" | cut -c1-300) (the fix stays on the local branch $BUGBOT_BRANCH)"
  fi
  [ "$rc" -eq 0 ] || harness_fail "could not push $BUGBOT_BRANCH: $(cat "$TICKET_DIR/push.err")"
  PUSHED=1
  { echo "commit=$commit"; echo "pushed_to=$BUGBOT_BRANCH"; } >>"$TICKET_DIR/push.env"
  harness_set_result awaiting_approval "pushed $BUGBOT_BRANCH for approval"
  harness_signals_restore
else
  rc=0
  harness_run_uninterrupted commit harness_push_staging "$WORKTREE" "$BUGBOT_REMOTE" "$BUGBOT_STAGING" "$BUGBOT_BASE" "$BUGBOT_PUSH_RETRIES" "$BASE_SHA" || rc=$?
  # 5: nothing left to push, the fix on staging already: out, like a push that went through.
  if [ "$rc" -eq 5 ]; then harness_deferred_stop 0; else harness_deferred_stop "$rc"; fi
  if [ "$rc" -eq 3 ]; then
    harness_set_result needs_human "rebase onto $BUGBOT_STAGING conflicts in: $(harness_conflicts)"
    exit 3
  fi
  if [ "$rc" -eq 5 ]; then
    # Every change is on staging already (an earlier attempt's push went through): the
    # fix is out; staging's head is not its commit.
    PUSHED=1
    echo "pushed_to=$BUGBOT_STAGING" >>"$TICKET_DIR/push.env"
    harness_set_result pushed "its changes are on $BUGBOT_STAGING already: nothing pushed again"
    harness_signals_restore
    commit=""
  elif [ "$rc" -ne 0 ]; then
    why=$(tr '\n' ' ' <"$TICKET_DIR/push.err" 2>/dev/null | cut -c1-300)
    [ "$rc" -ne 4 ] || harness_fail "rebase onto $BUGBOT_STAGING failed (not a conflict): $why"
    # The remote takes no push at all (read-only, this user refused): not the fix's doing,
    # and every later ticket's push would fail the same way.
    [ "$rc" -ne 6 ] || harness_fail_env "push to $BUGBOT_STAGING refused by $BUGBOT_REMOTE, not for another push coming first: $why (the fix stays on the local branch $BUGBOT_BRANCH)"
    harness_fail "push to $BUGBOT_STAGING failed after $BUGBOT_PUSH_RETRIES attempts: $why"
  else
    PUSHED=1
    { echo "commit=$commit"; echo "pushed_to=$BUGBOT_STAGING"; } >>"$TICKET_DIR/push.env"
    harness_set_result pushed "pushed to $BUGBOT_STAGING"
    harness_signals_restore
  fi
fi
push_finished=""
harness_now push_finished
{
  echo "duration_s=$((EPOCHSECONDS - push_started))"
  echo "finished=$push_finished"
} >>"$TICKET_DIR/push.env"
harness_status push "done" "$commit"
# Stopped during the push, which went through: the fix is out, and nothing more is done.
if [ -n "$HARNESS_DEFERRED_SIGNAL" ]; then
  harness_log "SIG$HARNESS_DEFERRED_SIGNAL came during the push; it went through first"
  exit 143
fi
# Refresh the docs index with what was pushed (the docs phase may have changed docs);
# incremental by content hash, and never a reason to fail a pushed fix.
if [ -n "${BUGBOT_BIN:-}" ]; then
  "$BUGBOT_BIN" docs index --repo "$WORKTREE" >>"$TICKET_DIR/docs-search.log" 2>&1 || harness_log "docs index refresh failed (see docs-search.log)"
fi
exit 0
