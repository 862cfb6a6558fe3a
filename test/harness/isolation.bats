#!/usr/bin/env bats
# The test gate runs code the agent wrote (its tests) outside Claude Code's sandbox:
# harness_isolated gives it no network beyond its own loopback, no model credentials,
# no operator credentials, and no way to commit what it read.
load test_helper

setup() {
  setup_tmp
  make_repo
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  export HOME="$TMP/operator"
  mkdir -p "$HOME/.ssh" "$HOME/.aws"
  printf 'CANARY-ssh\n' >"$HOME/.ssh/id_rsa"
  printf 'CANARY-netrc\n' >"$HOME/.netrc"
  mkdir -p "$HOME/.claude"
  printf '{"claudeAiOauth":{"accessToken":"CANARY-claude-login"}}\n' >"$HOME/.claude/.credentials.json"
  printf '{"primaryApiKey":"CANARY-claude-json"}\n' >"$HOME/.claude.json"
}
# group_alive PGID : the processes of a process group that still run (a zombie, one not
# yet reaped by init after its parent was killed, runs nothing).
group_alive() { ps -o pid=,stat=,args= -g "$1" | awk '$2 !~ /^Z/' || true; }

teardown() { [ -z "${PID:-}" ] || harness_devserver_stop "$PID"; teardown_tmp; }

@test "isolated: no model credentials, a throwaway HOME, the operator's credentials hidden" {
  ANTHROPIC_API_KEY=CANARY-key CLAUDE_CODE_OAUTH_TOKEN=CANARY-oauth run harness_isolated "$TMP/wt" \
    "env; cat $TMP/operator/.ssh/id_rsa $TMP/operator/.netrc $TMP/operator/.claude/.credentials.json $TMP/operator/.claude.json 2>&1; ls -A $TMP/operator/.ssh $TMP/operator/.claude"
  [[ "$output" != *CANARY* ]]
  [[ "$output" == *"HOME=$TICKET_DIR/home"* ]]
}

@test "isolated: only its own loopback is reachable" {
  cat >"$TMP/wt/probe.js" <<'JS'
const net = require('net');
const srv = net.createServer((s) => (s.on('error', () => {}), s.end('hi'))).listen(0, '127.0.0.1', () => {
  const c = net.connect(srv.address().port, '127.0.0.1', () => {
    console.log('loopback ok');
    c.end();
    srv.close();
    const out = net.connect(80, '192.0.2.1');
    out.on('error', (e) => console.log('outside', e.code));
    out.on('connect', () => (console.log('outside CONNECTED'), out.destroy()));
  });
});
JS
  run harness_isolated "$TMP/wt" 'node probe.js'
  [ "$status" -eq 0 ]
  [[ "$output" == *"loopback ok"* ]]
  [[ "$output" == *"outside E"* ]]
  [[ "$output" != *CONNECTED* ]]
}

@test "isolated: the repository's git data is read-only (it cannot commit what it read)" {
  printf 'x\n' >"$TMP/wt/leak.txt"
  run harness_isolated "$TMP/wt" 'git add leak.txt && git commit -qm leak'
  [ "$status" -ne 0 ]
  [ "$(git -C "$TMP/wt" log --format=%s -1)" = init ]
}

@test "the tests gate runs the test command isolated" {
  # shellcheck disable=SC2016 # the script's own variables, expanded when it runs
  printf '#!/bin/sh\n[ -z "$ANTHROPIC_API_KEY" ] && ! cat "%s/.ssh/id_rsa" 2>/dev/null && echo "ok 1 - isolated"\n' "$HOME" >"$TMP/wt/t.sh"
  git -C "$TMP/wt" add t.sh && git -C "$TMP/wt" commit --quiet -m runner
  ANTHROPIC_API_KEY=CANARY-key run harness_tests_gate "$TMP/wt" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  grep -q 'ok 1 - isolated' "$TICKET_DIR/tests.log"
}

