#!/usr/bin/env bats
# harness/merge.sh: approval mode's merge of a bot branch into staging.
load test_helper

setup() {
  setup_tmp
  make_repo
  git -C "$TMP/repo" push --quiet origin main:staging
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  printf 'fixed\n' >"$TMP/wt/a.txt"
  git -C "$TMP/wt" commit --quiet -am "bugbot: fix"
  git -C "$TMP/wt" push --quiet origin HEAD:refs/heads/bot/t1
  harness_worktree_remove "$TMP/repo" "$TMP/wt"
}
teardown() { teardown_tmp; }

# on_staging FILE CONTENT MESSAGE : someone else's commit on origin's staging.
on_staging() {
  git clone --quiet --branch staging "$TMP/origin.git" "$TMP/other"
  printf '%s\n' "$2" >"$TMP/other/$1"
  git -C "$TMP/other" add -A
  git -C "$TMP/other" commit --quiet -m "$3"
  git -C "$TMP/other" push --quiet origin HEAD:staging
}

@test "merge rebases the bot branch onto a staging that moved, pushes it and removes its worktree" {
  on_staging b.txt other "someone else"
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main 3 "$TMP/work"
  [ "$status" -eq 0 ]
  [ "$output" = "$(git -C "$TMP/origin.git" rev-parse staging)" ]
  [ "$(git -C "$TMP/origin.git" show staging:a.txt)" = fixed ]
  [ "$(git -C "$TMP/origin.git" show staging:b.txt)" = other ]
  [ ! -d "$TMP/work/worktree" ]
  [ "$(git -C "$TMP/repo" worktree list | wc -l)" -eq 1 ]
}

@test "a conflict exits 3 naming the file, leaves staging alone and removes the worktree" {
  on_staging a.txt "changed on staging" "conflicting"
  before=$(git -C "$TMP/origin.git" rev-parse staging)
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main 3 "$TMP/work"
  [ "$status" -eq 3 ]
  [ "$(cat "$TMP/work/conflict.txt")" = a.txt ]
  [[ "$output" == *"conflicts in: a.txt"* ]]
  [ "$(git -C "$TMP/origin.git" rev-parse staging)" = "$before" ]
  [ ! -d "$TMP/work/worktree" ]
  [ "$(git -C "$TMP/repo" worktree list | wc -l)" -eq 1 ]
}

@test "a missing branch fails with the reason; bad arguments exit 2" {
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/nope staging main 3 "$TMP/work"
  [ "$status" -eq 1 ]
  [[ "$output" == *"could not fetch bot/nope from origin"* ]]
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main
  [ "$status" -eq 2 ]
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main many "$TMP/work"
  [ "$status" -eq 2 ]
}

@test "a branch that moved since it was reviewed is not merged (exit 4)" {
  reviewed=$(git -C "$TMP/origin.git" rev-parse bot/t1)
  git clone --quiet --branch bot/t1 "$TMP/origin.git" "$TMP/late"
  printf 'unreviewed\n' >"$TMP/late/a.txt"
  git -C "$TMP/late" commit --quiet -am "a later push"
  git -C "$TMP/late" push --quiet origin HEAD:bot/t1
  before=$(git -C "$TMP/origin.git" rev-parse staging)
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main 3 "$TMP/work" "$reviewed"
  [ "$status" -eq 4 ]
  [[ "$output" == *"has moved since it was reviewed"* ]]
  [ "$(git -C "$TMP/origin.git" rev-parse staging)" = "$before" ]
  # The reviewed commit itself merges.
  git -C "$TMP/late" push --quiet --force origin "$reviewed:refs/heads/bot/t1"
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main 3 "$TMP/work" "$reviewed"
  [ "$status" -eq 0 ]
}

# The worker records the commit its worktree was made from (push.env base_commit); with
# it, the merge replays only the fix's own commits: a base force-pushed since (a leaked
# key dropped) brings nothing back onto staging.
@test "with <from>, only the fix's own commits are replayed onto staging" {
  teardown_tmp; setup_tmp; make_repo
  printf 'AKIA-leaked\n' >"$TMP/repo/secret.txt"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m "B: leaked a key" && git -C "$TMP/repo" push --quiet origin main
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  local from commit
  from=$(git -C "$TMP/wt" rev-parse HEAD)
  printf 'fixed\n' >"$TMP/wt/a.txt"
  git -C "$TMP/wt" commit --quiet -am "bugbot: fix"
  git -C "$TMP/wt" push --quiet origin HEAD:refs/heads/bot/t1
  commit=$(git -C "$TMP/wt" rev-parse HEAD)
  harness_worktree_remove "$TMP/repo" "$TMP/wt"
  git clone --quiet "$TMP/origin.git" "$TMP/op"
  git -C "$TMP/op" reset --quiet --hard HEAD~1
  git -C "$TMP/op" push --quiet --force origin main
  git -C "$TMP/op" push --quiet origin main:staging
  run "$HARNESS/merge.sh" "$TMP/repo" origin bot/t1 staging main 3 "$TMP/work" "$commit" "$from"
  [ "$status" -eq 0 ]
  run git -C "$TMP/origin.git" log --format=%s staging
  [ "${lines[0]}" = "bugbot: fix" ]
  [ "${lines[1]}" = "init" ]
  [ "${#lines[@]}" -eq 2 ]
}
