#!/usr/bin/env bats
# Phase 5 pieces: placeholders, forced commit, protected paths, tests gate, push.
load test_helper

setup() { setup_tmp; make_repo; harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"; }
teardown() { teardown_tmp; }

@test "sandbox placeholders are excluded and removed; real work is committed" {
  harness_sandbox_excludes "$TMP/wt" "$TICKET_DIR/config/git-excludes"
  grep -qx '/.bashrc' "$TICKET_DIR/config/git-excludes"
  : >"$TMP/wt/.bashrc"
  : >"$TMP/wt/.env"
  printf 'real\n' >"$TMP/wt/fix.txt"
  run harness_force_commit "$TMP/wt" "bugbot: fix"
  [ "$output" = "committed" ]
  run git -C "$TMP/wt" show --name-only --format= HEAD
  [ "$output" = "fix.txt" ]
  [ ! -e "$TMP/wt/.bashrc" ]
}

@test "force_commit with nothing to commit says clean" {
  run harness_force_commit "$TMP/wt" "nothing"
  [ "$output" = "clean" ]
}

@test "protected_paths names CI, agent and hook configuration in the diff" {
  mkdir -p "$TMP/wt/.github/workflows" "$TMP/wt/.claude"
  printf 'on: push\n' >"$TMP/wt/.github/workflows/ci.yml"
  printf '{}\n' >"$TMP/wt/.claude/settings.json"
  printf 'ok\n' >"$TMP/wt/src.txt"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m sneaky
  run bash -c 'source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/push.sh"; harness_changed_files "$1" origin/main | harness_protected_paths' _ "$TMP/wt"
  [ "$status" -eq 0 ]
  [[ "$output" == *".github/workflows/ci.yml"* ]]
  [[ "$output" == *".claude/settings.json"* ]]
  [[ "$output" != *"src.txt"* ]]
}

# protected_in WORKTREE : as worker.sh phase 5 checks a diff: the changed files, then
# those under protected paths; in a UTF-8 locale, as the worker usually runs.
protected_in() {
  LC_ALL=C.UTF-8 bash -c 'source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/push.sh"
    changed=$(harness_changed_files "$1" origin/main) || exit 3
    printf "%s\n" "$changed" | harness_protected_paths' _ "$1"
}

@test "protected_paths sees names git would quote: non-ASCII, not UTF-8, with spaces" {
  mkdir -p "$TMP/wt/.github/workflows" "$TMP/wt/src"
  # Regression: git diff --name-only printed ".github/workflows/d\303\251.yml" (quoted,
  # core.quotePath), which ^\.github/workflows/ did not match, and the workflow was pushed.
  printf 'on: push\n' >"$TMP/wt/.github/workflows/dé.yml"
  printf 'on: push\n' >"$TMP/wt/.github/workflows/my ci.yml"
  printf 'on: push\n' >"$TMP/wt/.github/workflows/"$'\xff'".yml"
  printf 'ok\n' >"$TMP/wt/src/café.txt"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m sneaky
  run bash -c 'source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/push.sh"; harness_changed_files "$1" origin/main' _ "$TMP/wt"
  [ "$status" -eq 0 ]
  [ "$output" = ".github/workflows/dé.yml"$'\n'".github/workflows/my ci.yml"$'\n'".github/workflows/"$'\xff'".yml"$'\n'"src/café.txt" ]
  run protected_in "$TMP/wt"
  [ "$status" -eq 0 ]
  [ "$output" = ".github/workflows/dé.yml"$'\n'".github/workflows/my ci.yml"$'\n'".github/workflows/"$'\xff'".yml" ]
}

@test "protected_paths counts a protected file moved away under its old name" {
  mkdir -p "$TMP/repo/.github/workflows"
  printf 'on: push\n' >"$TMP/repo/.github/workflows/ci.yml"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m ci && git -C "$TMP/repo" push --quiet origin main
  git -C "$TMP/wt" pull --quiet origin main
  git -C "$TMP/wt" mv .github/workflows/ci.yml ci.yml.off
  git -C "$TMP/wt" commit --quiet -m "disable ci"
  run protected_in "$TMP/wt"
  [ "$status" -eq 0 ]
  [ "$output" = ".github/workflows/ci.yml" ]
}

@test "changed_files refuses a name with a newline in it (no line-by-line check could see it whole)" {
  mkdir -p "$TMP/wt/.github/workflows"
  printf 'on: push\n' >"$TMP/wt/.github/workflows/a"$'\n'"b.yml"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m sneaky
  [ "$(git -C "$TMP/wt" show --name-only -z --format= HEAD | tr '\0' '|')" = $'.github/workflows/a\nb.yml|' ]
  run protected_in "$TMP/wt"
  [ "$status" -eq 3 ]
  [[ "$output" == *"has a newline in it"* ]]
}

@test "protected_paths fails rather than pass a diff it could not check" {
  run bash -c 'source "$BUGBOT_HARNESS/lib/push.sh"; printf ".github/workflows/ci.yml\n" | harness_protected_paths' </dev/null
  [ "$status" -eq 0 ]
  [ "$output" = ".github/workflows/ci.yml" ]
  # Nothing protected: empty output, success.
  run bash -c 'source "$BUGBOT_HARNESS/lib/push.sh"; printf "src/a.ts\n" | harness_protected_paths'
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  # A pattern file grep cannot read, or a grep without -P: an error, not "nothing protected".
  mkdir -p "$TMP/h/lib" && printf '(unclosed\n' >"$TMP/h/lib/protected-paths.txt"
  run bash -c 'source "$BUGBOT_HARNESS/lib/push.sh"; BUGBOT_HARNESS=$1; printf "src/a.ts\n" | harness_protected_paths' _ "$TMP/h"
  [ "$status" -ne 0 ]
  rm "$TMP/h/lib/protected-paths.txt"
  run bash -c 'source "$BUGBOT_HARNESS/lib/push.sh"; BUGBOT_HARNESS=$1; printf "src/a.ts\n" | harness_protected_paths' _ "$TMP/h"
  [ "$status" -ne 0 ]
}

@test "tests gate passes, and tolerates failures that the base has too, but not new ones" {
  run harness_tests_gate "$TMP/wt" "true" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  [ "$output" = "0" ]
  # A runner that reports one failing test on the base and the same one now.
  printf '#!/bin/sh\necho "not ok 1 - old bug"\nexit 1\n' >"$TMP/wt/t.sh"
  run harness_tests_gate "$TMP/wt" "sh $TMP/wt/t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  [ "$output" = "1" ]
  # A new failure that the base does not have blocks the push.
  git -C "$TMP/wt" add t.sh && git -C "$TMP/wt" commit --quiet -m runner
  printf '#!/bin/sh\n[ -f fixed ] && { echo "not ok 2 - new bug"; exit 1; }\necho "ok 1"\n' >"$TMP/wt/t2.sh"
  : >"$TMP/wt/fixed"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m "the fix, and a new bug"
  run harness_tests_gate "$TMP/wt" "sh t2.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -ne 0 ]
}

# package_repo : $TMP/repo with a package.json, its lockfile and installed modules (one
# module, dep, exporting "real"), pushed; $TMP/wt2 a worktree of it with its dependencies.
package_repo() {
  printf '{"name":"t","version":"1.0.0"}\n' >"$TMP/repo/package.json"
  printf '{"name":"t","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"t","version":"1.0.0"}}}\n' >"$TMP/repo/package-lock.json"
  printf 'node_modules/\n' >"$TMP/repo/.gitignore"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m package && git -C "$TMP/repo" push --quiet origin main
  mkdir -p "$TMP/repo/node_modules/dep"
  printf 'module.exports = "real"\n' >"$TMP/repo/node_modules/dep/index.js"
  harness_worktree_add "$TMP/repo" origin main bot/t2 "$TMP/wt2"
  [ "$(harness_deps_install "$TMP/repo" "$TMP/wt2")" = copied ]
}

@test "tests gate installs dependencies afresh from the base checkout: a module patched in the worktree passes nothing" {
  package_repo
  # The fix's test passes only with the module the agent patched in the worktree's copy.
  printf '%s\n' "node -e 'if (require(\"dep\") !== \"patched\") { console.log(\"not ok 1 - dep is patched\"); process.exit(1) } console.log(\"ok 1\")'" >"$TMP/wt2/t.sh"
  git -C "$TMP/wt2" add t.sh && git -C "$TMP/wt2" commit --quiet -m "the fix's test"
  printf 'module.exports = "patched"\n' >"$TMP/wt2/node_modules/dep/index.js"
  (cd "$TMP/wt2" && sh t.sh)
  run harness_tests_gate "$TMP/wt2" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 1 ]
  grep -q 'not ok 1 - dep is patched' "$TICKET_DIR/tests.log"
  [ "$(cat "$TMP/repo/node_modules/dep/index.js")" = 'module.exports = "real"' ]
  [ ! -e "$TMP/wt2.gate" ] && [ ! -e "$TMP/wt2.base" ]
}