@test "the dev server (which may reload the agent's edits) is confined too" {
  export ANTHROPIC_API_KEY=CANARY-key
  PID=$(harness_devserver_start "$TMP/wt" 1 "env; cat $TMP/operator/.ssh/id_rsa 2>&1; echo done" "$TMP/dev.log")
  for _ in $(seq 50); do grep -q '^done' "$TMP/dev.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^done' "$TMP/dev.log"
  [ "$(grep -c CANARY "$TMP/dev.log")" = 0 ]
  grep -q '^PORT=1$' "$TMP/dev.log"
}

# What the harness's next git command in the worktree would run outside any sandbox: a
# hook, core.fsmonitor, or a .git file pointing at a git dir the command made itself.
# shellcheck disable=SC2016 # the script's own expansions, done when it runs
GIT_TAMPER='git config core.fsmonitor "touch $PWD/PWNED" 2>&1 || echo config-refused
printf "#!/bin/sh\ntouch PWNED\n" >"$(git rev-parse --git-common-dir)/hooks/post-checkout" || echo hook-refused
printf "gitdir: /tmp/elsewhere\n" >.git || echo dotgit-refused
echo finished'

# git_untouched WORKTREE : the repository's config, hooks and the worktree's .git file are as they were.
git_untouched() {
  local wt=$1 common
  common=$(git -C "$wt" rev-parse --path-format=absolute --git-common-dir)
  [ -z "$(git -C "$wt" config --get core.fsmonitor)" ]
  [ ! -e "$common/hooks/post-checkout" ]
  grep -q "^gitdir: $common/worktrees/" "$wt/.git"
  git -C "$wt" status --short >/dev/null
  [ ! -e "$wt/PWNED" ]
}

@test "the dev server cannot write the repository's git data (hooks, config, the worktree's .git)" {
  PID=$(harness_devserver_start "$TMP/wt" 1 "$GIT_TAMPER" "$TMP/dev.log")
  for _ in $(seq 50); do grep -q '^finished' "$TMP/dev.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^finished' "$TMP/dev.log"
  grep -q config-refused "$TMP/dev.log"
  grep -q hook-refused "$TMP/dev.log"
  grep -q dotgit-refused "$TMP/dev.log"
  git_untouched "$TMP/wt"
}

@test "isolated: neither can the test command" {
  run harness_isolated "$TMP/wt" "$GIT_TAMPER"
  [[ "$output" == *config-refused*hook-refused*dotgit-refused*finished* ]]
  git_untouched "$TMP/wt"
}

@test "a confined dev server outlives the subshell that started it" {
  # The worker starts it inside $(...): that subshell ends while the server runs on.
  PID=$(harness_devserver_start "$TMP/wt" 1 "sleep 30" "$TMP/dev.log"; sleep 0.5)
  kill -0 "$PID"
  wait_until pgrep -P "$PID" >/dev/null
}

@test "confined: bugbot's home is read-only but for the command's own folder; its database and local key are unreadable" {
  export BUGBOT_HOME="$TMP"
  printf 'CANARY-db\n' >"$TMP/bugbot.db"
  printf '{"key":"CANARY-key"}\n' >"$TMP/server.json"
  run harness_isolated "$TMP/wt" \
    "cat $TMP/bugbot.db $TMP/server.json; echo x >$TMP/outcomes.jsonl || echo home-read-only; echo y >made-here && echo wrote-own-folder"
  [[ "$output" != *CANARY* ]]
  [[ "$output" == *home-read-only* ]]
  [[ "$output" == *wrote-own-folder* ]]
  [ ! -e "$TMP/outcomes.jsonl" ]
  [ -f "$TMP/wt/made-here" ]
}

