# Shared setup for the harness's bats tests: a temp dir, a git repo with a bare
# origin, and the harness libraries sourced. Usage: load test_helper
HARNESS="$(cd "$BATS_TEST_DIRNAME/../../harness" && pwd)"
export GIT_AUTHOR_NAME=bugbot GIT_AUTHOR_EMAIL=bugbot@localhost GIT_COMMITTER_NAME=bugbot GIT_COMMITTER_EMAIL=bugbot@localhost
export BUGBOT_HARNESS="$HARNESS"

setup_tmp() {
  TMP=$(mktemp -d)
  export TICKET_DIR="$TMP/ticket"
  mkdir -p "$TICKET_DIR/config"
}

teardown_tmp() {
  rm -rf "$TMP"
}

# make_repo: $TMP/repo (main, one commit) pushed to $TMP/origin.git
make_repo() {
  # The base checkout, as ticket.env names it (the test gate installs dependencies from it).
  export BUGBOT_REPO="$TMP/repo"
  git init --quiet --bare --initial-branch=main "$TMP/origin.git"
  git init --quiet --initial-branch=main "$TMP/repo"
  git -C "$TMP/repo" config user.name test
  git -C "$TMP/repo" config user.email test@example.com
  printf 'hello\n' >"$TMP/repo/a.txt"
  git -C "$TMP/repo" add -A
  git -C "$TMP/repo" commit --quiet -m init
  git -C "$TMP/repo" remote add origin "$TMP/origin.git"
  git -C "$TMP/repo" push --quiet origin main
}

# shellcheck source=../../harness/lib/common.sh
source "$HARNESS/lib/common.sh"
# shellcheck source=../../harness/lib/worktree.sh
source "$HARNESS/lib/worktree.sh"
# shellcheck source=../../harness/lib/devserver.sh
source "$HARNESS/lib/devserver.sh"
# shellcheck source=../../harness/lib/push.sh
source "$HARNESS/lib/push.sh"

# wait_until CMD... : run CMD until it succeeds, for up to 5 s (a busy machine starts and
# stops processes late); its last status is the result.
wait_until() {
  local _
  for _ in $(seq 100); do
    "$@" && return 0
    sleep 0.05
  done
  "$@"
}

# no_process PATTERN : no process's command line matches PATTERN (pgrep -f).
no_process() { [ -z "$(pgrep -f "$1")" ]; }

# worker_setup : a ticket for harness/worker.sh on the repository setup made (approval mode: the fix is pushed to the
# bot branch of $TMP/origin.git) and a stand-in for Claude Code. Each session plays
# $TMP/play/<phase>-<n>.sh (n: how many sessions of that phase ran before it), else its
# phase's default: research writes the plan, implement fixes a.txt, review approves, docs
# does nothing. A play runs in the worktree and prints the session's result event. Each
# session's prompt is kept as $TMP/ran-<phase>-<n>.
worker_setup() {
  export BUGBOT_PROMPTS="$TMP/prompts"
  mkdir -p "$BUGBOT_PROMPTS" "$TICKET_DIR/agent" "$TMP/play"
  printf '# Ticket 1\n\nThe greeting is wrong.\n' >"$TICKET_DIR/agent/ticket.md"
  for phase in research implement review docs; do
    printf 'bugbot-phase: %s\n' "$phase" >"$BUGBOT_PROMPTS/$phase.md"
    : >"$TICKET_DIR/config/$phase.args"
    printf '{"phase":"%s","worktree":"%s","ticketDir":"%s"}' "$phase" "$TMP/wt" "$TICKET_DIR" >"$TICKET_DIR/config/$phase.policy.json"
  done
  cat >"$TMP/claude" <<SH
#!/usr/bin/env bash
prompt=\$(cat)
phase=\$(printf '%s\n' "\$prompt" | sed -n 's/^bugbot-phase: //p' | head -1)
n=\$(ls "$TMP"/ran-"\$phase"-* 2>/dev/null | wc -l)
printf '%s\n' "\$prompt" >"$TMP/ran-\$phase-\$n"
if [ -f "$TMP/play/\$phase-\$n.sh" ]; then exec bash "$TMP/play/\$phase-\$n.sh"; fi
out=''
case \$phase in
  research) printf '# Plan\n\nFix the greeting.\n' >"$TICKET_DIR/agent/plan.md" ;;
  implement) printf 'fixed %s\n' "\$n" >a.txt ;;
  review) out=',"structured_output":{"verdict":"approved","reasons":[],"edits":0}' ;;
esac
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"total_cost_usd":0.01,"result":"ok"'"\$out"'}'
SH
  chmod +x "$TMP/claude"
  cat >"$TICKET_DIR/ticket.env" <<ENV
BUGBOT_TICKET_ID=1
BUGBOT_REPO=$TMP/repo
BUGBOT_REMOTE=origin
BUGBOT_BASE=main
BUGBOT_STAGING=staging
BUGBOT_BRANCH=bot/ticket-1
BUGBOT_WORKTREE=$TMP/wt
BUGBOT_BASE_PORT=1
BUGBOT_CLAUDE=$TMP/claude
BUGBOT_PROMPTS=$BUGBOT_PROMPTS
BUGBOT_TEST_COMMAND=true
BUGBOT_PUSH_MODE=approve
ENV
}

# worker_result : the run's result line, state and reason joined by "|".
worker_result() { tr '\t' '|' <"$TICKET_DIR/result"; }