# Review finding: the fix's test command, run at the gate outside Claude Code's sandbox,
# could write the base checkout's node_modules (found through the git common dir): the
# base run that follows copies them, failed as the fix did, and excused its failures (and
# every later ticket's gate and worktree copied them too).
@test "tests gate: the fix's tests cannot write the base checkout's modules, so they cannot make the base fail as the fix does" {
  package_repo
  printf '%s\n' "node -e 'if (require(\"dep\") !== \"real\") { console.log(\"not ok 1 - dep\"); process.exit(1) } console.log(\"ok 1 - dep\")'" >"$TMP/repo/t.sh"
  git -C "$TMP/repo" add t.sh && git -C "$TMP/repo" commit --quiet -m "the base's test" && git -C "$TMP/repo" push --quiet origin main
  git -C "$TMP/wt2" pull --quiet --no-rebase origin main
  cat >"$TMP/wt2/t.sh" <<'SH'
base=$(dirname "$(git rev-parse --path-format=absolute --git-common-dir)")
printf 'module.exports = "patched"\n' >"$base/node_modules/dep/index.js"
echo "not ok 1 - dep"; exit 1
SH
  git -C "$TMP/wt2" add t.sh && git -C "$TMP/wt2" commit --quiet -m "a fix that breaks the test"
  run harness_tests_gate "$TMP/wt2" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 1 ]
  [ "$(cat "$TMP/repo/node_modules/dep/index.js")" = 'module.exports = "real"' ]
  grep -q 'ok 1 - dep' "$TICKET_DIR/tests-base.log"
}

@test "tests gate: a fix that changes package.json installs from it confined (its install scripts see no model key, no credentials)" {
  package_repo
  # Without the base checkout's lockfile to copy from, the gate installs (npm ci).
  rm -rf "$TMP/repo/node_modules"
  printf '{"name":"t","version":"1.0.0","scripts":{"postinstall":"echo \\"key=${ANTHROPIC_API_KEY:-none} home=$HOME\\" >%s"}}\n' "$TMP/installed" >"$TMP/wt2/package.json"
  printf 'echo "ok 1"\n' >"$TMP/wt2/t.sh"
  git -C "$TMP/wt2" add -A && git -C "$TMP/wt2" commit --quiet -m "the fix, with an install script"
  ANTHROPIC_API_KEY=CANARY-key run harness_tests_gate "$TMP/wt2" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  [ "$(cat "$TMP/installed")" = "key=none home=$TICKET_DIR/home" ]
}

# Review finding: only an install from package files the fix changed ran confined; with
# them unchanged and the base checkout's lockfile not the same (or no node_modules there),
# the gate ran `npm ci` bare on the fix's commit, and the base's own postinstall ran a file
# the fix had changed, with the worker's environment (the model key).
@test "tests gate: an install of the fix's commit runs confined even when its package files are the base's (their scripts run the fix's files)" {
  printf '{"name":"t","version":"1.0.0","scripts":{"postinstall":"sh hook.sh"}}\n' >"$TMP/repo/package.json"
  printf '{"name":"t","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"t","version":"1.0.0","hasInstallScript":true}}}\n' >"$TMP/repo/package-lock.json"
  printf 'true\n' >"$TMP/repo/hook.sh"
  printf 'node_modules/\n' >"$TMP/repo/.gitignore"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m package && git -C "$TMP/repo" push --quiet origin main
  # No node_modules in the base checkout: every checkout installs.
  harness_worktree_add "$TMP/repo" origin main bot/t2 "$TMP/wt2"
  printf 'echo "key=${ANTHROPIC_API_KEY:-none} home=$HOME" >%s\n' "$TMP/installed" >"$TMP/wt2/hook.sh"
  printf 'echo "ok 1"\n' >"$TMP/wt2/t.sh"
  git -C "$TMP/wt2" add -A && git -C "$TMP/wt2" commit --quiet -m "the fix, changing what postinstall runs"
  ANTHROPIC_API_KEY=CANARY-key run harness_tests_gate "$TMP/wt2" "sh t.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 0 ]
  [ "$(cat "$TMP/installed")" = "key=none home=$TICKET_DIR/home" ]
}

