#!/usr/bin/env bash
# Shared helpers for the harness: logging, status lines, failing with a reason.
# Sourced by worker.sh; every function is prefixed harness_.

# harness_now VAR [ms] : the current UTC time, ISO 8601 (with milliseconds when asked),
# into VAR. Bash builtins only: the harness stamps every step, and a fork of date(1) per
# stamp adds up on the path from the model's last reply to the push.
harness_now() {
  local -x TZ=UTC0
  local now=$EPOCHREALTIME frac
  frac=${now#*[.,]}
  if [ -n "${2:-}" ]; then
    printf -v "$1" '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "${now%[.,]*}" "${frac:0:3}"
  else
    printf -v "$1" '%(%Y-%m-%dT%H:%M:%S)TZ' "${now%[.,]*}"
  fi
}

# harness_log MESSAGE... : a timestamped line on stderr (the worker log).
harness_log() {
  local at
  harness_now at
  printf '%s worker-%s %s\n' "$at" "${BUGBOT_WORKER_ID:-?}" "$*" >&2
}

# harness_status PHASE STATE [DETAIL] : one progress line for the control plane (tabs and
# line breaks in STATE and DETAIL, such as git's words in a reason, become spaces).
harness_status() {
  local phase=$1 state=${2//[$'\t\r\n']/ } detail=${3:-} at
  harness_now at ms
  printf '%s\t%s\t%s\t%s\n' "$at" "$phase" "$state" "${detail//[$'\t\r\n']/ }" >>"$TICKET_DIR/status"
}

# harness_fail REASON : record why the run failed (first reason wins) and stop.
harness_fail() {
  harness_set_result failed "$1"
  harness_log "failed: $1"
  exit 1
}

# harness_fail_env REASON [FLAG...] : fail for a reason of the machine's (the remote out of
# reach, an install that could not run, the model endpoint down), not the ticket's. The
# control plane requeues the ticket without counting the attempt (a few times: what looks
# like the machine's fault may be the ticket's) and pauses its workers for a while,
# instead of failing every queued ticket the same way. FLAGs: `slot`: only this worker's
# slot pauses (its port is taken: the others' are not); `uncounted`: no ticket can cause
# this failure (the model endpoint refused the key, is out of credit, or nothing answers
# at its address), so the attempt is never counted, however often it happens. The reason
# is one line (the control plane reads the first), so its text names no flag.
harness_fail_env() {
  local flag flags=""
  for flag in "${@:2}"; do
    case $flag in
      slot) flags+=$'scope: slot\n' ;;
      uncounted) flags+=$'counts: never\n' ;;
    esac
  done
  printf '%s\n%s' "${1//[$'\t\r\n']/ }" "$flags" >"$TICKET_DIR/environment-failure"
  harness_fail "$1"
}