@test "confined: bugbot's own code and the operator's git and shell start-up files are read-only (the harness runs them later, unconfined)" {
  printf '[user]\n\tname = op\n' >"$HOME/.gitconfig"
  printf 'export PS1=x\n' >"$HOME/.bashrc"
  # New files only: a failing run must not leave bugbot's checkout changed.
  probe=".confine-probe-$$"
  run harness_isolated "$TMP/wt" \
    "printf '[core]\\n\\tfsmonitor = /tmp/x\\n' >>$HOME/.gitconfig || echo gitconfig-refused; echo evil >>$HOME/.bashrc || echo bashrc-refused; echo x >$HARNESS_BUGBOT_ROOT/harness/lib/$probe || echo code-refused; echo x >$HARNESS_BUGBOT_ROOT/node_modules/$probe || echo deps-refused; echo y >made-here && echo wrote-own-folder"
  rm -f "$HARNESS_BUGBOT_ROOT/harness/lib/$probe" "$HARNESS_BUGBOT_ROOT/node_modules/$probe"
  [[ "$output" == *gitconfig-refused*bashrc-refused*code-refused*deps-refused*wrote-own-folder* ]]
  [ "$(cat "$HOME/.gitconfig")" = $'[user]\n\tname = op' ]
  [ "$(cat "$HOME/.bashrc")" = 'export PS1=x' ]
}

@test "confined: of the tickets' folders only its own home is there (other reports, MCP credentials in config/ are not)" {
  export BUGBOT_HOME="$TMP/bb"
  export TICKET_DIR="$BUGBOT_HOME/tickets/1/run-1"
  mkdir -p "$TICKET_DIR/config" "$BUGBOT_HOME/tickets/2/run-2/agent"
  printf 'CANARY-other-report\n' >"$BUGBOT_HOME/tickets/2/run-2/agent/ticket.md"
  printf '{"env":{"DB_URL":"CANARY-mcp-credential"}}\n' >"$TICKET_DIR/config/research.mcp.json"
  printf '{"outcome":"CANARY-outcome"}\n' >"$BUGBOT_HOME/outcomes.jsonl"
  run harness_isolated "$TMP/wt" \
    "cat $BUGBOT_HOME/tickets/2/run-2/agent/ticket.md $TICKET_DIR/config/research.mcp.json $BUGBOT_HOME/outcomes.jsonl; ls $BUGBOT_HOME/tickets; echo mine >\$HOME/own.txt && echo home-writable"
  [[ "$output" != *CANARY* ]]
  [[ "$output" == *home-writable* ]]
  [ "$(cat "$TICKET_DIR/home/own.txt")" = mine ]
  [ -f "$BUGBOT_HOME/tickets/2/run-2/agent/ticket.md" ]
}

@test "confined: its run's temp folder is writable; the other runs' beside it are not there" {
  export BUGBOT_RUN_TMP="$TMP/runs-tmp/1-1"
  mkdir -p "$BUGBOT_RUN_TMP" "$TMP/runs-tmp/2-2/claude-0"
  printf 'CANARY-other-run-output\n' >"$TMP/runs-tmp/2-2/claude-0/task.output"
  run harness_isolated "$TMP/wt" \
    "cat $TMP/runs-tmp/2-2/claude-0/task.output; echo \"runs: \$(ls $TMP/runs-tmp | tr '\n' ' ')\"; echo scratch >$BUGBOT_RUN_TMP/own.txt && echo tmp-writable"
  [[ "$output" != *CANARY* ]]
  [[ "$output" == *"runs: 1-1 "* ]]
  [[ "$output" == *tmp-writable* ]]
  [ "$(cat "$BUGBOT_RUN_TMP/own.txt")" = scratch ]
  [ -f "$TMP/runs-tmp/2-2/claude-0/task.output" ]
}