@test "tests gate tests the given commit in a checkout of its own, not the working folder" {
  printf '#!/bin/sh\n[ -f wip ] && { echo "not ok 1 - unfinished work seen"; exit 1; }\necho "ok 1 - committed code"\n' >"$TMP/wt/t.sh"
  git -C "$TMP/wt" add t.sh && git -C "$TMP/wt" commit --quiet -m runner
  rev=$(git -C "$TMP/wt" rev-parse HEAD)
  : >"$TMP/wt/wip"
  printf 'later\n' >"$TMP/wt/later.txt"
  git -C "$TMP/wt" add later.txt && git -C "$TMP/wt" commit --quiet -m later
  run harness_tests_gate "$TMP/wt" "sh t.sh; test ! -e later.txt" "$TICKET_DIR/tests.log" origin/main "$rev"
  [ "$status" -eq 0 ]
  [ "$output" = "0" ]
  grep -q 'ok 1 - committed code' "$TICKET_DIR/tests.log"
  [ ! -e "$TMP/wt.gate" ]
  [ ! -e "$TMP/wt.base" ]
  [ -z "$(git -C "$TMP/wt" worktree list | grep -e '\.gate' -e '\.base')" ]
}

# A fix committed in the worktree while someone else pushes to staging.
fix_while_staging_moves() {
  printf 'fix\n' >"$TMP/wt/fix.txt"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m fix
  git clone --quiet "$TMP/origin.git" "$TMP/other"
  git -C "$TMP/other" -c user.name=x -c user.email=x@x commit --quiet --allow-empty -m "someone else on staging"
  git -C "$TMP/other" push --quiet origin HEAD:staging
}

@test "push_staging rebases onto a staging branch that moved, and retries" {
  fix_while_staging_moves
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 0 ]
  run git -C "$TMP/origin.git" log --format=%s staging
  [ "${lines[0]}" = "fix" ]
  [ "${lines[1]}" = "someone else on staging" ]
}

@test "push_staging: a rebase that fails without a conflict is a failure (status 4) with git's reason, not a conflict" {
  fix_while_staging_moves
  # Uncommitted changes to a tracked file: git refuses to rebase at all.
  printf 'dirty\n' >>"$TMP/wt/fix.txt"
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 4 ]
  [ ! -s "$TICKET_DIR/conflict.txt" ]
  grep -qi 'unstaged\|uncommitted\|local changes' "$TICKET_DIR/push.err"
}

# A fix that reads one way and runs another ("Trojan Source": a right-to-left override moves
# what follows it on screen) went to staging with nobody to see it in autopush mode.
@test "push_staging refuses a fix whose added lines hold bidirectional control characters (status 4), naming the files" {
  mkdir -p "$TMP/wt/src dir"
  printf 'if (role === "user\xe2\x80\xae \xe2\x81\xa6// admin\xe2\x81\xa9 \xe2\x81\xa6") allow();\n' >"$TMP/wt/src dir/auth.ts"
  printf 'plain\n' >"$TMP/wt/plain.ts"
  # An added line that reads like a file's header in the diff ("+" then "++ ...").
  printf '++ count; // \xe2\x80\xae\n' >"$TMP/wt/count.js"
  git -C "$TMP/wt" add -A
  git -C "$TMP/wt" commit --quiet -m fix
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 4 ]
  [ "$(cat "$TICKET_DIR/push.err")" = "what is to be pushed adds bidirectional control characters (U+202A-U+202E, U+2066-U+2069: code that reads one way and runs another) in: count.js src dir/auth.ts" ]
  run git -C "$TMP/origin.git" rev-parse --verify --quiet refs/heads/staging
  [ "$status" -ne 0 ]
  # Removing one is fine, and so is other non-ASCII text (a right-to-left language itself).
  git -C "$TMP/wt" rm --quiet "src dir/auth.ts" count.js
  printf 'greeting = "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"  # caf\xc3\xa9\n' >"$TMP/wt/plain.ts"
  git -C "$TMP/wt" commit --quiet -am "without it"
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 0 ]
}

@test "push_staging reports a rebase conflict with the file named (status 3)" {
  printf 'mine\n' >"$TMP/wt/a.txt"
  git -C "$TMP/wt" commit --quiet -am mine
  git clone --quiet "$TMP/origin.git" "$TMP/other"
  printf 'theirs\n' >"$TMP/other/a.txt"
  git -C "$TMP/other" -c user.name=x -c user.email=x@x commit --quiet -am theirs
  git -C "$TMP/other" push --quiet origin HEAD:staging
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 3 ]
  [ "$(cat "$TICKET_DIR/conflict.txt")" = "a.txt" ]
  run git -C "$TMP/wt" status --porcelain
  [ -z "$output" ]
}

@test "the harness's git commands run no repository hooks, not even ones the fix adds under core.hooksPath" {
  harness_git_env "$TICKET_DIR/config/git-excludes"
  : >"$TICKET_DIR/config/git-excludes"
  # (A folder the protected paths do not name: .husky/ would stop the push by itself.)
  git -C "$TMP/repo" config core.hooksPath scripts/hooks
  mkdir -p "$TMP/wt/scripts/hooks"
  for hook in post-commit prepare-commit-msg post-rewrite post-checkout pre-push reference-transaction; do
    printf '#!/bin/sh\necho %s >>"%s/ran"\n' "$hook" "$TMP" >"$TMP/wt/scripts/hooks/$hook"
    chmod +x "$TMP/wt/scripts/hooks/$hook"
  done
  # A hook the base checkout itself has runs no more than the fix's.
  printf '#!/bin/sh\necho base-pre-push >>"%s/ran"\n' "$TMP" >"$TMP/repo/.git/hooks/pre-push"
  chmod +x "$TMP/repo/.git/hooks/pre-push"
  harness_force_commit "$TMP/wt" "fix with hooks" >/dev/null
  fix_while_staging_moves
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 0 ]
  [ ! -e "$TMP/ran" ] || { cat "$TMP/ran"; false; }
  # Without the harness's configuration the same repository does run them (the test can fail).
  (unset GIT_CONFIG_COUNT; git -C "$TMP/wt" commit --quiet --allow-empty -m probe)
  grep -q post-commit "$TMP/ran"
}