# harness_first_line FILE : the first line of FILE that says something (blank lines, and
# npm's "> package@version script" banners, skipped; at most 200 characters), for a reason
# that quotes what a command said (git's error, a test command's output); empty when none.
harness_first_line() {
  local line
  [ -r "$1" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line//[$'\t\r']/ }
    [[ $line =~ [^[:space:]] ]] || continue
    [[ $line =~ ^\>\  ]] && continue
    [[ $line =~ ^(npm\ (error|ERR!)[[:space:]]*)$ ]] && continue
    printf '%s\n' "${line:0:200}"
    return 0
  done <"$1"
}

# harness_set_result STATE REASON : the run's final state (first call wins), one line:
# tabs and line breaks in REASON (git's words, a remote's message) become spaces.
harness_set_result() {
  if [ ! -s "$TICKET_DIR/result" ]; then
    printf '%s\t%s\n' "$1" "${2//[$'\t\r\n']/ }" >"$TICKET_DIR/result"
  fi
}

# harness_rm_tree DIR : remove DIR and all it holds, folders left without write permission
# included (what ran there, a test of permission errors or a module cache, may leave
# them; rm -rf alone cannot empty them). Only folders are made writable, each before find
# goes into it (a file's mode does not stop its removal, and a hard-linked one is shared);
# links are not followed.
harness_rm_tree() {
  rm -rf -- "$1" 2>/dev/null && return 0
  find "$1" -type d ! -perm -u=rwx -exec chmod u+rwx -- {} \; 2>/dev/null
  rm -rf -- "$1"
}

# harness_replace_file FILE : stdin into FILE, by a new file renamed over it: what stood at
# FILE is replaced, never written through. For the run's agent/ folder, which the agent's
# sessions write: a symbolic link planted there (diff.patch → ~/.bashrc) would otherwise
# have the harness, outside any sandbox, write agent-influenced text into the operator's
# files. The new file's name is random and bash creates it with O_EXCL (noclobber), so
# nothing planted at that name is opened either; mv -T renames over FILE even when it is
# a link to a folder (plain mv would move the file into that folder). The mode is what
# `>` would give.
harness_replace_file() {
  local - dest=$1 tmp
  [[ $dest == */* ]] || dest=./$dest
  tmp="${dest%/*}/.${dest##*/}.$BASHPID.${SRANDOM:-$RANDOM$RANDOM}.tmp"
  set -o noclobber
  if cat >"$tmp" && mv -f -T -- "$tmp" "$dest"; then return 0; fi
  rm -f -- "$tmp"
  return 1
}

# harness_reap PGID ALIVE... : after a TERM to process group PGID, wait while ALIVE (a
# command) says something of it is left, KILL the group after 2 s, and give up 2 s later.
# A killed process is not gone at once on a busy machine, and what runs next (removing the
# folder it ran in, the next run on its port) needs it gone.
harness_reap() {
  local pgid=$1 waited=0
  shift
  while [ "$waited" -lt 80 ] && "$@"; do
    if [ "$waited" -eq 40 ]; then kill -KILL -- "-$pgid" 2>/dev/null || kill -KILL "$pgid" 2>/dev/null || true; fi
    sleep 0.05
    waited=$((waited + 1))
  done
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

# Credentials of the user running bugbot, their own Claude Code login included: code the
# agent wrote never sees them. Kept equal to CREDENTIALS in control/dispatcher/phases.ts.
HARNESS_CREDENTIALS=(.ssh .aws .gnupg .config/gh .config/gcloud .azure .kube .docker .netrc .git-credentials .npmrc .pgpass .claude .claude.json .config/claude)

# bugbot's own code and dependencies (paths in its checkout): the harness runs them for
# every later ticket. Kept equal to OWN_CODE in control/dispatcher/phases.ts.
HARNESS_OWN_CODE=(bin control harness lib mcp prompts node_modules package.json tsconfig.json)
HARNESS_BUGBOT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# What runs later, outside any sandbox, from the operator's home: shell and desktop
# session start-up and logout files, git's configuration (the harness's own git reads it),
# systemd user units and environment, a folder login shells put on PATH, the folders Node
# looks in for a module it cannot find. Kept equal to STARTUP in
# control/dispatcher/phases.ts (test/unit/policy.test.ts).
HARNESS_STARTUP=(.bashrc .profile .bash_profile .bash_login .bash_logout .zshenv .zprofile .zshrc .zlogin .zlogout .pam_environment .xprofile .xsessionrc .gitconfig .config/git .config/systemd .config/environment.d .config/autostart .config/fish .local/bin .node_modules .node_libraries)

# harness_confine [BWRAP_ARGS...] : sets HARNESS_CONFINE to the command prefix for code
# the agent may have written that runs outside Claude Code's sandbox (the dev server, the
# test command): no model credentials in its environment nor other processes in sight
# (their environments hold it), a throwaway HOME, the
# operator's credential files hidden, bugbot's home read-only with its database and local
# key hidden (bubblewrap; BWRAP_ARGS add to it, e.g. --bind DIR DIR for the worktree). No
# --die-with-parent here: the dev server outlives the subshell that starts it.
harness_confine() {
  local p home=${HOME:-}
  # No HOME in the environment (a service manager may start bugbot without one): the
  # passwd entry's, where Claude Code's sandbox (os.homedir()) hides the same files.
  [ -n "$home" ] || home=$(getent passwd "$(id -u)" | cut -d: -f6)
  mkdir -p "$TICKET_DIR/home"
  # A PID namespace of its own with its own /proc: the worker and the Claude Code session
  # hold the model key in their environments, readable through /proc by the same user.
  HARNESS_CONFINE=(env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u CLAUDE_CODE_OAUTH_TOKEN "HOME=$TICKET_DIR/home"
    bwrap --dev-bind / / --unshare-pid --proc /proc)
  for p in "${HARNESS_CREDENTIALS[@]}"; do
    if [ -d "$home/$p" ]; then
      HARNESS_CONFINE+=(--tmpfs "$home/$p")
    elif [ -e "$home/$p" ]; then
      HARNESS_CONFINE+=(--ro-bind /dev/null "$home/$p")
    fi
  done
  # Read-only: what runs later outside any confinement (bugbot's code, the operator's git
  # and shell start-up files, e.g. a core.fsmonitor or hooksPath in ~/.gitconfig).
  for p in "${HARNESS_OWN_CODE[@]}"; do
    [ ! -e "$HARNESS_BUGBOT_ROOT/$p" ] || HARNESS_CONFINE+=(--ro-bind "$HARNESS_BUGBOT_ROOT/$p" "$HARNESS_BUGBOT_ROOT/$p")
  done
  # Those missing were made before the run (the dispatcher's guardOperatorHome), so that
  # they exist to be bound. (Not the whole home read-only: build tools that ignore HOME,
  # Java's user.home among them, keep their caches there, ~/.m2, ~/.gradle.)
  for p in "${HARNESS_STARTUP[@]}"; do
    [ ! -e "$home/$p" ] || HARNESS_CONFINE+=(--ro-bind "$home/$p" "$home/$p")
  done
  # The base checkout's installed dependencies and lockfile: every later run's worktree and
  # test gate copies them (harness_deps_install). Written by the fix's tests at the gate,
  # they would make the base run that follows fail as the fix's did (excusing its
  # failures), and every later ticket's. Kept equal to `deps` in unwritable(), phases.ts.
  if [ -n "${BUGBOT_REPO:-}" ]; then
    for p in node_modules package-lock.json; do
      [ ! -e "$BUGBOT_REPO/$p" ] || HARNESS_CONFINE+=(--ro-bind "$BUGBOT_REPO/$p" "$BUGBOT_REPO/$p")
    done
  fi
  # The control plane's home: read-only; its database, local key (server.json) and
  # outcomes archive unreadable, and of the tickets' folders (other people's reports, MCP
  # credentials in config/) only this ticket's home is there. Callers bind back what the
  # command may write (its own folder).
  if [ -n "${BUGBOT_HOME:-}" ] && [ -d "$BUGBOT_HOME" ]; then
    HARNESS_CONFINE+=(--ro-bind "$BUGBOT_HOME" "$BUGBOT_HOME")
    [ ! -d "$BUGBOT_HOME/tickets" ] || HARNESS_CONFINE+=(--tmpfs "$BUGBOT_HOME/tickets")
    HARNESS_CONFINE+=(--bind "$TICKET_DIR/home" "$TICKET_DIR/home")
    for p in bugbot.db bugbot.db-wal bugbot.db-shm bugbot.lock.db server.json outcomes.jsonl; do
      [ ! -e "$BUGBOT_HOME/$p" ] || HARNESS_CONFINE+=(--ro-bind /dev/null "$BUGBOT_HOME/$p")
    done
  fi
  # The run's temp folder (TMPDIR, see worker.sh) is writable; the other runs' beside it are
  # not there.
  if [ -n "${BUGBOT_RUN_TMP:-}" ]; then
    HARNESS_CONFINE+=(--tmpfs "$(dirname "$BUGBOT_RUN_TMP")")
    [ ! -d "$BUGBOT_RUN_TMP" ] || HARNESS_CONFINE+=(--bind "$BUGBOT_RUN_TMP" "$BUGBOT_RUN_TMP")
  fi
  HARNESS_CONFINE+=("$@" --)
}

# harness_git_readonly DIR : sets HARNESS_GIT_RO to the bubblewrap arguments (after
# harness_confine's --bind of DIR) that leave confined code DIR's git data read-only: the
# common git dir (config, hooks, refs, every worktree's own git dir) and DIR/.git (in a
# worktree, the file naming its git dir). The harness's next git command would otherwise
# run what it wrote there (hooks, core.fsmonitor) outside any sandbox. Fails when DIR is
# not in a repository: there is then no git data to protect, and no run to do.
harness_git_readonly() {
  local dir=$1 common
  common=$(git -C "$dir" rev-parse --path-format=absolute --git-common-dir) && [ -d "$common" ] || return 1
  HARNESS_GIT_RO=(--ro-bind "$common" "$common")
  if [ -e "$dir/.git" ] && [ ! "$dir/.git" -ef "$common" ]; then HARNESS_GIT_RO+=(--ro-bind "$dir/.git" "$dir/.git"); fi
  # The workers' lock (harness_git_locked): flock needs no write access, so confined code
  # could hold it and stall every worker's fetch. It locks an empty file of its own instead.
  if [ -e "$common/bugbot.lock" ]; then HARNESS_GIT_RO+=(--ro-bind /dev/null "$common/bugbot.lock"); fi
}

# harness_git_env EXCLUDES : the configuration every later git command of this process
# and its children starts from (GIT_CONFIG_*: above the repository's own, like git -c).
# Entry 0, core.excludesFile, is also the agent's (harness_phase_start passes it on).
# Entry 1: no repository hooks. The harness's git commands run outside any sandbox, and a
# hook (a core.hooksPath of .husky, a post-commit, a pre-push) would run what the agent
# wrote there, with the worker's environment.
# Entry 2: no fsmonitor command (a repository's config could name one for git to run).
harness_git_env() {
  export GIT_CONFIG_COUNT=3 GIT_CONFIG_KEY_0=core.excludesFile GIT_CONFIG_VALUE_0="$1"
  export GIT_CONFIG_KEY_1=core.hooksPath GIT_CONFIG_VALUE_1=/dev/null
  export GIT_CONFIG_KEY_2=core.fsmonitor GIT_CONFIG_VALUE_2=false
}

# harness_git_pin REPO : pin the shared repository of REPO (the base checkout) for every
# git command the harness runs from now on (see git below). A checkout's own git dir
# (REPO/.git, a folder) never holds a `commondir` file: git writes one only in a linked
# worktree's. The agent's sandbox can write that folder (its worktrees commit there), and
# git follows such a file to the repository it names, config and all, this pin's
# rev-parse included: one there is refused, and the checkout's own .git pinned by path.
HARNESS_GIT_COMMON=""
harness_git_pin() {
  if [ -d "$1/.git" ] && [ ! -L "$1/.git" ]; then
    if [ -e "$1/.git/commondir" ] || [ -L "$1/.git/commondir" ]; then
      harness_log "$1/.git/commondir is there, which a checkout's own .git never holds (a command may have planted it to send git to another repository): remove it"
      return 1
    fi
    HARNESS_GIT_COMMON=$(cd "$1/.git" && pwd -P)
    return
  fi
  HARNESS_GIT_COMMON=$(command git -C "$1" rev-parse --path-format=absolute --git-common-dir) && [ -d "$HARNESS_GIT_COMMON" ]
}

# git : the harness's own git. A worktree finds the shared repository through the
# `commondir` file in the shared .git, which an agent's sandbox can write for worktrees
# made after its session started (another ticket's, this ticket's gate checkout). Pointed
# at a repository of the agent's making, git would read that repository's config and run
# what it names (core.fsmonitor, a filter, an ssh command) outside the sandbox, with the
# worker's environment. With the shared repository pinned (GIT_COMMON_DIR), no commondir
# file is read. (Children such as the test command are not affected: a function is not
# inherited.)
git() {
  if [ -n "$HARNESS_GIT_COMMON" ]; then GIT_COMMON_DIR=$HARNESS_GIT_COMMON command git "$@"; else command git "$@"; fi
}

# harness_stale_locks REF... : remove the lock of each REF (refs/remotes/<remote>/<branch>)
# that a killed git left behind: one older than HARNESS_STALE_LOCK_S (30 s), which no live
# git holds for a ref update. Left there, every later fetch of that ref fails ("cannot lock
# ref") for every ticket until someone removes it by hand. Called holding the repository's
# lock (harness_fetch_locked): no other worker's git can take the ref's lock between the
# age check and the removal.
HARNESS_STALE_LOCK_S=30
harness_stale_locks() {
  local ref lock mtime
  [ -n "$HARNESS_GIT_COMMON" ] || return 0
  for ref in "$@"; do
    lock="$HARNESS_GIT_COMMON/$ref.lock"
    [ -e "$lock" ] || continue
    mtime=$(stat -c %Y -- "$lock" 2>/dev/null) || continue
    if [ $((EPOCHSECONDS - mtime)) -gt "$HARNESS_STALE_LOCK_S" ]; then
      rm -f -- "$lock" && harness_log "removed $lock, left by a git that was stopped halfway"
    fi
  done
  return 0
}

# harness_git_locked REPO ARGS... : git in REPO, holding the repository's lock. Workers
# share the base checkout's .git (worktrees, remote refs); git's own lock files make
# concurrent fetches and worktree changes fail rather than wait, so we queue them.
# Waiting is bounded (HARNESS_LOCK_WAIT_S, default 600): a lock held that long (a hung
# fetch of another worker's) fails this command, with the reason, instead of the run hanging.
harness_git_locked() {
  local repo=$1
  shift
  harness_locked "$repo" "git $1" harness_git_pinned "$repo" "$@"
}

# harness_fetch_locked REPO REMOTE BRANCH : fetch BRANCH into refs/remotes/REMOTE/BRANCH (an
# explicit refspec: written whatever the remote's fetch config; a --single-branch clone
# maps nothing else), holding the repository's lock, after removing a stale lock of that ref.
harness_fetch_locked() {
  local repo=$1 remote=$2 branch=$3
  harness_locked "$repo" "git fetch" harness_fetch_unlocked "$repo" "$remote" "$branch"
}

harness_fetch_unlocked() {
  harness_stale_locks "refs/remotes/$2/$3"
  harness_git_net "$1" fetch --quiet "$2" "+refs/heads/$3:refs/remotes/$2/$3"
}

# harness_git_net REPO ARGS... : git in REPO talking to the remote (fetch, ls-remote, push),
# the shared repository pinned, stopped when it has not finished in HARNESS_GIT_NET_TIMEOUT_S
# (300): a remote or a network that hangs (a stalled connection, an ssh that never answers)
# would otherwise hold the run for ever, and with a fetch the repository's lock, which every
# other worker then waits on. Not --foreground: timeout runs git in a process group of its
# own and stops all of it; git killed alone leaves its ssh or git-remote-https running.
harness_git_net() {
  local repo=$1 secs=${HARNESS_GIT_NET_TIMEOUT_S:-300} rc=0
  shift
  timeout --kill-after=10s "$secs" env ${HARNESS_GIT_COMMON:+GIT_COMMON_DIR="$HARNESS_GIT_COMMON"} git -C "$repo" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "harness: git $1 had not finished after $secs s (the remote or the network stopped answering); stopped" >&2
  fi
  return "$rc"
}

# harness_git_pinned REPO ARGS... : git in REPO with the shared repository pinned (the git
# function above, spelt out for commands run under the lock).
harness_git_pinned() {
  local repo=$1
  shift
  env ${HARNESS_GIT_COMMON:+GIT_COMMON_DIR="$HARNESS_GIT_COMMON"} git -C "$repo" "$@"
}

# harness_locked REPO WHAT COMMAND... : run COMMAND holding the lock of REPO's shared .git
# (an empty file of bugbot's own, bugbot.lock), waiting at most HARNESS_LOCK_WAIT_S.
harness_locked() {
  local repo=$1 what=$2 common fd rc
  shift 2
  common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir) || return 1
  exec {fd}>>"$common/bugbot.lock" || return 1
  if ! flock -w "${HARNESS_LOCK_WAIT_S:-600}" "$fd"; then
    exec {fd}>&-
    echo "harness: the repository lock ($common/bugbot.lock) was held for ${HARNESS_LOCK_WAIT_S:-600} s; $what not run" >&2
    return 75
  fi
  # Run without the lock's descriptor: what the command leaves running (git's gc --auto
  # detaching after a fetch) would hold the lock as long as it runs.
  (
    exec {fd}>&-
    "$@"
  )
  rc=$?
  exec {fd}>&-
  return "$rc"
}
