#!/usr/bin/env bats
# The run's agent/ folder, which the agent's sessions write, as the harness reads and writes
# it outside any sandbox: a symbolic link planted there (plan.md → a file holding a secret,
# diff.patch → ~/.bashrc) is neither followed into a prompt nor written through.

load test_helper

setup() {
  setup_tmp
  # shellcheck source=../../harness/lib/phase.sh
  source "$HARNESS/lib/phase.sh"
  AGENT="$TICKET_DIR/agent"
  mkdir -p "$AGENT"
  export BUGBOT_PROMPTS="$TMP/prompts"
  mkdir -p "$BUGBOT_PROMPTS"
  printf 'Review the diff below.\n' >"$BUGBOT_PROMPTS/review.md"
  # What the harness can read and the agent must not: the local key, a private key.
  printf '{"key":"CANARY-local-key"}\n' >"$TMP/server.json"
  # What the operator owns and the agent must not write.
  printf 'export PS1=CANARY-bashrc\n' >"$TMP/bashrc"
}

teardown() { teardown_tmp; }

@test "a phase prompt leaves out an agent/ file that is a link: neither the brief, notes nor fenced files follow one" {
  ln -s "$TMP/server.json" "$AGENT/ticket.md"
  ln -s "$TMP/server.json" "$AGENT/plan.md"
  ln -s "$TMP/server.json" "$AGENT/diff.patch"
  # A link to a link, and one to a folder.
  ln -s "$AGENT/plan.md" "$AGENT/review-notes.md"
  ln -s "$TMP" "$AGENT/pre-context.md"
  printf '# Project notes\n\nkept\n' >"$AGENT/project-notes.md"
  harness_phase_prompt review "$TMP/prompt.md" "$AGENT/ticket.md" "notes:$AGENT/project-notes.md" "notes:$AGENT/plan.md" "notes:$AGENT/review-notes.md" "notes:$AGENT/pre-context.md" "fenced:$AGENT/diff.patch" 2>"$TMP/err"
  [ "$(grep -c CANARY "$TMP/prompt.md")" = 0 ]
  # What is a regular file still goes in, and what was left out is said in the worker log.
  grep -qx 'kept' "$TMP/prompt.md"
  grep -q "plan.md is not a regular file" "$TMP/err"
}

@test "a phase prompt does not wait on a FIFO planted in agent/: it is left out" {
  mkfifo "$AGENT/plan.md"
  run timeout 20 node "$HARNESS/lib/fence.mjs" --prompt "$TMP/prompt.md" "$BUGBOT_PROMPTS/review.md" "notes:$AGENT/plan.md"
  [ "$status" -eq 0 ]
  [ "$(cat "$TMP/prompt.md")" = 'Review the diff below.' ]
}

@test "harness_replace_file: a link planted at the name is replaced, its target (a file, a folder) never written" {
  ln -s "$TMP/bashrc" "$AGENT/diff.patch"
  printf 'diff --git a/x b/x\n' | harness_replace_file "$AGENT/diff.patch"
  [ "$(cat "$TMP/bashrc")" = 'export PS1=CANARY-bashrc' ]
  [ ! -L "$AGENT/diff.patch" ]
  [ -f "$AGENT/diff.patch" ]
  [ "$(cat "$AGENT/diff.patch")" = 'diff --git a/x b/x' ]

  # A link to a folder: plain mv would move the file into it.
  mkdir "$TMP/ssh"
  ln -s "$TMP/ssh" "$AGENT/pre-context.md"
  printf '# Pre-context\n' | harness_replace_file "$AGENT/pre-context.md"
  [ -z "$(ls -A "$TMP/ssh")" ]
  [ "$(cat "$AGENT/pre-context.md")" = '# Pre-context' ]

  # A dangling link: nothing is made where it points.
  ln -s "$TMP/authorized_keys" "$AGENT/review-notes.md"
  printf 'notes\n' | harness_replace_file "$AGENT/review-notes.md"
  [ ! -e "$TMP/authorized_keys" ]
  [ "$(cat "$AGENT/review-notes.md")" = 'notes' ]

  # A plain file is simply replaced, with a plain write's mode, and no temporary file is left.
  printf 'old\n' >"$AGENT/plain.md"
  chmod 600 "$AGENT/plain.md"
  printf 'new\n' | (umask 022 && harness_replace_file "$AGENT/plain.md")
  [ "$(cat "$AGENT/plain.md")" = new ]
  [ "$(stat -c %a "$AGENT/plain.md")" = 644 ]
  [ -z "$(find "$AGENT" -name '.*.tmp')" ]
}