@test "confined: other processes (the worker, the session: they hold the model key) are out of sight" {
  (export HOLDER_SECRET=CANARY-proc-environ; exec sleep 30) &
  holder=$!
  run harness_isolated "$TMP/wt" "cat /proc/$holder/environ; grep -l CANARY-proc /proc/[0-9]*/environ; echo done"
  [[ "$output" != *CANARY* ]]
  [[ "$output" == *done* ]]
  PID=$(harness_devserver_start "$TMP/wt" 1 "cat /proc/$holder/environ 2>&1 | tr '\\0' '\\n' | grep -c CANARY; echo finished" "$TMP/dev.log")
  for _ in $(seq 50); do grep -q '^finished' "$TMP/dev.log" 2>/dev/null && break; sleep 0.1; done
  kill "$holder"
  grep -q '^finished' "$TMP/dev.log"
  [ "$(head -1 "$TMP/dev.log")" = 0 ]
}

@test "the gate in the background: its result when waited for; stopped with its whole process group" {
  printf '#!/bin/sh\necho "ok 1 - passes"\n' >"$TMP/wt/t.sh"
  git -C "$TMP/wt" add t.sh && git -C "$TMP/wt" commit --quiet -m runner
  harness_gate_start "$TMP/wt" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  harness_gate_wait
  [ "$HARNESS_GATE_OUT" = 0 ]
  grep -q 'ok 1 - passes' "$TICKET_DIR/tests.log"

  harness_gate_start "$TMP/wt" "sleep 30" "$TICKET_DIR/tests.log" origin/main
  wait_until test -s "$TICKET_DIR/gate.pid"
  pgid=$(cat "$TICKET_DIR/gate.pid")
  wait_until pgrep -g "$pgid" >/dev/null
  harness_gate_stop
  wait_until eval '[ -z "$(group_alive "$pgid")" ]'
  [ ! -f "$TICKET_DIR/gate.pid" ]
  [ ! -e "$TMP/wt.gate" ]
}

@test "a test command that hangs is stopped at harness.testTimeoutSeconds, with everything it started" {
  # It prints a failure the base has too, then hangs: stopped, it is a failure outright
  # (never compared with the base), whatever it printed.
  export BUGBOT_TEST_TIMEOUT_S=2
  started=$SECONDS
  run harness_tests_gate "$TMP/wt" 'echo "not ok 1 - old bug"; setsid sleep 987651 & (trap "" TERM; sleep 987652) & trap "" TERM; sleep 987653' \
    "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 124 ]
  [ $((SECONDS - started)) -le 8 ]
  [ "$(tail -1 "$TICKET_DIR/tests.log")" = "harness: the test command ran past harness.testTimeoutSeconds (2 s) and was stopped" ]
  [ ! -e "$TICKET_DIR/tests-base.log" ]
  wait_until no_process 'sleep 98765'
  [ ! -e "$TMP/wt.gate" ]
  [ ! -e "$TMP/wt.base" ]
  # A command's own status 124, before the limit, is an ordinary failure.
  BUGBOT_TEST_TIMEOUT_S=30 run harness_test_run "$TMP/wt" 'exit 124' "$TICKET_DIR/own.log"
  [ "$status" -eq 1 ]
  [ "$(grep -c testTimeoutSeconds "$TICKET_DIR/own.log")" = 0 ]
}

