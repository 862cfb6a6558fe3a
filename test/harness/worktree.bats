#!/usr/bin/env bats
# Worktrees and dependencies.
load test_helper
bats_require_minimum_version 1.5.0

setup() { setup_tmp; make_repo; }
teardown() { teardown_tmp; }

@test "worktree_add creates a branch from the latest origin/main" {
  printf 'newer\n' >"$TMP/other.txt"
  git clone --quiet "$TMP/origin.git" "$TMP/clone"
  git -C "$TMP/clone" -c user.name=x -c user.email=x@x commit --quiet --allow-empty -m "pushed by someone else"
  git -C "$TMP/clone" push --quiet origin main
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  run git -C "$TMP/wt" log --format=%s -1
  [ "$output" = "pushed by someone else" ]
  run git -C "$TMP/wt" rev-parse --abbrev-ref HEAD
  [ "$output" = "bot/t1" ]
}

@test "worktree_remove removes the worktree and keeps the branch with its work" {
  harness_worktree_add "$TMP/repo" origin main bot/t2 "$TMP/wt"
  printf 'fix\n' >"$TMP/wt/b.txt"
  git -C "$TMP/wt" add b.txt
  git -C "$TMP/wt" commit --quiet -m fix
  harness_worktree_remove "$TMP/repo" "$TMP/wt"
  [ ! -d "$TMP/wt" ]
  run git -C "$TMP/repo" worktree list
  [ "${#lines[@]}" -eq 1 ]
  run git -C "$TMP/repo" log --format=%s -1 bot/t2
  [ "$output" = "fix" ]
}

@test "deps_install copies node_modules when the lockfile matches: writing to the copy leaves the base checkout's alone" {
  printf '{}\n' >"$TMP/repo/package.json"
  printf '{"lockfileVersion":3}\n' >"$TMP/repo/package-lock.json"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m deps && git -C "$TMP/repo" push --quiet origin main
  mkdir -p "$TMP/repo/node_modules/left-pad"
  printf 'module.exports = 1\n' >"$TMP/repo/node_modules/left-pad/index.js"
  harness_worktree_add "$TMP/repo" origin main bot/t3 "$TMP/wt"
  run harness_deps_install "$TMP/repo" "$TMP/wt"
  [ "$status" -eq 0 ]
  [ "$output" = "copied" ]
  [ "$(cat "$TMP/wt/node_modules/left-pad/index.js")" = "module.exports = 1" ]
  printf 'process.env.PLANTED = 1\n' >>"$TMP/wt/node_modules/left-pad/index.js"
  [ "$(cat "$TMP/repo/node_modules/left-pad/index.js")" = "module.exports = 1" ]
}

@test "deps_install fails when the copy fails" {
  printf '{}\n' >"$TMP/repo/package.json"
  printf '{"lockfileVersion":3}\n' >"$TMP/repo/package-lock.json"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m deps && git -C "$TMP/repo" push --quiet origin main
  mkdir -p "$TMP/repo/node_modules/left-pad"
  harness_worktree_add "$TMP/repo" origin main bot/t4 "$TMP/wt"
  # A file where the folder goes: cp cannot put a folder there (root or not).
  printf 'in the way\n' >"$TMP/wt/node_modules"
  run harness_deps_install "$TMP/repo" "$TMP/wt"
  [ "$status" -ne 0 ]
  [[ "$output" != *copied* ]]
}

@test "ten workers adding worktrees at once all succeed (the shared checkout's git is serialised)" {
  local pids=() pid failed=0
  for i in 1 2 3 4 5 6 7 8 9 10; do
    harness_worktree_add "$TMP/repo" origin main "bot/c$i" "$TMP/wts/w$i" 2>"$TMP/err$i" &
    pids+=("$!")
  done
  # A bare `wait` returns 0 whatever its jobs exited with: wait for each by its PID.
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  [ "$failed" -eq 0 ]
  run ls "$TMP/wts"
  [ "${#lines[@]}" -eq 10 ]
  # Each is a worktree of the shared checkout (the base checkout is the first line).
  run git -C "$TMP/repo" worktree list
  [ "${#lines[@]}" -eq 11 ]
  run ! grep -q . "$TMP"/err*
}

# as_owner COMMAND... : COMMAND with only an owner's rights over files: bats may run as
# root, whom no permission stops (it runs without CAP_DAC_OVERRIDE then).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --bounding-set -dac_override,-dac_read_search --inh-caps -dac_override,-dac_read_search "$@"
  else
    "$@"
  fi
}