@test "fetches write the remote-tracking refs of a clone that maps only its own branch" {
  git -C "$TMP/origin.git" branch staging main
  git clone --quiet --single-branch --branch main "$TMP/origin.git" "$TMP/single"
  run git -C "$TMP/single" rev-parse --verify --quiet refs/remotes/origin/staging
  [ "$status" -ne 0 ]
  harness_worktree_add "$TMP/single" origin main bot/t2 "$TMP/wt2"
  printf 'fix\n' >"$TMP/wt2/fix.txt"
  git -C "$TMP/wt2" add -A && git -C "$TMP/wt2" commit --quiet -m fix
  git clone --quiet "$TMP/origin.git" "$TMP/other"
  git -C "$TMP/other" -c user.name=x -c user.email=x@x commit --quiet --allow-empty -m "someone else on staging"
  git -C "$TMP/other" push --quiet origin HEAD:staging
  run harness_push_staging "$TMP/wt2" origin staging main 3
  [ "$status" -eq 0 ]
  run git -C "$TMP/origin.git" log --format=%s staging
  [ "${lines[0]}" = "fix" ] && [ "${lines[1]}" = "someone else on staging" ]
}

@test "a conflict's files are named as they are, one a line, comma-separated in the reason" {
  mkdir -p "$TMP/repo/docs dir"
  printf 'base\n' >"$TMP/repo/café.txt"
  printf 'base\n' >"$TMP/repo/docs dir/my file.txt"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m names && git -C "$TMP/repo" push --quiet origin main
  harness_worktree_remove "$TMP/repo" "$TMP/wt"
  git -C "$TMP/repo" branch -D bot/t1 >/dev/null
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  printf 'mine\n' | tee "$TMP/wt/café.txt" >"$TMP/wt/docs dir/my file.txt"
  git -C "$TMP/wt" commit --quiet -am mine
  git clone --quiet "$TMP/origin.git" "$TMP/other"
  printf 'theirs\n' | tee "$TMP/other/café.txt" >"$TMP/other/docs dir/my file.txt"
  git -C "$TMP/other" -c user.name=x -c user.email=x@x commit --quiet -am theirs
  git -C "$TMP/other" push --quiet origin HEAD:staging
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 3 ]
  [ "$(cat "$TICKET_DIR/conflict.txt")" = "$(printf 'café.txt\ndocs dir/my file.txt')" ]
  [ "$(harness_conflicts)" = "café.txt, docs dir/my file.txt" ]
}

@test "work under a placeholder's name (a new scripts/ of the fix's) is committed; dependencies and what the project ignores are not" {
  harness_sandbox_excludes "$TMP/wt" "$TICKET_DIR/config/git-excludes"
  harness_git_env "$TICKET_DIR/config/git-excludes"
  grep -qx '/scripts' "$TICKET_DIR/config/git-excludes"
  mkdir -p "$TMP/wt/scripts" "$TMP/wt/node_modules/dep"
  printf 'echo migrate\n' >"$TMP/wt/scripts/migrate.sh"
  printf 'module.exports = 1\n' >"$TMP/wt/node_modules/dep/index.js"
  printf '.cache\n' >"$TMP/wt/.gitignore"
  mkdir -p "$TMP/wt/.vscode/.cache" && printf 'x\n' >"$TMP/wt/.vscode/.cache/state" && printf '{}\n' >"$TMP/wt/.vscode/settings.json"
  : >"$TMP/wt/.bashrc"
  printf 'fix\n' >"$TMP/wt/a.txt"
  run harness_force_commit "$TMP/wt" "bugbot: fix"
  [ "$output" = "committed" ]
  run git -C "$TMP/wt" show --name-only --format= HEAD
  [ "$output" = "$(printf '.gitignore\n.vscode/settings.json\na.txt\nscripts/migrate.sh')" ]
}

@test "partial work is committed on the way out even past a stale index lock (a git killed mid-write)" {
  printf 'partial\n' >"$TMP/wt/fix.txt"
  : >"$(git -C "$TMP/wt" rev-parse --path-format=absolute --git-path index.lock)"
  run harness_force_commit "$TMP/wt" "plain"
  [ "$status" -ne 0 ]
  run harness_keep_partial_work "$TMP/wt" "bugbot: partial work"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "committed" ]
  run git -C "$TMP/wt" show --name-only --format= HEAD
  [ "$output" = "fix.txt" ]
}

# push_in_group FUNCTION ARGS... : in a process group of its own (as the control plane
# starts a worker), with the worker's kind of TERM trap, run a push through
# harness_run_uninterrupted, note what it returned, TERM itself (still held off until the
# result is recorded), restore the traps and TERM itself again (is the trap back?).
# Its notes go to $TMP/events; its PID (the group's) is $PUSH_PID.
push_in_group() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'source "$BUGBOT_HARNESS/lib/common.sh"; source "$BUGBOT_HARNESS/lib/push.sh"
    trap "echo trapped >>\"$TMP/events\"; exit 143" TERM
    rc=0
    harness_run_uninterrupted out "$@" || rc=$?
    echo "rc=$rc out=$out deferred=$HARNESS_DEFERRED_SIGNAL" >>"$TMP/events"
    kill -TERM $$
    echo "held until restored" >>"$TMP/events"
    harness_signals_restore
    kill -TERM $$
    echo "not trapped" >>"$TMP/events"' _ "$@" &
  PUSH_PID=$!
}

# The origin holds every push until $TMP/origin.git/release exists (a minute at most).
hold_pushes() {
  printf '#!/bin/sh\ntouch entered\ni=0\nwhile [ ! -e release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n' >"$TMP/origin.git/hooks/pre-receive"
  chmod +x "$TMP/origin.git/hooks/pre-receive"
}

@test "a TERM to the whole group during a push is held off until the push ends, then named; the caller's trap is back" {
  printf 'fix\n' >"$TMP/wt/fix.txt"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m fix
  hold_pushes
  export TMP
  push_in_group harness_push_staging "$TMP/wt" origin staging main 1
  wait_until test -e "$TMP/origin.git/entered"
  kill -TERM -- "-$PUSH_PID"
  sleep 0.3
  : >"$TMP/origin.git/release"
  status=0
  wait "$PUSH_PID" || status=$?
  [ "$status" -eq 143 ]
  run cat "$TMP/events"
  [ "${lines[0]}" = "rc=0 out=$(git -C "$TMP/wt" rev-parse HEAD) deferred=TERM" ]
  [ "${lines[1]}" = "held until restored" ]
  [ "${lines[2]}" = "trapped" ]
  [ "$(git -C "$TMP/origin.git" log -1 --format=%s staging)" = "fix" ]
}

