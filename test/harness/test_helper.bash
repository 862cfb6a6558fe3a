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
