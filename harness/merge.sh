#!/usr/bin/env bash
# Approval mode: merge a fix that waits on its bot branch into staging, the way phase 5
# does in autopush mode. A temporary worktree of the target repository at
# <remote>/<branch> is rebased onto the latest <remote>/<staging> and pushed as
# HEAD:staging, retrying (bounded) when someone else pushed first. The worktree is
# removed on every exit path; the bot branch stays.
#
# Usage: harness/merge.sh <repo> <remote> <branch> <staging> <base> <retries> <work-dir> [<commit> [<from>]]
#   <from>: the commit the fix's worktree was made from; only <from>..<commit> is replayed.
#   <repo>      the target's base checkout (target.repo), shared with the workers
#   <work-dir>  scratch folder: the worktree, push.err, conflict.txt and merge.pid go here
#   <commit>    the commit a person reviewed: refused if the branch has moved since
# Prints the commit pushed to staging.
# Exit: 0 merged, 3 rebase conflict (files in <work-dir>/conflict.txt), 4 the branch moved,
#   1 failed, 2 bad usage.
set -euo pipefail

if [ "$#" -lt 7 ] || [ "$#" -gt 9 ]; then
  echo "usage: $0 <repo> <remote> <branch> <staging> <base> <retries> <work-dir> [<commit> [<from>]]" >&2
  exit 2
fi
repo=$1 remote=$2 branch=$3 staging=$4 base=$5 retries=$6 expected=${8:-} from=${9:-}
case $retries in
  '' | *[!0-9]* | 0) echo "merge: retries must be a positive integer, got '$retries'" >&2; exit 2 ;;
esac
mkdir -p "$7"
# push.sh's helpers write push.err and conflict.txt into $TICKET_DIR.
TICKET_DIR=$(cd "$7" && pwd)
# This merge's process group (the control plane starts it as a group leader): a control
# plane that starts after one killed mid-merge stops what is left of it.
echo "$$" >"$TICKET_DIR/merge.pid"
BUGBOT_HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUGBOT_WORKER_ID=${BUGBOT_WORKER_ID:-approve}
export TICKET_DIR BUGBOT_HARNESS BUGBOT_WORKER_ID

# shellcheck source=lib/common.sh
source "$BUGBOT_HARNESS/lib/common.sh"
# shellcheck source=lib/worktree.sh
source "$BUGBOT_HARNESS/lib/worktree.sh"
# shellcheck source=lib/push.sh
source "$BUGBOT_HARNESS/lib/push.sh"

[ -d "$repo" ] || { echo "merge: $repo does not exist" >&2; exit 2; }
# No repository hooks: they would run the fix's code outside any sandbox. And the shared
# repository pinned: this worktree is made while agents of other tickets may be at work.
harness_git_env /dev/null
harness_git_pin "$repo" || { echo "merge: $repo is not a git repository" >&2; exit 2; }
# The rebase writes new commits: the committer is bugbot, the author stays the fix's.
export GIT_COMMITTER_NAME="${BUGBOT_GIT_NAME:-bugbot}" GIT_COMMITTER_EMAIL="${BUGBOT_GIT_EMAIL:-bugbot@localhost}"
WORKTREE="$TICKET_DIR/worktree"
rm -f "$TICKET_DIR/conflict.txt" "$TICKET_DIR/push.err"

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  set +e
  harness_worktree_remove "$repo" "$WORKTREE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# A worktree left by an attempt that was killed outright.
harness_worktree_remove "$repo" "$WORKTREE"
if ! harness_fetch_locked "$repo" "$remote" "$branch" 2>"$TICKET_DIR/push.err"; then
  echo "merge: could not fetch $branch from $remote: $(tr '\n' ' ' <"$TICKET_DIR/push.err")" >&2
  exit 1
fi
# The commit is resolved once, and that commit (not the ref, which a fetch could move
# meanwhile) is what is checked and merged.
fetched=$(git -C "$repo" rev-parse "refs/remotes/$remote/$branch")
if [ -n "$expected" ] && [ "$fetched" != "$(git -C "$repo" rev-parse --verify --quiet "$expected^{commit}" || echo "$expected")" ]; then
  echo "merge: $branch has moved since it was reviewed (expected $expected): not merging what nobody reviewed" >&2
  exit 4
fi
harness_git_locked "$repo" worktree add --quiet --detach "$WORKTREE" "$fetched" ||
  { echo "merge: could not add a worktree at $remote/$branch ($fetched)" >&2; exit 1; }

rc=0
commit=$(harness_push_staging "$WORKTREE" "$remote" "$staging" "$base" "$retries" "$from") || rc=$?
case $rc in
  0) echo "$commit" ;;
  3) echo "merge: rebase onto $staging conflicts in: $(harness_conflicts)" >&2 ;;
  5) echo "merge: every change of $branch is on $staging already (at ${commit:0:12}): nothing merged again" >&2 ;;
  *)
    what="push to $staging failed after $retries attempt(s)"
    [ "$rc" -ne 4 ] || what="rebase onto $staging failed (not a conflict)"
    # Not retried: the remote takes no push at all (not writable, this user refused).
    [ "$rc" -ne 6 ] || what="$remote refused the push to $staging, not for another push coming first"
    grep -qs '^what is to be pushed\|^the branch no longer descends' "$TICKET_DIR/push.err" && what="not merged"
    echo "merge: $what: $(tr '\n' ' ' <"$TICKET_DIR/push.err" 2>/dev/null)" >&2
    rc=1
    ;;
esac
exit "$rc"