@test "a push that fails with a TERM held off returns its own status, the signal named" {
  export TMP
  # A push that fails (status 5) after the TERM came, once told to go on.
  # shellcheck disable=SC2016 # expanded by the inner bash
  push_in_group bash -c ': >"$TMP/started"; while [ ! -e "$TMP/go" ]; do sleep 0.05; done; : >"$TMP/finished"; exit 5'
  wait_until test -e "$TMP/started"
  kill -TERM -- "-$PUSH_PID"
  sleep 0.3
  : >"$TMP/go"
  status=0
  wait "$PUSH_PID" || status=$?
  [ "$status" -eq 143 ]
  run cat "$TMP/events"
  [ "${lines[0]}" = "rc=5 out= deferred=TERM" ]
  [ -e "$TMP/finished" ]
}

# Review finding: an agent's sandbox can write the shared .git, so it could point another
# worktree's `commondir` (one made after its session started) at a repository of its own
# whose config names a command (a clean filter, an fsmonitor); the harness's next git
# command in that worktree ran it, outside the sandbox, with the worker's environment.
@test "a worktree's commondir pointed elsewhere runs nothing: the harness's git reads the pinned repository" {
  harness_git_env "$TICKET_DIR/config/git-excludes"
  git init --quiet "$TMP/evil"
  # (harness_git_env turns core.fsmonitor off too; a clean filter it cannot know of.)
  printf '[core]\n\tfsmonitor = "touch %s/PWNED; false"\n[filter "x"]\n\tclean = "touch %s/PWNED; cat"\n' "$TMP" "$TMP" >>"$TMP/evil/.git/config"
  local wt
  for wt in demo other; do
    harness_worktree_add "$TMP/repo" origin main "bot/$wt" "$TMP/$wt"
    printf '%s\n' "$TMP/evil/.git" >"$TMP/repo/.git/worktrees/$wt/commondir"
    printf '* filter=x\n' >"$TMP/$wt/.gitattributes"
    printf 'fix\n' >"$TMP/$wt/fix.txt"
  done
  # The attack is real: a git that reads the commondir file runs the command.
  command git -C "$TMP/demo" add -A >/dev/null 2>&1 || true
  [ -e "$TMP/PWNED" ]
  rm -f "$TMP/PWNED"
  harness_git_pin "$TMP/repo"
  run harness_force_commit "$TMP/other" "bugbot: fix"
  [ "$status" -eq 0 ]
  [ "$output" = "committed" ]
  run harness_push_staging "$TMP/other" origin staging main 1
  [ ! -e "$TMP/PWNED" ]
  # What would be pushed is checked once more, as rebased: the .gitattributes stops it.
  [ "$status" -eq 4 ]
  grep -q 'what is to be pushed touches protected paths: .gitattributes' "$TICKET_DIR/push.err"
}

# Review finding (secrets): the base checkout's own .git is writable to the agent's sandbox
# (its worktrees commit there; only hooks/, config and info/ are denied), and git reads a
# `commondir` file in any git dir, a checkout's own included. One planted there made the
# next run's pin follow it to the agent's repository, whose config's ssh command the fetch
# ran outside the sandbox, with the worker's environment (the model key; and /proc of the
# control plane, same user, holds every secret).
@test "a commondir planted in the base checkout's own .git is refused by the pin: nothing it names runs" {
  harness_git_env "$TICKET_DIR/config/git-excludes"
  harness_git_pin "$TMP/repo"
  [ "$HARNESS_GIT_COMMON" = "$(cd "$TMP/repo/.git" && pwd -P)" ]
  command git clone --quiet --bare "$TMP/origin.git" "$TMP/evil"
  command git -C "$TMP/evil" config remote.origin.url ssh://example.invalid/x
  command git -C "$TMP/evil" config core.sshCommand "touch $TMP/PWNED; false"
  # Planted while a run goes on (its session's sandbox writes the shared .git).
  printf '%s\n' "$TMP/evil" >"$TMP/repo/.git/commondir"
  # The attack is real: git follows the file, and the fetch runs the command.
  command git -C "$TMP/repo" fetch --quiet origin >/dev/null 2>&1 || true
  [ -e "$TMP/PWNED" ]
  rm -f "$TMP/PWNED"
  # This run's git stays on the repository it pinned...
  harness_fetch_locked "$TMP/repo" origin main
  [ ! -e "$TMP/PWNED" ]
  # ...and the next run's pin (merge.sh's, a stopped run's partial work) refuses the file.
  run harness_git_pin "$TMP/repo"
  [ "$status" -ne 0 ]
  [[ "$output" == *"$TMP/repo/.git/commondir"* ]]
}

# Review finding: the gate's inner shell sourced the libraries afresh, which unpinned the
# shared repository: its git followed a commondir the agent redirected, and a clean filter
# named in that repository's config ran outside the sandbox.
@test "the test gate's git stays pinned: a redirected commondir's filter does not run" {
  harness_git_env "$TICKET_DIR/config/git-excludes"
  harness_git_pin "$TMP/repo"
  printf 'fix\n' >"$TMP/wt/fix.txt"
  harness_force_commit "$TMP/wt" fix >/dev/null
  local rev
  rev=$(git -C "$TMP/wt" rev-parse HEAD)
  command git init --quiet "$TMP/evil"
  printf '%s\n' "$TMP/repo/.git/objects" >"$TMP/evil/.git/objects/info/alternates"
  command git -C "$TMP/evil" update-ref refs/heads/bot/t1 "$rev"
  printf '[filter "x"]\n\tsmudge = "touch %s/PWNED; cat"\n\tclean = "touch %s/PWNED; cat"\n' "$TMP" "$TMP" >>"$TMP/evil/.git/config"
  printf '* filter=x\n' >"$TMP/wt/.gitattributes"
  harness_force_commit "$TMP/wt" attrs >/dev/null
  rev=$(git -C "$TMP/wt" rev-parse HEAD)
  command git -C "$TMP/evil" update-ref refs/heads/bot/t1 "$rev"
  printf '%s\n' "$TMP/evil/.git" >"$TMP/repo/.git/worktrees/wt/commondir"
  harness_gate_start "$TMP/wt" true "$TICKET_DIR/tests.log" main "$rev"
  harness_gate_wait || true
  [ ! -e "$TMP/PWNED" ]
}