@test "the gate: a test file that no longer loads is a new failure, even beside a failure the base has too" {
  # The runner names a file that failed to load by its absolute path: <worktree>.gate/...
  # on the fix, <worktree>.base/... on the base, so the two logs differ in the checkout.
  # shellcheck disable=SC2016 # the command's own variables, expanded when it runs
  cmd='echo "not ok 1 - old bug"; [ -f broken ] && echo "not ok 2 - $PWD/test/b.test.js"; [ -f old-broken ] && echo "not ok 3 - $PWD/test/c.test.js"; exit 1'
  : >"$TMP/wt/broken"
  git -C "$TMP/wt" add broken && git -C "$TMP/wt" commit --quiet -m "the fix breaks a test file"
  run harness_tests_gate "$TMP/wt" "$cmd" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 1 ]
  grep -q '"new":\["test/b.test.js"\]' "$TICKET_DIR/tests-compare.json"
  # A file that fails to load on the base too is not new.
  git -C "$TMP/repo" checkout --quiet main && : >"$TMP/repo/old-broken"
  git -C "$TMP/repo" add old-broken && git -C "$TMP/repo" commit --quiet -m "c.test.js is broken on main" && git -C "$TMP/repo" push --quiet origin main
  git -C "$TMP/wt" fetch --quiet origin && git -C "$TMP/wt" rebase --quiet origin/main
  git -C "$TMP/wt" rm --quiet broken && git -C "$TMP/wt" commit --quiet -m "b.test.js loads again"
  run harness_tests_gate "$TMP/wt" "$cmd" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  [ "$output" = 1 ]
  grep -q '"new":\[\]' "$TICKET_DIR/tests-compare.json"
}

@test "the base branch's run of the test command has the same limit; the gate then fails" {
  export BUGBOT_TEST_TIMEOUT_S=2
  : >"$TMP/wt/fixed"
  git -C "$TMP/wt" add fixed && git -C "$TMP/wt" commit --quiet -m "the fix"
  started=$SECONDS
  run harness_tests_gate "$TMP/wt" '[ -f fixed ] && { echo "not ok 1 - new bug"; exit 1; }; sleep 987654' \
    "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 1 ]
  [ $((SECONDS - started)) -le 8 ]
  grep -qx 'harness: the test command ran past harness.testTimeoutSeconds (2 s) and was stopped' "$TICKET_DIR/tests-base.log"
  wait_until no_process 'sleep 987654'
  [ ! -e "$TMP/wt.base" ]
}

@test "the gate in the background ends at the limit, a failure whose result names it, its process group empty" {
  export BUGBOT_TEST_TIMEOUT_S=2
  started=$SECONDS
  harness_gate_start "$TMP/wt" 'trap "" TERM; sleep 987655' "$TICKET_DIR/tests.log" origin/main
  wait_until test -s "$TICKET_DIR/gate.pid"
  pgid=$(cat "$TICKET_DIR/gate.pid")
  rc=0
  harness_gate_wait || rc=$?
  [ "$rc" -eq 124 ]
  [ $((SECONDS - started)) -le 8 ]
  [ "$(cat "$TICKET_DIR/result")" = "$(printf 'failed\tthe test command ran past harness.testTimeoutSeconds (2 s) and was stopped (see tests.log)')" ]
  grep -q 'ran past harness.testTimeoutSeconds (2 s)' "$TICKET_DIR/tests.log"
  [ -z "$(group_alive "$pgid")" ]
  [ -z "$(pgrep -f 'sleep 987655')" ]
  [ ! -e "$TMP/wt.gate" ]
}

# Review finding: with no HOME in the worker's environment (the control plane passes on
# its own, which a service manager may not set), harness_confine stopped on "HOME: unbound
# variable" under set -u: no dev server ever started, and devserver.log said nothing.
@test "confined code runs when the worker has no HOME; the home of its passwd entry is masked instead" {
  # shellcheck disable=SC2016 # expanded by the inner bash
  run env -u HOME bash -c 'set -euo pipefail
    source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/push.sh"
    harness_isolated "$1" "echo \"home=\$HOME\""
    harness_confine
    printf "%s\n" "${HARNESS_CONFINE[@]}"' _ "$TMP/wt"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "home=$TICKET_DIR/home" ]
  # What it hides is named under the passwd entry's home, as Claude Code's sandbox does (os.homedir()).
  local home p
  home=$(getent passwd "$(id -u)" | cut -d: -f6)
  [[ " ${lines[*]} " != *" /.ssh "* ]]
  for p in .ssh .aws .netrc .claude .claude.json .npmrc; do
    [ ! -e "$home/$p" ] || [[ " ${lines[*]} " == *" $home/$p "* ]]
  done
}
