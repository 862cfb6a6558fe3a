#!/usr/bin/env bash
# Shared helpers for the harness: logging, status lines, failing with a reason.
# Sourced by worker.sh; every function is prefixed harness_.

# harness_log MESSAGE... : a timestamped line on stderr (the worker log).
harness_log() {
  printf '%s worker-%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${BUGBOT_WORKER_ID:-?}" "$*" >&2
}

# harness_status PHASE STATE [DETAIL] : one progress line for the control plane.
harness_status() {
  local phase=$1 state=$2 detail=${3:-}
  printf '%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$phase" "$state" "$detail" >>"$TICKET_DIR/status"
}

# harness_fail REASON : record why the run failed (first reason wins) and stop.
harness_fail() {
  harness_set_result failed "$1"
  harness_log "failed: $1"
  exit 1
}

# harness_set_result STATE REASON : the run's final state (first call wins).
harness_set_result() {
  if [ ! -s "$TICKET_DIR/result" ]; then
    printf '%s\t%s\n' "$1" "$2" >"$TICKET_DIR/result"
  fi
}

# harness_require VAR... : fail when a required variable is empty.
harness_require() {
  local v
  for v in "$@"; do
    if [ -z "${!v:-}" ]; then
      echo "harness: $v is not set (ticket.env is incomplete)" >&2
      exit 2
    fi
  done
}

# harness_git_locked REPO ARGS... : git in REPO, holding the repository's lock. Workers
# share the base checkout's .git (worktrees, remote refs); git's own lock files make
# concurrent fetches and worktree changes fail rather than wait, so we queue them.
harness_git_locked() {
  local repo=$1 common
  shift
  common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir)
  flock "$common/bugbot.lock" git -C "$repo" "$@"
}