# Review finding: the agent's sandbox can move the shared repository's refs. With
# refs/remotes/origin/main moved onto its own commit (a CI workflow), the changed-files
# check measured from there saw only the fix, and the workflow reached staging.
@test "push_staging replays only the branch's own commits from the worktree's first commit, and checks what it pushes" {
  git -C "$TMP/repo" push --quiet origin main:staging
  local from c
  from=$(git -C "$TMP/wt" rev-parse HEAD)
  mkdir -p "$TMP/wt/.github/workflows"
  printf 'on: push\n' >"$TMP/wt/.github/workflows/ci.yml"
  git -C "$TMP/wt" add -A && git -C "$TMP/wt" commit --quiet -m "C: workflow"
  c=$(git -C "$TMP/wt" rev-parse HEAD)
  printf '%s\n' "$c" >"$TMP/repo/.git/refs/remotes/origin/main"
  printf 'fix\n' >"$TMP/wt/fix.txt"
  harness_force_commit "$TMP/wt" "bugbot: fix" >/dev/null
  run harness_push_staging "$TMP/wt" origin staging main 3 "$from"
  [ "$status" -eq 4 ]
  grep -q 'what is to be pushed touches protected paths: .github/workflows/ci.yml' "$TICKET_DIR/push.err"
  [ "$(git -C "$TMP/origin.git" rev-parse staging)" = "$(git -C "$TMP/origin.git" rev-parse main)" ]
}

# Review finding: a base force-pushed after the worktree was made (a leaked key dropped)
# came back: the rebase replayed every commit of the branch not on staging.
@test "push_staging: a base force-pushed since the worktree was made does not bring back what it dropped" {
  teardown_tmp; setup_tmp; make_repo
  printf 'AKIA-leaked\n' >"$TMP/repo/secret.txt"
  git -C "$TMP/repo" add -A && git -C "$TMP/repo" commit --quiet -m "B: leaked a key" && git -C "$TMP/repo" push --quiet origin main
  harness_worktree_add "$TMP/repo" origin main bot/t1 "$TMP/wt"
  local from
  from=$(git -C "$TMP/wt" rev-parse HEAD)
  git clone --quiet "$TMP/origin.git" "$TMP/op"
  git -C "$TMP/op" reset --quiet --hard HEAD~1
  git -C "$TMP/op" push --quiet --force origin main
  git -C "$TMP/op" push --quiet origin main:staging
  printf 'fix\n' >"$TMP/wt/fix.txt"
  harness_force_commit "$TMP/wt" "bugbot: fix" >/dev/null
  run harness_push_staging "$TMP/wt" origin staging main 3 "$from"
  [ "$status" -eq 0 ]
  run git -C "$TMP/origin.git" log --format=%s staging
  [ "${lines[0]}" = "bugbot: fix" ]
  [ "${lines[1]}" = "init" ]
  [ "${#lines[@]}" -eq 2 ]
  # A branch that no longer descends from its first commit (history rewritten) is refused.
  git -C "$TMP/wt" reset --quiet --soft HEAD~1
  git -C "$TMP/wt" commit --quiet -m rewritten
  run harness_push_staging "$TMP/wt" origin staging main 3 "$from"
  [ "$status" -eq 4 ]
  grep -q 'no longer descends from' "$TICKET_DIR/push.err"
}

# stale_main_lock : the run's git set up (pinned to $TMP/repo), and the lock of
# refs/remotes/origin/main a git killed two minutes ago would have left.
stale_main_lock() {
  harness_git_env "$TICKET_DIR/config/git-excludes"
  harness_git_pin "$TMP/repo"
  mkdir -p "$TMP/repo/.git/refs/remotes/origin"
  : >"$TMP/repo/.git/refs/remotes/origin/main.lock"
  touch -d '2 minutes ago' "$TMP/repo/.git/refs/remotes/origin/main.lock"
}

# Review finding: a fetch killed mid-update (a shutdown's SIGKILL) left
# refs/remotes/origin/<branch>.lock behind, and every later ticket failed on it; a staging
# fetch failing that way was taken for "no staging yet", and every push was refused.
@test "a ref lock a killed git left is removed once stale; a staging fetch that fails is retried, then the failure, not a push onto the base" {
  git -C "$TMP/repo" push --quiet origin main:staging
  local common="$TMP/repo/.git"
  stale_main_lock
  run harness_worktree_add "$TMP/repo" origin main bot/t2 "$TMP/wt2"
  [ "$status" -eq 0 ]
  [ ! -e "$common/refs/remotes/origin/main.lock" ]
  # A fresh lock is some git's at work: left alone, and the fetch's failure is named.
  printf 'fix\n' >"$TMP/wt2/fix.txt"
  harness_force_commit "$TMP/wt2" "bugbot: fix" >/dev/null
  # (Staging moved on, so the fetch has a ref to update.)
  command git clone --quiet "$TMP/origin.git" "$TMP/op"
  command git -C "$TMP/op" commit --quiet --allow-empty -m "someone else on staging"
  command git -C "$TMP/op" push --quiet origin HEAD:staging
  : >"$common/refs/remotes/origin/staging.lock"
  run harness_push_staging "$TMP/wt2" origin staging main 2
  # Tried again, then a failure whose words are the fetch's (not a push refused as stale).
  [ "$status" -eq 1 ]
  grep -q 'staging.lock' "$TICKET_DIR/push.err"
  # Stale: removed, and the push goes through.
  touch -d '2 minutes ago' "$common/refs/remotes/origin/staging.lock"
  run harness_push_staging "$TMP/wt2" origin staging main 2
  [ "$status" -eq 0 ]
  [ "$(git -C "$TMP/origin.git" log -1 --format=%s staging)" = "bugbot: fix" ]
}

# A stale ref lock is judged and removed only while holding the workers' repository lock:
# checked before it, another worker's fetch could take the ref's lock in between and lose it.
@test "a stale ref lock is removed only once the repository lock is held" {
  local common="$TMP/repo/.git"
  stale_main_lock
  harness_git_locked "$TMP/repo" status --short >/dev/null
  flock "$common/bugbot.lock" sleep 2 &
  local holder=$!
  wait_until eval '! flock -n "$common/bugbot.lock" true'
  harness_fetch_locked "$TMP/repo" origin main &
  local fetcher=$!
  sleep 1
  # Still waiting for the lock: the stale ref lock is untouched.
  [ -e "$common/refs/remotes/origin/main.lock" ]
  wait "$holder"
  wait "$fetcher"
  [ ! -e "$common/refs/remotes/origin/main.lock" ]
  [ "$(command git -C "$TMP/repo" rev-parse origin/main)" = "$(command git -C "$TMP/origin.git" rev-parse main)" ]
}

