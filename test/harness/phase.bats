#!/usr/bin/env bats
# harness_phase_start: what a Claude Code session's environment holds. A stand-in for
# the CLI (BUGBOT_CLAUDE) reports what git reads there.

load test_helper

setup() {
  setup_tmp
  make_repo
  # shellcheck source=../../harness/lib/phase.sh
  source "$HARNESS/lib/phase.sh"
  WORKTREE="$TMP/repo"
  BUGBOT_PORT=1
  BUGBOT_IDLE_S=30
  BUGBOT_ON_BANNED=deny
  mkdir -p "$TICKET_DIR/home"
  : >"$TICKET_DIR/config/research.args"
  printf '{}' >"$TICKET_DIR/config/research.policy.json"
  # The session's HOME holds an alias the agent wrote: `git p` would push.
  printf '[alias]\n\tp = push\n' >"$TICKET_DIR/home/.gitconfig"
  mkdir -p "$TICKET_DIR/home/.config/git"
  printf '[alias]\n\tq = push\n' >"$TICKET_DIR/home/.config/git/config"
  BUGBOT_CLAUDE="$TMP/claude"
  # What it finds goes to $TMP/probe (its environment holds no TMP: the path is written in).
  cat >"$BUGBOT_CLAUDE" <<SH
#!/usr/bin/env bash
{
  echo "global=\${GIT_CONFIG_GLOBAL:-unset}"
  echo "alias.p=\$(git config alias.p || echo none)"
  echo "alias.q=\$(git config alias.q || echo none)"
} >"$TMP/probe"
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'
SH
  chmod +x "$BUGBOT_CLAUDE"
  printf 'go\n' >"$TICKET_DIR/prompt.md"
}

teardown() { teardown_tmp; }

@test "a session's git reads no global config: an alias written into its HOME does not run" {
  harness_phase_start research "$TICKET_DIR/prompt.md"
  wait "$HARNESS_PHASE_PID" || true
  run cat "$TMP/probe"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "global=/dev/null" ]
  [ "${lines[1]}" = "alias.p=none" ]
  [ "${lines[2]}" = "alias.q=none" ]
}

# Review finding: the sessions run without project settings, so Claude Code never loaded
# the repository's CLAUDE.md: its auto-load table reached no session.
@test "project notes: the repository's CLAUDE.md for the prompts, cut at 32 KB and said so; a link is not followed" {
  printf '# Shop\n\n| topic | docs |\n|---|---|\n| pets | docs/pets.md |\n' >"$TMP/repo/CLAUDE.md"
  harness_project_notes "$TMP/repo" "$TMP/notes.md"
  grep -q "^# Project notes (the repository's CLAUDE.md)" "$TMP/notes.md"
  grep -qF '| pets | docs/pets.md |' "$TMP/notes.md"

  head -c 40000 /dev/zero | tr '\0' 'x' >"$TMP/repo/CLAUDE.md"
  harness_project_notes "$TMP/repo" "$TMP/notes.md"
  [ "$(wc -c <"$TMP/notes.md")" -lt 33000 ]
  grep -q 'cut at 32768 of 40000 bytes' "$TMP/notes.md"

  printf 'secret\n' >"$TMP/elsewhere"
  rm "$TMP/repo/CLAUDE.md"
  ln -s "$TMP/elsewhere" "$TMP/repo/CLAUDE.md"
  harness_project_notes "$TMP/repo" "$TMP/notes.md"
  [ "$(grep -c secret "$TMP/notes.md")" = 0 ]
  grep -q 'only a link, not read' "$TMP/notes.md"

  rm "$TMP/repo/CLAUDE.md"
  harness_project_notes "$TMP/repo" "$TMP/notes.md"
  grep -q 'The repository has no CLAUDE.md.' "$TMP/notes.md"
}

# Review finding: harness_phase_limit upper-cased the phase's name with ${1^^}, which
# follows the locale: under LANG=tr_TR.UTF-8 "implement" became "İMPLEMENT", not a
# variable name, the wall-clock limit came out empty, and run-phase.mjs took it for 0 s:
# every run failed at implement ("wall clock: phase exceeded  s").
@test "a phase's limits are read whatever the locale (Turkish upper-cases i as İ)" {
  mkdir -p "$TMP/locale"
  localedef -i tr_TR -f UTF-8 "$TMP/locale/tr_TR.UTF-8" 2>/dev/null ||
    { echo "cannot build the tr_TR.UTF-8 locale: install the locales package (apt-get install locales)" >&2; false; }
  # shellcheck disable=SC2016 # expanded by the inner bash
  run env LOCPATH="$TMP/locale" LANG=tr_TR.UTF-8 BUGBOT_IMPLEMENT_WALL_S=600 BUGBOT_WALL_S=1200 bash -c '
    source "$BUGBOT_HARNESS/lib/phase.sh"
    i=i; echo "${i^^}"
    harness_phase_limit implement WALL_S
    harness_phase_limit review WALL_S'
  [ "$status" -eq 0 ]
  # The locale is in force (the test can fail), and the limits are the ones set.
  [ "${lines[0]}" = "İ" ]
  [ "${lines[1]}" = 600 ]
  [ "${lines[2]}" = 1200 ]
  [ "${#lines[@]}" -eq 3 ]
}
