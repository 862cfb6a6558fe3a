#!/usr/bin/env bash
# Worktree per ticket, from the latest base branch, and its dependencies.

# harness_worktree_add REPO REMOTE BASE BRANCH DIR : fetch BASE, add a worktree on a new
# branch. Returns 3 when the fetch failed (REMOTE out of reach, BASE not on it, the
# repository lock held too long), 4 when BRANCH is there already (left as it is), 1 when
# the worktree could not be added.
harness_worktree_add() {
  local repo=$1 remote=$2 base=$3 branch=$4 dir=$5
  harness_fetch_locked "$repo" "$remote" "$base" || return 3
  mkdir -p "$(dirname "$dir")"
  harness_locked "$repo" "git worktree add" harness_worktree_add_unlocked "$repo" "$remote/$base" "$branch" "$dir"
}

# Asked before the add, under the same lock: a `worktree add -b` that fails (its folder in
# the way) has made the branch already, so afterwards "it exists" would tell nothing.
harness_worktree_add_unlocked() {
  local repo=$1 start=$2 branch=$3 dir=$4
  if harness_git_pinned "$repo" rev-parse --verify --quiet "refs/heads/$branch" >/dev/null; then return 4; fi
  # --no-track: no upstream written to the shared .git/config (concurrent workers would
  # fight over its lock); the commit identity comes from GIT_AUTHOR_* / GIT_COMMITTER_*.
  harness_git_pinned "$repo" worktree add --quiet --no-track -b "$branch" "$dir" "$start" || return 1
}

# harness_worktree_create REPO REMOTE BASE BRANCH DIR : harness_worktree_add, or the run
# fails as one the machine could not host, its reason quoting the first line of git's own
# error (which still goes to the worker's log whole). A fetch that failed is never counted
# against the ticket (`uncounted`): nothing of a ticket goes into fetching the base branch,
# and counted, an origin out of reach for half an hour (its refunds spent, then its
# attempts) would fail every queued ticket in turn while the workers only pause.
harness_worktree_create() {
  local err="$TICKET_DIR/worktree.err" why rc=0
  harness_worktree_add "$@" 2>"$err" || rc=$?
  cat -- "$err" >&2
  [ "$rc" -ne 0 ] || return 0
  why=$(harness_first_line "$err")
  if [ "$rc" -eq 3 ]; then harness_fail_env "could not create the worktree from $2/$3${why:+: $why}" uncounted; fi
  # The run's branch there already: another bugbot home on this checkout claimed a ticket of
  # the same number in the same second (each home numbers its own tickets), or a person
  # made it. Nothing of the machine's nor the ticket's: the next run's name differs, so
  # only this worker's slot pauses, and the attempt is never counted.
  if [ "$rc" -eq 4 ]; then
    harness_fail_env "could not create the worktree: branch $4 exists already in $1, made by another bugbot home working on this checkout (ticket numbers are each home's own) or by a person; this run left it alone (give each home a checkout of its own)" slot uncounted
  fi
  harness_fail_env "could not create the worktree from $2/$3${why:+: $why}"
}

# harness_worktree_remove REPO DIR : remove the worktree; its branch (and any work on it) stays.
harness_worktree_remove() {
  local repo=$1 dir=$2
  [ -d "$dir" ] || return 0
  harness_git_locked "$repo" worktree remove --force "$dir" 2>/dev/null || harness_rm_tree "$dir"
  harness_git_locked "$repo" worktree prune
}

# harness_deps_install REPO DIR [CONFINED] : node_modules for DIR (the worktree, or a
# checkout of the test gate). When the lockfile matches the base checkout's, a copy of its
# modules (no network; instant where the filesystem shares blocks between copies, such as
# btrfs or XFS; a plain copy elsewhere); otherwise an install from the lockfile, under
# harness_confine when CONFINED is given: DIR is a commit of the fix's, whose package.json,
# lockfile or .npmrc, or the files their install scripts run, are the agent's, and would
# otherwise run outside any sandbox with the worker's environment. A copy, not hard links:
# code the agent wrote runs in DIR (tests, the dev server), and a file shared by a hard
# link is the base checkout's own file, so writing to it would change the modules of every
# later ticket and of the operator's checkout.
harness_deps_install() {
  local repo=$1 dir=$2
  [ -f "$dir/package.json" ] || return 0
  if [ -d "$repo/node_modules" ] && [ -f "$dir/package-lock.json" ] && cmp -s "$repo/package-lock.json" "$dir/package-lock.json"; then
    cp -a --reflink=auto "$repo/node_modules" "$dir/node_modules" || return 1
    echo "copied"
    return 0
  fi
  HARNESS_CONFINE=()
  if [ -n "${3:-}" ]; then
    harness_git_readonly "$dir" || return 1
    harness_confine --die-with-parent --bind "$dir" "$dir" "${HARNESS_GIT_RO[@]}"
  fi
  (cd "$dir" && "${HARNESS_CONFINE[@]}" npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  echo "installed"
}