# Review finding on the rebase from the worktree's first commit: a fix already on staging
# (a merge stopped after its push, run again) conflicted instead of "nothing left".
@test "push_staging with FROM: a fix on staging already is nothing left to push, whatever staging did to its lines since" {
  git -C "$TMP/repo" push --quiet origin main:staging
  local from
  from=$(git -C "$TMP/wt" rev-parse HEAD)
  printf 'fixed\n' >"$TMP/wt/a.txt"
  harness_force_commit "$TMP/wt" "bugbot: fix" >/dev/null
  run harness_push_staging "$TMP/wt" origin staging main 2 "$from"
  [ "$status" -eq 0 ]
  # Staging then changes the same lines; the same fix comes again (from its old commit).
  command git clone --quiet --branch staging "$TMP/origin.git" "$TMP/op"
  printf 'fixed, then improved\n' >"$TMP/op/a.txt"
  command git -C "$TMP/op" commit --quiet -am improved
  command git -C "$TMP/op" push --quiet origin HEAD:staging
  harness_worktree_add "$TMP/repo" origin main bot/t2 "$TMP/wt2"
  printf 'fixed\n' >"$TMP/wt2/a.txt"
  harness_force_commit "$TMP/wt2" "bugbot: fix" >/dev/null
  run harness_push_staging "$TMP/wt2" origin staging main 2 "$from"
  [ "$status" -eq 5 ]
  # A fix of its own still lands on top.
  harness_worktree_add "$TMP/repo" origin main bot/t3 "$TMP/wt3"
  printf 'other\n' >"$TMP/wt3/c.txt"
  harness_force_commit "$TMP/wt3" "bugbot: another fix" >/dev/null
  run harness_push_staging "$TMP/wt3" origin staging main 1 "$(git -C "$TMP/wt3" rev-parse HEAD~1)"
  [ "$status" -eq 0 ]
  [ "$(command git -C "$TMP/origin.git" log -1 --format=%s staging)" = "bugbot: another fix" ]
}

# Review finding: test-failures.mjs compared the logs only when its URL was "file://" +
# argv[1], which never holds for a path with a space or non-ASCII (the URL is
# percent-encoded) or one through a link (the URL is the real path): run from
# ~/My Projects/bugbot or /opt/bugbot -> bugbot-1.2 it printed nothing and succeeded, and
# every fix of a repository with a failing test the base has too failed the gate.
@test "tests gate tolerates a failure the base has too wherever bugbot is installed (a space, non-ASCII, a link)" {
  printf '#!/bin/sh\necho "not ok 1 - old bug"\nexit 1\n' >"$TMP/wt/t.sh"
  git -C "$TMP/wt" add t.sh && git -C "$TMP/wt" commit --quiet -m "a runner with a failing test"
  local base
  base=$(git -C "$TMP/wt" rev-parse HEAD)
  printf 'fix\n' >"$TMP/wt/fix.txt"
  git -C "$TMP/wt" add fix.txt && git -C "$TMP/wt" commit --quiet -m fix
  ln -s "$HARNESS" "$TMP/bug bot é"
  BUGBOT_HARNESS="$TMP/bug bot é" run harness_tests_gate "$TMP/wt" "sh t.sh" "$TICKET_DIR/tests.log" "$base"
  [ "$status" -eq 0 ]
  [ "$output" = "1" ]
  grep -q '"new":\[\]' "$TICKET_DIR/tests-compare.json"
}

# Review finding: `git cherry ... | grep -q '^+'` under pipefail. grep leaves at the first
# match; git, writing the rest of a list longer than one write (a hundred commits or so),
# dies of SIGPIPE, and the pipeline's failure read as "every change is on staging
# already" (status 5): nothing was pushed and the ticket was recorded as pushed.
@test "push_staging with FROM: a fix of many commits is pushed, not taken for one on staging already" {
  git -C "$TMP/repo" push --quiet origin main:staging
  local from i
  from=$(git -C "$TMP/wt" rev-parse HEAD)
  # 400 commits, each changing a file of its own (fast-import: quicker than 400 commits).
  for i in $(seq 400); do
    printf 'commit refs/heads/bot/t1\ncommitter bugbot <bugbot@localhost> %d +0000\ndata 4\nfix\n' "$((1700000000 + i))"
    [ "$i" -gt 1 ] || printf 'from %s\n' "$from"
    printf 'M 100644 inline f%d.txt\ndata 2\n%d\n\n' "$i" "$((i % 10))"
  done | git -C "$TMP/repo" fast-import --quiet --force
  git -C "$TMP/wt" reset --quiet --hard bot/t1
  # As worker.sh and merge.sh run it.
  set -o pipefail
  run harness_push_staging "$TMP/wt" origin staging main 1 "$from"
  [ "$status" -eq 0 ]
  [ "$output" = "$(git -C "$TMP/origin.git" rev-parse staging)" ]
  [ "$(git -C "$TMP/origin.git" rev-list --count staging)" -eq 401 ]
}

# Review finding: what is left under a placeholder's name was added with
# GIT_CONFIG_COUNT=0, which dropped the harness's own settings (no hooks, no fsmonitor)
# together with the run's excludes: a core.fsmonitor in the repository's config ran,
# outside any sandbox, on every commit of a fix with a new scripts/.
@test "work under a placeholder's name is added with the harness's settings: the repository's fsmonitor does not run" {
  harness_sandbox_excludes "$TMP/wt" "$TICKET_DIR/config/git-excludes"
  harness_git_env "$TICKET_DIR/config/git-excludes"
  printf '#!/bin/sh\necho ran >>"%s/fsmonitor-ran"\nexit 1\n' "$TMP" >"$TMP/fsmonitor"
  chmod +x "$TMP/fsmonitor"
  git -C "$TMP/repo" config core.fsmonitor "$TMP/fsmonitor"
  mkdir -p "$TMP/wt/scripts"
  printf 'echo migrate\n' >"$TMP/wt/scripts/migrate.sh"
  printf 'fix\n' >"$TMP/wt/a.txt"
  run harness_force_commit "$TMP/wt" "bugbot: fix"
  [ "$output" = "committed" ]
  [ ! -e "$TMP/fsmonitor-ran" ]
  run git -C "$TMP/wt" show --name-only --format= HEAD
  [ "$output" = "$(printf 'a.txt\nscripts/migrate.sh')" ]
  # The setting is real: git without the harness's settings runs it (the test can fail).
  (unset GIT_CONFIG_COUNT; git -C "$TMP/wt" status --short >/dev/null)
  [ -e "$TMP/fsmonitor-ran" ]
}