@test "project notes written over a link planted in agent/ replace it, not its target" {
  mkdir -p "$TMP/repo"
  printf '# Shop\n' >"$TMP/repo/CLAUDE.md"
  ln -s "$TMP/bashrc" "$AGENT/project-notes.md"
  harness_project_notes "$TMP/repo" "$AGENT/project-notes.md"
  [ "$(cat "$TMP/bashrc")" = 'export PS1=CANARY-bashrc' ]
  [ ! -L "$AGENT/project-notes.md" ]
  grep -qx '# Shop' "$AGENT/project-notes.md"
  rm "$TMP/repo/CLAUDE.md"
  ln -sf "$TMP/bashrc" "$AGENT/project-notes.md"
  harness_project_notes "$TMP/repo" "$AGENT/project-notes.md"
  [ "$(cat "$TMP/bashrc")" = 'export PS1=CANARY-bashrc' ]
  grep -q 'The repository has no CLAUDE.md.' "$AGENT/project-notes.md"
}

@test "outcome.json reads no verdict through a link in agent/" {
  printf '{"verdict":"approved","reasons":["CANARY-other-ticket"]}\n' >"$TMP/other-verdict.json"
  ln -s "$TMP/other-verdict.json" "$AGENT/verdict.json"
  printf 'pushed\tpushed to staging\n' >"$TICKET_DIR/result"
  node "$HARNESS/lib/outcome.mjs" "$TICKET_DIR"
  [ "$(grep -c CANARY "$TICKET_DIR/outcome.json")" = 0 ]
  [ "$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).verdict))' "$TICKET_DIR/outcome.json")" = null ]
  # A regular verdict is read as before.
  rm "$AGENT/verdict.json"
  printf '{"verdict":"approved","reasons":["covered"],"edits":1}\n' >"$AGENT/verdict.json"
  node "$HARNESS/lib/outcome.mjs" "$TICKET_DIR"
  grep -q '"covered"' "$TICKET_DIR/outcome.json"
}

# No write of worker.sh or the libraries goes straight to a file of agent/: each is by
# harness_replace_file or writeAgentFile (a redirection would write through a link).
@test "the harness writes no agent/ file by a redirection or fs.writeFileSync" {
  run grep -nE '>>?[[:space:]]*"?\$(AGENT|out)\b|writeFileSync\(process\.argv' "$HARNESS/worker.sh" "$HARNESS/lib/phase.sh"
  [ "$status" -eq 1 ]
}

# The whole worker with a stand-in for Claude Code: links planted in agent/ before the run
# (where the harness writes) and by the sessions (where it reads next) are neither written
# through nor followed, and the run still goes through (review asks for rework once).
@test "a worker run: links planted in agent/ are replaced, never written through, and never followed into a prompt or the outcome" {
  make_repo
  # What each link points at: files the operator owns (written through, they would hold
  # the harness's text) and secrets (followed, they would reach a prompt or the outcome).
  for name in pre-context.md project-notes.md diff.patch verdict.json review-notes.md; do
    printf 'CANARY-victim %s\n' "$name" >"$TMP/victim-$name"
    ln -s "$TMP/victim-$name" "$AGENT/$name"
  done
  printf '{"verdict":"approved","reasons":["CANARY-other-ticket"]}\n' >"$TMP/other-verdict.json"
  # The stand-in's sessions: research writes the plan; implement fixes and then swaps the
  # plan for a link to the local key; review asks for rework once; docs swaps the verdict
  # for a link to another ticket's.
  worker_setup
  for n in 0 1; do
    cat >"$TMP/play/implement-$n.sh" <<SH
printf 'fixed $n\n' >a.txt
rm -f "$AGENT/plan.md" && ln -s "$TMP/server.json" "$AGENT/plan.md"
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'
SH
  done
  echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok","structured_output":{"verdict":"needs-rework","reasons":["say why"],"edits":0}}' >"$TMP/review-0.json"
  printf 'cat %q\n' "$TMP/review-0.json" >"$TMP/play/review-0.sh"
  cat >"$TMP/play/docs-0.sh" <<SH
rm -f "$AGENT/verdict.json" && ln -s "$TMP/other-verdict.json" "$AGENT/verdict.json"
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'
SH
  run env -u BUGBOT_BIN bash "$HARNESS/worker.sh" 1 "$TICKET_DIR"
  [ "$(cut -f1 "$TICKET_DIR/result")" = awaiting_approval ] || { cat "$TICKET_DIR/result"; echo "$output"; false; }
  # Nothing was written through a link the run found in agent/.
  for name in pre-context.md project-notes.md diff.patch verdict.json review-notes.md; do
    [ "$(cat "$TMP/victim-$name")" = "CANARY-victim $name" ]
  done
  # Research, implement (twice), review (twice) and docs got their prompts, none with the
  # local key or another ticket's verdict; the plan the sessions read was research's.
  [ "$(ls "$TMP"/ran-* | wc -l)" = 6 ]
  [ "$(cat "$TMP"/ran-* "$TICKET_DIR"/prompt-*.md | grep -c CANARY)" = 0 ]
  grep -q 'Fix the greeting.' "$TMP/ran-implement-0"
  grep -q '^- say why$' "$TMP/ran-implement-1"
  grep -q '^+fixed 1$' "$TMP/ran-docs-0"
  [ "$(grep -c CANARY "$TICKET_DIR/outcome.json")" = 0 ]
}