# Review finding: what runs in a checkout (the test command in <worktree>.gate, the dev
# server, the agent's commands) may leave a folder without write permission (a test of
# permission errors, a module cache). Neither git nor rm -rf could then remove the
# checkout: it stayed, and every later test gate failed at once ("already exists").
@test "worktree_remove removes a checkout holding a folder without write permission" {
  harness_worktree_add "$TMP/repo" origin main bot/t5 "$TMP/wt"
  mkdir -p "$TMP/wt/fixture/locked/sealed"
  : >"$TMP/wt/fixture/locked/f"
  : >"$TMP/wt/fixture/locked/sealed/g"
  chmod 000 "$TMP/wt/fixture/locked/sealed"
  chmod a-w "$TMP/wt/fixture/locked"
  # shellcheck disable=SC2016 # expanded by the inner bash
  as_owner bash -c 'source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/worktree.sh"; harness_worktree_remove "$1" "$2"' _ "$TMP/repo" "$TMP/wt"
  [ ! -e "$TMP/wt" ]
  [ "$(git -C "$TMP/repo" worktree list | wc -l)" -eq 1 ]
}

# Review finding: "could not create the worktree from origin/main" said nothing of why; git's
# own words were in worker.log only.
@test "worktree_create: a worktree that cannot be made fails as the machine's, quoting git's first line" {
  mv "$TMP/origin.git" "$TMP/origin.gone"
  run harness_worktree_create "$TMP/repo" origin main bot/t1 "$TMP/wt"
  [ "$status" -eq 1 ]
  [[ $(head -1 "$TICKET_DIR/environment-failure") == "could not create the worktree from origin/main: fatal: '$TMP/origin.git' does not appear to be a git repository" ]]
  [[ $(cut -f2 "$TICKET_DIR/result") == "could not create the worktree from origin/main: fatal: "* ]]
  # git's words, whole, still go to the worker's log.
  [[ $output == *"Could not read from remote repository"* ]]

  mv "$TMP/origin.gone" "$TMP/origin.git"
  rm -f "$TICKET_DIR/environment-failure" "$TICKET_DIR/result"
  run harness_worktree_create "$TMP/repo" origin main bot/t1 "$TMP/wt"
  [ "$status" -eq 0 ]
  [ -d "$TMP/wt" ] && [ ! -e "$TICKET_DIR/environment-failure" ]
}

# Review finding (ops): an origin out of reach failed each run at its fetch as a counted
# machine failure: after three refunds the attempts counted, and an outage of half an hour
# failed every queued ticket in turn while the workers only paused. No ticket can make a
# fetch of the base branch fail: never counted. A worktree that cannot be added after the
# fetch (a file where its folder goes) stays a counted one.
@test "worktree_create: a fetch that fails is never counted against the ticket; a worktree add that fails is" {
  mv "$TMP/origin.git" "$TMP/origin.gone"
  run harness_worktree_create "$TMP/repo" origin main bot/t1 "$TMP/wt"
  [ "$status" -eq 1 ]
  [ "$(sed -n 2p "$TICKET_DIR/environment-failure")" = "counts: never" ]

  mv "$TMP/origin.gone" "$TMP/origin.git"
  rm -f "$TICKET_DIR/environment-failure" "$TICKET_DIR/result"
  : >"$TMP/wt"
  run harness_worktree_create "$TMP/repo" origin main bot/t1 "$TMP/wt"
  [ "$status" -eq 1 ]
  [[ $(head -1 "$TICKET_DIR/environment-failure") == "could not create the worktree from origin/main: fatal: "* ]]
  [ "$(wc -l <"$TICKET_DIR/environment-failure")" -eq 1 ]
}

# Review finding (ops): two homes on one checkout claimed ticket 1 in the same second; the
# second's worktree add met the first's branch, and the run was "one the machine could not
# host", every worker of its home paused, nothing said why the branch was there.
@test "worktree_create: the run's branch there already (another home's ticket of the same number) is named, only the slot pauses, never counted, and the branch is left alone" {
  git -C "$TMP/repo" branch bot/t1 main
  local before
  before=$(git -C "$TMP/repo" rev-parse bot/t1)
  run harness_worktree_create "$TMP/repo" origin main bot/t1 "$TMP/wt"
  [ "$status" -eq 1 ]
  [[ $(head -1 "$TICKET_DIR/environment-failure") == "could not create the worktree: branch bot/t1 exists already in $TMP/repo, made by another bugbot home working on this checkout (ticket numbers are each home's own) or by a person; this run left it alone (give each home a checkout of its own)" ]]
  [ "$(sed -n 2,3p "$TICKET_DIR/environment-failure")" = $'scope: slot\ncounts: never' ]
  [ "$(git -C "$TMP/repo" rev-parse bot/t1)" = "$before" ]
  [ ! -e "$TMP/wt" ]
}
