#!/usr/bin/env bash
# Phase 5, in bash: the agent never has push rights. Commit what was left, refuse
# diffs touching protected paths, gate on the test command, rebase onto the latest
# staging and push (bounded retry), or push the bot branch for approval.

# Paths Claude Code's Bash sandbox masks in the working directory. Where they do not
# exist it leaves placeholders (empty files, /dev/null binds, empty directories) that
# must never be committed.
SANDBOX_PLACEHOLDERS=(.bash_profile .bashrc .bash_login .profile .zshrc .zprofile .gitconfig .gitmodules .ripgreprc
  .idea .vscode .mcp.json .github scripts .env .env.local .env.development .env.development.local .env.test
  .env.test.local .env.production .env.production.local .npmrc .yarnrc .yarnrc.yml bunfig.toml package.json
  package-lock.json yarn.lock pnpm-lock.yaml node_modules)

# harness_sandbox_excludes DIR FILE : write a git excludes file naming the placeholders
# that do not exist in DIR, for every git command of the run (GIT_CONFIG_* in the env).
harness_sandbox_excludes() {
  local dir=$1 file=$2 p
  : >"$file"
  for p in "${SANDBOX_PLACEHOLDERS[@]}"; do
    if [ ! -e "$dir/$p" ]; then printf '/%s\n' "$p" >>"$file"; fi
  done
}

