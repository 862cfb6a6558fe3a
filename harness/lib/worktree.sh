#!/usr/bin/env bash
# Worktree per ticket, from the latest base branch, and its dependencies.

# harness_worktree_add REPO REMOTE BASE BRANCH DIR : fetch BASE, add a worktree on a new branch.
harness_worktree_add() {
  local repo=$1 remote=$2 base=$3 branch=$4 dir=$5
  harness_fetch_locked "$repo" "$remote" "$base" || return 1
  mkdir -p "$(dirname "$dir")"
  # --no-track: no upstream written to the shared .git/config (concurrent workers would
  # fight over its lock); the commit identity comes from GIT_AUTHOR_* / GIT_COMMITTER_*.
  harness_git_locked "$repo" worktree add --quiet --no-track -b "$branch" "$dir" "$remote/$base" || return 1
}

# harness_worktree_create REPO REMOTE BASE BRANCH DIR : harness_worktree_add, or the run
# fails as one the machine could not host, its reason quoting the first line of git's own
# error (which still goes to the worker's log whole).
harness_worktree_create() {
  local err="$TICKET_DIR/worktree.err" why
  if harness_worktree_add "$@" 2>"$err"; then
    cat -- "$err" >&2
    return 0
  fi
  cat -- "$err" >&2
  why=$(harness_first_line "$err")
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
# harness_confine when CONFINED is given: DIR's package.json, lockfile or .npmrc are the
# agent's, and the install scripts they name would otherwise run outside any sandbox with
# the worker's environment. A copy, not hard links: code the agent wrote runs in DIR
# (tests, the dev server), and a file shared by a hard link is the base checkout's own
# file, so writing to it would change the modules of every later ticket and of the
# operator's checkout.
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