# Review finding: harness_force_commit said "committed" and succeeded when `git commit`
# itself failed (here the operator's commit.gpgSign with no usable key), so the worker's
# trap neither kept the partial work nor said it was lost: it went with the worktree.
@test "force_commit fails when the commit fails, and says nothing was committed" {
  git -C "$TMP/repo" config commit.gpgSign true
  git -C "$TMP/repo" config gpg.program false
  printf 'partial\n' >"$TMP/wt/fix.txt"
  run harness_force_commit "$TMP/wt" "bugbot: partial work"
  [ "$status" -ne 0 ]
  [[ "$output" != *committed* ]]
  run harness_keep_partial_work "$TMP/wt" "bugbot: partial work"
  [ "$status" -ne 0 ]
}

# Review finding: a test command that names no test (a missing npm script) ended the run
# "with new failures ... see tests-compare.json", which named none; and when it cannot run
# on the base commit either, every ticket paid all four phases to fail the same way.
@test "tests gate: a test command that names no failing test is told apart, and one that fails on the base too (status 3) from one the fix broke (status 2)" {
  run harness_tests_gate "$TMP/wt" "sh no-such-tests.sh" "$TICKET_DIR/tests.log" origin/main
  [ "$status" -eq 3 ]
  grep -q 'no-such-tests.sh' "$TICKET_DIR/tests-base.log"
  [ "$(harness_first_line "$TICKET_DIR/tests.log")" = "$(head -1 "$TICKET_DIR/tests.log")" ]

  # It runs on the base; the fix breaks it before it names a test.
  printf '#!/bin/sh\necho "ok 1 - works"\n' >"$TMP/wt/t.sh"
  command git -C "$TMP/wt" add t.sh && command git -C "$TMP/wt" commit --quiet -m runner
  base=$(command git -C "$TMP/wt" rev-parse HEAD)
  printf '#!/bin/sh\necho "SyntaxError: Unexpected token" >&2\nexit 1\n' >"$TMP/wt/t.sh"
  command git -C "$TMP/wt" commit --quiet -am "the fix breaks the runner"
  run harness_tests_gate "$TMP/wt" "sh t.sh" "$TICKET_DIR/tests.log" "$base"
  [ "$status" -eq 2 ]
  [ "$(harness_first_line "$TICKET_DIR/tests.log")" = "SyntaxError: Unexpected token" ]

  # Both fail without naming a test, but the base's run was stopped at the limit: not told apart.
  printf '#!/bin/sh\n[ -f fixed ] && exit 1\nsleep 30\n' >"$TMP/wt/t.sh"
  command git -C "$TMP/wt" commit --quiet -am "a runner that hangs on the base"
  base=$(command git -C "$TMP/wt" rev-parse HEAD)
  : >"$TMP/wt/fixed"
  command git -C "$TMP/wt" add fixed && command git -C "$TMP/wt" commit --quiet -m fixed
  BUGBOT_TEST_TIMEOUT_S=1 run harness_tests_gate "$TMP/wt" "sh t.sh" "$TICKET_DIR/tests.log" "$base"
  [ "$status" -eq 2 ]
}

# origin_read_only : pushes to $TMP/origin.git go through a receive-pack that sees it on a
# read-only mount (bubblewrap), as on a read-only NFS export or a mount of another user's.
origin_read_only() {
  printf '#!/bin/sh\nexec bwrap --dev-bind / / --ro-bind "%s" "%s" git-receive-pack "$@"\n' "$TMP/origin.git" "$TMP/origin.git" >"$TMP/ro-receive-pack"
  chmod +x "$TMP/ro-receive-pack"
  command git -C "$TMP/repo" config remote.origin.receivepack "$TMP/ro-receive-pack"
}

# Review finding: with the origin readable but not writable, the push was retried as if
# another worker had pushed first, and the run failed for the ticket: every later ticket
# paid all its phases to fail the same way.
@test "push_staging: a remote that cannot be written is status 6 at once, with git's words; a race is still retried" {
  fix_while_staging_moves
  origin_read_only
  run harness_push_staging "$TMP/wt" origin staging main 3
  [ "$status" -eq 6 ]
  grep -q 'unpacker error' "$TICKET_DIR/push.err"
  [ "$(grep -c 'rejected (attempt' <<<"$output")" -eq 1 ]
  run harness_push_refused_by_machine "$TICKET_DIR/push.err"
  [ "$status" -eq 0 ]
  # Refusals that are not the machine's: a lost race, a hook judging this push.
  printf ' ! [rejected]        HEAD -> staging (non-fast-forward)\nerror: failed to push some refs to %s\n' "'/o.git'" >"$TMP/race.err"
  run harness_push_refused_by_machine "$TMP/race.err"
  [ "$status" -eq 1 ]
  printf 'remote: permission denied: staging is frozen\n ! [remote rejected] HEAD -> staging (pre-receive hook declined)\n' >"$TMP/hook.err"
  run harness_push_refused_by_machine "$TMP/hook.err"
  [ "$status" -eq 1 ]
  printf "ERROR: Permission to org/shop.git denied to bugbot.\nfatal: Could not read from remote repository.\n" >"$TMP/denied.err"
  run harness_push_refused_by_machine "$TMP/denied.err"
  [ "$status" -eq 0 ]
}

@test "push_staging: a pre-receive hook that declines the push is retried and ends as a refused push (status 1), not the machine's" {
  fix_while_staging_moves
  printf '#!/bin/sh\necho "staging is frozen" >&2\nexit 1\n' >"$TMP/origin.git/hooks/pre-receive"
  chmod +x "$TMP/origin.git/hooks/pre-receive"
  run harness_push_staging "$TMP/wt" origin staging main 2
  [ "$status" -eq 1 ]
  grep -q 'pre-receive hook declined' "$TICKET_DIR/push.err"
}