# harness_sandbox_litter DIR EXCLUDES : remove the placeholders the sandbox left (only
# names in EXCLUDES, only when empty).
harness_sandbox_litter() {
  local dir=$1 excludes=$2 p
  local -a files=() dirs=()
  [ -f "$excludes" ] || return 0
  while IFS= read -r p; do
    p=${p#/}
    if [ -f "$dir/$p" ] && [ ! -s "$dir/$p" ]; then files+=("$dir/$p"); fi
    if [ -d "$dir/$p" ]; then dirs+=("$dir/$p"); fi
  done <"$excludes"
  # One rm and one find for all of them (this runs after every phase).
  [ "${#files[@]}" -eq 0 ] || rm -f -- "${files[@]}"
  [ "${#dirs[@]}" -eq 0 ] || find "${dirs[@]}" -depth -type d -empty -delete 2>/dev/null || true
}

# harness_force_commit DIR MESSAGE : commit everything left uncommitted; prints "committed" or "clean".
harness_force_commit() {
  local dir=$1 message=$2 p
  harness_sandbox_litter "$dir" "$TICKET_DIR/config/git-excludes"
  git -C "$dir" add -A || return 1
  # What is left under a placeholder's name is the fix's own work (a new scripts/, say):
  # the run's excludes hide it from `add -A`, so it is added by name without them (the
  # project's own ignore rules still apply). Protected names among them are refused at the
  # push as any others; node_modules (the installed dependencies) never is the fix's.
  # Without the excludes only: entry 0 (harness_git_env) is made a copy of entry 1, so the
  # harness's other settings (no hooks, no fsmonitor) hold for these commands too.
  if [ -f "$TICKET_DIR/config/git-excludes" ]; then
    while IFS= read -r p; do
      p=${p#/}
      if [ ! -e "$dir/$p" ] || [ "$p" = node_modules ]; then continue; fi
      GIT_CONFIG_KEY_0=core.hooksPath GIT_CONFIG_VALUE_0=/dev/null git -C "$dir" check-ignore -q -- "$p" && continue
      GIT_CONFIG_KEY_0=core.hooksPath GIT_CONFIG_VALUE_0=/dev/null git -C "$dir" add -- "$p" || return 1
    done <"$TICKET_DIR/config/git-excludes"
  fi
  if git -C "$dir" diff --cached --quiet; then
    echo clean
    return 0
  fi
  git -C "$dir" commit --quiet --no-verify -m "$message" || return 1
  echo committed
}

# harness_keep_partial_work DIR MESSAGE : on the way out, once every process of the run
# has stopped: commit what is left, so the branch keeps it when the worktree goes. A git
# index lock left now is stale (a git killed mid-write) and would make the commit fail.
harness_keep_partial_work() {
  local dir=$1 message=$2 lock
  lock=$(git -C "$dir" rev-parse --path-format=absolute --git-path index.lock 2>/dev/null) || return 1
  [ ! -e "$lock" ] || { harness_log "removing a stale $lock"; rm -f -- "$lock"; }
  harness_force_commit "$dir" "$message"
}

# harness_changed_files DIR BASE_REF : files changed on this branch since it left BASE_REF,
# one a line, as they are named (a rename as its old and its new name). Fails on a name
# with a newline in it: no line-by-line check could see it whole.
harness_changed_files() {
  local dir=$1 base=$2 merge_base name
  local -a status
  merge_base=$(git -C "$dir" merge-base HEAD "$base") || return 1
  # -z: names verbatim. Without it git quotes any name with a byte outside printable
  # ASCII (core.quotePath): .github/workflows/dé.yml comes out as
  # ".github/workflows/d\303\251.yml", quotes included, which ^\.github/workflows/ misses.
  # --no-renames: a renamed file counts under its old name too (a workflow moved away).
  git -C "$dir" diff -z --name-only --no-renames "$merge_base" HEAD | {
    while IFS= read -r -d '' name || [ -n "$name" ]; do
      if [[ $name == *$'\n'* ]]; then
        harness_log "a changed file's name has a newline in it: ${name@Q}"
        exit 1
      fi
      printf '%s\n' "$name"
    done
  }
  status=("${PIPESTATUS[@]}")
  [ "${status[0]}" -eq 0 ] && [ "${status[1]}" -eq 0 ]
}

# harness_protected_paths : of the paths on stdin, prints those under protected paths
# (lib/protected-paths.txt, the patterns the guard hook applies). Fails, printing nothing
# useful, when the check itself cannot run: a push must not go ahead on a broken check.
harness_protected_paths() {
  local file="$BUGBOT_HARNESS/lib/protected-paths.txt" pattern
  [ -r "$file" ] || return 2
  pattern=$(grep -v -e '^#' -e '^$' "$file" | sed 's/.*/(?:&)/' | paste -sd '|')
  [ -n "$pattern" ] || return 2
  # grep exits 1 when nothing matched (the usual case) and 2 when it failed. Bytes, as
  # text (LC_ALL=C, -a): in a UTF-8 locale a name that is not valid UTF-8 makes the input
  # "binary", and grep then prints no matching line (only a note on stderr) yet succeeds.
  LC_ALL=C grep -a -P -e "$pattern" || [ "$?" -eq 1 ]
}

# harness_bidi_files DIR BASE : of the files changed since HEAD's merge base with BASE,
# prints those whose added lines hold a bidirectional override or isolate (U+202A-U+202E,
# U+2066-U+2069), one a line: code that reads one way on screen and runs another ("Trojan
# Source"), which nobody reviews before an autopush. Fails when git does.
harness_bidi_files() {
  local dir=$1 base=$2 diff rc=0
  # BASE...HEAD: from their merge base, in the one git call.
  diff=$(git -C "$dir" -c core.quotePath=false diff --no-color --no-ext-diff --no-textconv -U0 "$base...HEAD") || return 1
  # Bytes (LC_ALL=C): the UTF-8 of those code points on an added line (or in a new file's
  # name). The usual case, none at all, costs this one grep; the files are looked for only
  # when there is one, telling a file's header from an added line that reads like one
  # ("++ i", added, is "+++ i") by where it stands: before the file's first hunk.
  LC_ALL=C grep -a -q -P '^\+.*(?:\xE2\x80[\xAA-\xAE]|\xE2\x81[\xA6-\xA9])' <<<"$diff" || rc=$?
  [ "$rc" -ne 1 ] || return 0
  [ "$rc" -eq 0 ] || return 1
  printf '%s\n' "$diff" |
    LC_ALL=C awk '
      /^diff --git / { header = 1; next }
      header && /^\+\+\+ / { file = substr($0, 5); sub(/^b\//, "", file); print file "\t" file; next }
      /^@@/ { header = 0; next }
      !header && /^\+/ { print file "\t" substr($0, 2) }' |
    { LC_ALL=C grep -a -P '\t.*(?:\xE2\x80[\xAA-\xAE]|\xE2\x81[\xA6-\xA9])' || [ "$?" -eq 1 ]; } |
    cut -f1 | sort -u
}

# harness_isolated DIR COMMAND [SECONDS] : run COMMAND (a shell string) in DIR as the
# agent's own commands run: it is code the agent wrote (tests), so besides
# harness_confine's limits it gets no network beyond its own loopback (a fresh network
# namespace) and the repository's git data read-only (harness_git_readonly: it cannot
# commit what it read, nor plant hooks or config for the harness's git). With SECONDS it
# is stopped once it has run that long (status 124, or 137 when TERM was not enough).
harness_isolated() {
  local dir=$1 command=$2 secs=${3:-}
  local -a limit=()
  harness_git_readonly "$dir" || return 1
  harness_confine --die-with-parent --unshare-net --bind "$dir" "$dir" "${HARNESS_GIT_RO[@]}"
  # timeout(1) signals bubblewrap (TERM, then KILL 10 s later); bubblewrap's
  # --die-with-parent then kills its PID namespace, so nothing COMMAND started (setsid,
  # TERM ignored) outlives it. --foreground: timeout stays in the caller's process group,
  # which harness_gate_stop kills.
  [ -z "$secs" ] || limit=(timeout --foreground --kill-after=10s "$secs")
  (cd "$dir" && "${limit[@]}" "${HARNESS_CONFINE[@]}" bash -c "$command")
}

# harness_test_timeout VAR : harness.testTimeoutSeconds (BUGBOT_TEST_TIMEOUT_S; 900 when
# unset or not a positive whole number) into VAR.
harness_test_timeout() {
  if [[ ${BUGBOT_TEST_TIMEOUT_S:-} =~ ^[1-9][0-9]*$ ]]; then
    printf -v "$1" '%s' "$BUGBOT_TEST_TIMEOUT_S"
  else
    printf -v "$1" '%s' 900
  fi
}

# harness_test_run DIR COMMAND LOG : the test command, isolated, its output in LOG, stopped
# after harness.testTimeoutSeconds (BUGBOT_TEST_TIMEOUT_S, default 900): a test that hangs
# would otherwise hold the run, and its worker, for ever. Returns 124 when it ran past the
# limit (LOG ends with a line saying so), else its own status (1 for its own 124).
harness_test_run() {
  local dir=$1 command=$2 log=$3 secs started=$EPOCHSECONDS rc=0
  harness_test_timeout secs
  harness_isolated "$dir" "$command" "$secs" >"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    if [ $((EPOCHSECONDS - started)) -ge "$secs" ]; then
      printf 'harness: the test command ran past harness.testTimeoutSeconds (%s s) and was stopped\n' "$secs" >>"$log"
      harness_log "the test command ran past harness.testTimeoutSeconds ($secs s) in $dir and was stopped"
      return 124
    fi
    rc=1
  fi
  return "$rc"
}

# harness_checkout DIR PATH REV [CONFINED] : a detached worktree of DIR's repository at
# REV (harness_worktree_remove removes it), with dependencies of its own from the base
# checkout, $BUGBOT_REPO (harness_deps_install; CONFINED when REV is the fix's: an install
# runs its package files' scripts and whatever files of REV those run). Never DIR's
# node_modules: the agent's commands can write there (Claude Code's
# sandbox leaves it writable), and a test runner or a dependency patched in place would
# pass tests that fail in every other checkout, or fail the base's tests too, which then
# excuse the fix's; the diff shows neither. Under the worktrees folder, out of the agent's
# sight (phases.ts), so a crash leaves nothing the control plane's reconciler does not
# remove.
harness_checkout() {
  local dir=$1 path=$2 rev=$3
  harness_worktree_remove "$dir" "$path"
  harness_git_locked "$dir" worktree add --quiet --detach "$path" "$rev" || return 1
  harness_deps_install "${BUGBOT_REPO:?the base checkout}" "$path" "${4:-}" >/dev/null || return 1
}

# harness_same_blob DIR REV_A REV_B PATH : PATH is the same at both commits (or at neither).
harness_same_blob() {
  local a b
  a=$(git -C "$1" rev-parse --verify --quiet "$2:$4" 2>/dev/null) || a=""
  b=$(git -C "$1" rev-parse --verify --quiet "$3:$4" 2>/dev/null) || b=""
  [ "$a" = "$b" ]
}

# harness_tests_gate DIR COMMAND LOG BASE_REF [REV] : run the test command on commit REV
# (default: DIR's HEAD; uncommitted changes are not tested) in a checkout of its own,
# DIR.gate, so a session still working in DIR neither disturbs nor sees it; true when
# it passes, or when every test failing now also fails on BASE_REF (other open bugs do
# not block this fix). Prints the number of such pre-existing failures. Each run of the
# test command has harness_test_run's time limit; returns 124 when the one on REV ran past
# it: a failure whatever it printed (the tests it never reached may fail), no comparison.
# When it failed naming no failing test (test-failures.mjs does not read its output: a
# script that does not exist, a runner that never ran): 3 when the base failed naming none
# too (target.testCommand cannot run here: the machine's or the configuration's, not the
# fix's), else 2; 1 for new failures. 4 when a checkout or its dependencies could not be
# made, 5 when it was an install from package files the fix changed (LOG says which).
harness_tests_gate() {
  local dir=$1 command=$2 log=$3 base=$4 rev=${5:-} run=0 base_run=0 rc=0 from changed="" p
  [ -n "$rev" ] || rev=$(git -C "$dir" rev-parse HEAD)
  from=$(git -C "$dir" merge-base "$rev" "$base") || from=$base
  # What an install reads: changed by the fix, an install that fails is the fix's doing.
  for p in package.json package-lock.json npm-shrinkwrap.json .npmrc; do
    harness_same_blob "$dir" "$from" "$rev" "$p" || changed=1
  done
  # Confined whatever changed: the base's own install scripts (postinstall, prepare) run
  # files of REV, which the fix may have changed (scripts/postinstall.js).
  if ! harness_checkout "$dir" "$dir.gate" "$rev" confined 2>"$log"; then
    printf 'harness: could not make the test checkout of %s or install its dependencies (above)\n' "$rev" >>"$log"
    harness_worktree_remove "$dir" "$dir.gate"
    if [ -n "$changed" ]; then return 5; fi
    return 4
  fi
  harness_test_run "$dir.gate" "$command" "$log" || run=$?
  harness_worktree_remove "$dir" "$dir.gate"
  if [ "$run" -eq 0 ]; then
    echo 0
    return 0
  fi
  [ "$run" -ne 124 ] || return 124
  # A base run stopped at the limit names fewer failures: more of these count as new.
  if ! harness_checkout "$dir" "$dir.base" "$from" 2>"${log%.log}-base.log"; then
    printf 'harness: could not make the test checkout of %s or install its dependencies (above)\n' "$from" >>"${log%.log}-base.log"
    harness_worktree_remove "$dir" "$dir.base"
    return 4
  fi
  harness_test_run "$dir.base" "$command" "${log%.log}-base.log" || base_run=$?
  harness_worktree_remove "$dir" "$dir.base"
  node "$BUGBOT_HARNESS/lib/test-failures.mjs" "$log" "${log%.log}-base.log" "$dir.gate" "$dir.base" >"${log%.log}-compare.json" || rc=$?
  # test-failures.mjs: 2, the fix's log names no failing test; 3, neither log does.
  if [ "$rc" -eq 3 ] && [ "$base_run" -ne 0 ] && [ "$base_run" -ne 124 ]; then return 3; fi
  if [ "$rc" -eq 2 ] || [ "$rc" -eq 3 ]; then return 2; fi
  [ "$rc" -eq 0 ] || return 1
  node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).head.length))' "${log%.log}-compare.json"
}

# harness_gate_start DIR COMMAND LOG BASE_REF [REV] : run harness_tests_gate in the
# background, in a session of its own (gate.pid holds its process group);
# harness_gate_wait collects it, harness_gate_stop abandons it.
HARNESS_GATE_PID=""
HARNESS_GATE_DIR=""
harness_gate_start() {
  local dir=$1 command=$2 log=$3 base=$4 rev=${5:-}
  rm -f "$TICKET_DIR/gate.rc" "$TICKET_DIR/gate.out" "$TICKET_DIR/gate.pid"
  HARNESS_GATE_DIR=$dir
  # shellcheck disable=SC2016 # the inner script's own arguments, expanded when it runs
  # The inner shell sources the libraries afresh: the shared repository stays pinned ($8),
  # or its git would follow a commondir file the agent could have redirected.
  setsid --wait bash -c '
    echo "$$" >"$6/gate.pid"
    source "$1/lib/common.sh"; source "$1/lib/worktree.sh"; source "$1/lib/push.sh"
    HARNESS_GIT_COMMON=$8
    rc=0
    harness_tests_gate "$2" "$3" "$4" "$5" "$7" >"$6/gate.out" || rc=$?
    echo "$rc" >"$6/gate.rc"
  ' gate "$BUGBOT_HARNESS" "$dir" "$command" "$log" "$base" "$TICKET_DIR" "$rev" "$HARNESS_GIT_COMMON" </dev/null &
  HARNESS_GATE_PID=$!
}

# harness_gate_wait : wait for the background gate; returns what harness_tests_gate did,
# and sets HARNESS_GATE_OUT to what it printed. Call it directly, not in $(...): only the
# shell that started the gate can wait for it. A gate stopped at the time limit (124)
# records that as the run's result (harness_set_result: the caller's harness_fail after
# it keeps this reason).
HARNESS_GATE_OUT=""
harness_gate_wait() {
  [ -n "$HARNESS_GATE_PID" ] || return 1
  wait "$HARNESS_GATE_PID" 2>/dev/null || true
  HARNESS_GATE_PID=""
  rm -f "$TICKET_DIR/gate.pid"
  local rc=1
  HARNESS_GATE_OUT=""
  # read, not $(cat ...): no fork on the way to the push.
  # shellcheck disable=SC2034 # read by worker.sh
  read -r HARNESS_GATE_OUT <"$TICKET_DIR/gate.out" 2>/dev/null || true
  read -r rc <"$TICKET_DIR/gate.rc" 2>/dev/null || true
  [[ $rc =~ ^[0-9]+$ ]] || rc=1
  if [ "$rc" -eq 124 ]; then
    local secs
    harness_test_timeout secs
    harness_set_result failed "the test command ran past harness.testTimeoutSeconds ($secs s) and was stopped (see tests.log)"
  fi
  return "$rc"
}

# harness_gate_group_alive PGID : true while a process of process group PGID is alive
# (a zombie is dead: it only waits to be reaped).
harness_gate_group_alive() {
  ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { alive = 1 } END { exit !alive }'
}

# harness_gate_stop : stop a background gate still running (its whole process group)
# and remove the checkouts it was testing in. TERM, then KILL after 2 s, and it waits (up
# to 2 s more) until no process of the group is left: the group's TERM comes once, and a
# process starting at that moment can miss it. Seen on a loaded machine, a gate stopped
# while its command was starting: the outer bubblewrap died of the TERM, and the init of
# the command's PID namespace (which a TERM from outside does not end; --die-with-parent
# did not end it either) ran the command to its end, 30 s of `sleep 30` in
# test/harness/isolation.bats, in the checkout removed below.
harness_gate_stop() {
  [ -n "$HARNESS_GATE_PID" ] || return 0
  local pgid
  pgid=$(cat "$TICKET_DIR/gate.pid" 2>/dev/null || true)
  if [ -n "$pgid" ]; then kill -TERM -- "-$pgid" 2>/dev/null || true; fi
  kill -TERM "$HARNESS_GATE_PID" 2>/dev/null || true
  wait "$HARNESS_GATE_PID" 2>/dev/null || true
  if [ -n "$pgid" ]; then harness_reap "$pgid" harness_gate_group_alive "$pgid"; fi
  HARNESS_GATE_PID=""
  rm -f "$TICKET_DIR/gate.pid"
  harness_worktree_remove "$HARNESS_GATE_DIR" "$HARNESS_GATE_DIR.gate"
  harness_worktree_remove "$HARNESS_GATE_DIR" "$HARNESS_GATE_DIR.base"
}

# harness_push_staging DIR REMOTE STAGING BASE RETRIES [FROM] : rebase onto the latest
# staging and push HEAD:staging. Prints the pushed commit. FROM (the commit the worktree
# was made from): only FROM..HEAD is replayed, the branch's own commits, so a base that
# was force-pushed since does not bring back what it dropped; a branch that no longer
# descends from FROM (its history rewritten) is a failure (4). What is pushed is checked
# against the protected paths once more, as rebased: a failure (4) if it touches one. Returns 0 pushed, 3 on a rebase
# conflict (needs a person; the conflicting files go to $TICKET_DIR/conflict.txt), 4 when
# the rebase (or git cherry before it) failed for another reason, 1 when every push was refused (git's last error in
# $TICKET_DIR/push.err for both), 5 when nothing is left to push: every change of the
# branch is on staging already (a merge stopped after its push went through), and
# staging's commit is printed, which is not this branch's; 6 when the remote refused the
# push for a reason no retry changes and no fix causes (harness_push_refused_by_machine:
# it cannot be written, or not by this user), at once, git's words in push.err.
harness_push_staging() {
  local dir=$1 remote=$2 staging=$3 base=$4 retries=$5 from=${6:-} attempt=0 onto lease changed protected cherry bidi
  if [ -n "$from" ] && ! git -C "$dir" merge-base --is-ancestor "$from" HEAD 2>/dev/null; then
    echo "the branch no longer descends from $from, the commit its worktree was made from: its history was rewritten" >"$TICKET_DIR/push.err"
    return 4
  fi
  while [ "$attempt" -lt "$retries" ]; do
    attempt=$((attempt + 1))
    [ "$attempt" -eq 1 ] || sleep "0.$((RANDOM % 9 + 1))"
    if harness_fetch_locked "$dir" "$remote" "$staging" 2>"$TICKET_DIR/push.err"; then
      onto=$(git -C "$dir" rev-parse --verify --quiet "refs/remotes/$remote/$staging^{commit}") || return 4
      lease=$onto
    elif harness_git_net "$dir" ls-remote --exit-code "$remote" "refs/heads/$staging" >/dev/null 2>&1; then
      # Staging is there and the fetch failed (a ref another push was updating, the
      # network): tried again, and the fetch's words are what the run reports at the end.
      harness_log "fetching $staging failed (attempt $attempt of $retries): $(tr '\n' ' ' <"$TICKET_DIR/push.err")"
      continue
    else
      # No staging branch yet: the first push creates it from this branch.
      harness_fetch_locked "$dir" "$remote" "$base"
      onto=$(git -C "$dir" rev-parse --verify --quiet "refs/remotes/$remote/$base^{commit}") || return 4
      lease=""
    fi
    # Everything below uses that one commit, not the ref (another agent's sandbox can move
    # the shared repository's refs), and the push is leased on it: staging moves only from
    # the commit the fix was rebased onto and checked against.
    if [ -n "$from" ]; then
      # The list whole, not piped to grep -q: grep leaves at the first match, git dies of
      # SIGPIPE writing the rest (a fix of a hundred commits), and under pipefail that read
      # as "on staging already". A git that failed is a failure, not "on staging" either.
      cherry=$(git -C "$dir" cherry "$onto" HEAD "$from" 2>"$TICKET_DIR/push.err") || return 4
      if [[ $'\n'$cherry != *$'\n+'* ]]; then
        # Every commit of the fix is on staging already (a merge stopped after its push).
        git -C "$dir" rev-parse "$onto"
        return 5
      fi
    fi
    if ! git -C "$dir" rebase --quiet ${from:+--onto} "$onto" ${from:+"$from"} >/dev/null 2>"$TICKET_DIR/push.err"; then
      # One name a line, as it is (not quoted with octal escapes).
      git -C "$dir" -c core.quotePath=false diff -z --name-only --diff-filter=U | tr '\0' '\n' >"$TICKET_DIR/conflict.txt"
      git -C "$dir" rebase --abort >/dev/null 2>&1 || true
      # Conflicting files: a person must merge. A rebase that failed for another reason
      # (a dirty or broken worktree) is a failure, with git's words in push.err.
      [ -s "$TICKET_DIR/conflict.txt" ] && return 3
      return 4
    fi
    if [ "$(git -C "$dir" rev-parse HEAD)" = "$onto" ]; then
      git -C "$dir" rev-parse HEAD
      return 5
    fi
    # A retry replays only what this rebase put on top of staging.
    [ -z "$from" ] || from=$onto
    # Exactly what staging gains.
    if ! changed=$(harness_changed_files "$dir" "$onto") || ! protected=$(printf '%s\n' "$changed" | harness_protected_paths); then
      echo "could not check what is to be pushed against the protected paths" >"$TICKET_DIR/push.err"
      return 4
    fi
    if [ -n "$protected" ]; then
      echo "what is to be pushed touches protected paths: $(printf '%s' "$protected" | tr '\n' ' ')" >"$TICKET_DIR/push.err"
      return 4
    fi
    if ! bidi=$(harness_bidi_files "$dir" "$onto"); then
      echo "could not check what is to be pushed for bidirectional control characters" >"$TICKET_DIR/push.err"
      return 4
    fi
    if [ -n "$bidi" ]; then
      echo "what is to be pushed adds bidirectional control characters (U+202A-U+202E, U+2066-U+2069: code that reads one way and runs another) in: $(printf '%s' "$bidi" | tr '\n' ' ')" >"$TICKET_DIR/push.err"
      return 4
    fi
    if harness_git_net "$dir" push --quiet --force-with-lease="refs/heads/$staging:$lease" "$remote" "HEAD:refs/heads/$staging" 2>"$TICKET_DIR/push.err"; then
      git -C "$dir" rev-parse HEAD
      return 0
    fi
    harness_log "push to $staging rejected (attempt $attempt of $retries): $(tr '\n' ' ' <"$TICKET_DIR/push.err")"
    # The remote cannot take any push: every later ticket's would fail the same way.
    if harness_push_refused_by_machine "$TICKET_DIR/push.err"; then return 6; fi
    # Rejected (another worker pushed first): fetch, rebase again, retry after a short jittered wait.
  done
  return 1
}

# harness_push_refused_by_machine FILE : whether git's words in FILE (a push that failed)
# say the remote cannot take a push at all: its repository not writable (a read-only
# mount, files of another user: "unpacker error", "unable to create temporary object
# directory", "permission denied", "read-only file system", "insufficient permission"),
# or the remote refusing this user or out of reach ("could not read from remote
# repository", an authentication failure, a 403). Not a lease or non-fast-forward
# rejection (another push came first: worth a retry), and not a hook that declined this
# push (a pre-receive or branch protection hook judges what is pushed: the fix's).
harness_push_refused_by_machine() {
  [ -s "$1" ] || return 1
  ! LC_ALL=C grep -a -q -i -e 'hook declined' -e 'non-fast-forward' -e 'fetch first' -e 'stale info' "$1" || return 1
  LC_ALL=C grep -a -q -i -e 'unpacker error' -e 'unpack failed' -e 'unable to create temporary object directory' \
    -e 'permission denied' -e 'read-only file system' -e 'insufficient permission' -e 'could not read from remote repository' \
    -e 'authentication failed' -e 'returned error: 403' -e 'does not appear to be a git repository' "$1"
}

# harness_run_uninterrupted VAR FUNCTION ARGS... : run a push (FUNCTION ARGS...) with
# SIGTERM and SIGINT held off; its output goes to VAR, its status is returned. Killed
# halfway, git may already have updated the remote while the run would be recorded as
# stopped: a fix on staging that no record says is there. Its commands inherit the
# ignored signals (a TERM to the whole process group included); one that comes, during
# the push or until the caller has recorded its result and called
# harness_signals_restore, is named in HARNESS_DEFERRED_SIGNAL for the caller to act on.
# shellcheck disable=SC2034 # read by worker.sh
HARNESS_DEFERRED_SIGNAL=""
HARNESS_SAVED_TRAPS=""
# shellcheck disable=SC2034 # HARNESS_DEFERRED_SIGNAL: read by worker.sh
harness_run_uninterrupted() {
  local __var=$1 __out __rc=0
  shift
  HARNESS_SAVED_TRAPS="$(trap -p TERM)"$'\n'"$(trap -p INT)"
  HARNESS_DEFERRED_SIGNAL=""
  trap 'HARNESS_DEFERRED_SIGNAL=TERM' TERM
  trap 'HARNESS_DEFERRED_SIGNAL=INT' INT
  __out=$(trap '' TERM INT; "$@") || __rc=$?
  printf -v "$__var" '%s' "$__out"
  return "$__rc"
}

# harness_signals_restore : put back the TERM and INT traps harness_run_uninterrupted
# replaced (none: the default), once the push's result is recorded.
harness_signals_restore() {
  trap - TERM INT
  if [ -n "${HARNESS_SAVED_TRAPS//$'\n'/}" ]; then eval "$HARNESS_SAVED_TRAPS"; fi
  HARNESS_SAVED_TRAPS=""
}

# harness_conflicts : the files of the last rebase conflict ($TICKET_DIR/conflict.txt), comma-separated.
harness_conflicts() {
  local -a names=()
  local joined
  mapfile -t names <"$TICKET_DIR/conflict.txt"
  printf -v joined '%s, ' "${names[@]}"
  printf '%s\n' "${joined%, }"
}

# harness_push_branch DIR REMOTE BRANCH : push the bot branch for a person's approval; prints its commit.
harness_push_branch() {
  local dir=$1 remote=$2 branch=$3
  harness_git_net "$dir" push --quiet --force-with-lease "$remote" "HEAD:refs/heads/$branch" 2>"$TICKET_DIR/push.err" || return 1
  git -C "$dir" rev-parse HEAD
}
