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

# phase_stats JSON : a failed session's stats (run-phase.mjs writes them), for harness_phase_fail.
phase_stats() {
  printf '%s\n' "$1" >"$TICKET_DIR/stats-research.json"
  rm -f "$TICKET_DIR/environment-failure" "$TICKET_DIR/result"
}

# env_failure : the environment-failure file's lines, joined by "|" ("none" without one).
env_failure() {
  if [ -e "$TICKET_DIR/environment-failure" ]; then paste -sd '|' "$TICKET_DIR/environment-failure"; else echo none; fi
}

# Review findings: with the model account out of credit (a 400 billing error) or the
# organisation's rate limit hit (a 429 after Claude Code's retries), every queued ticket
# failed for good within seconds; a key refused or an endpoint nothing answers at was given
# back only three times per ticket, though no ticket can cause either; and Claude Code
# removed under a running bugbot (spawn ENOENT) failed each ticket for good.
@test "a failed session is the machine's when every ticket would fail alike; never counted when no ticket can cause it" {
  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"billing_error","api_error_status":400,"result":"Credit balance is too low"}'
  run harness_phase_fail research research
  [ "$status" -eq 1 ]
  [ "$(env_failure)" = "research: model endpoint failed: Credit balance is too low|counts: never" ]

  phase_stats '{"is_error":true,"model_error":true,"api_error_status":400,"result":"API Error: 400 Your credit balance is too low to access the Anthropic API."}'
  run harness_phase_fail research research
  [[ $(env_failure) == *"|counts: never" ]]

  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"authentication_failed","api_error_status":401,"result":"Invalid API key · Fix external API key"}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: model endpoint failed: Invalid API key · Fix external API key|counts: never" ]

  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"unknown","api_error_status":null,"result":"API Error: Unable to connect to API (ConnectionRefused)"}'
  run harness_phase_fail research research
  [[ $(env_failure) == *"|counts: never" ]]

  # The machine's, given back a few times and then counted: a request too big for the
  # per-minute limit is refused the same way as the organisation's limit.
  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"rate_limit","api_error_status":429,"result":"API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 requests per minute."}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: model endpoint failed: API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 requests per minute." ]

  # A 403 may be a gateway's content filter refusing one ticket's report: bounded, not for ever.
  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"authentication_failed","api_error_status":403,"result":"API Error: 403 Request blocked by policy"}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: model endpoint failed: API Error: 403 Request blocked by policy" ]

  phase_stats '{"is_error":true,"model_error":true,"api_error_status":529,"result":"API Error: 529 Overloaded"}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: model endpoint failed: API Error: 529 Overloaded" ]

  phase_stats '{"is_error":true,"model_error":true,"api_error_status":null,"result":"API Error: Unable to connect to API (ECONNRESET)"}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: model endpoint failed: API Error: Unable to connect to API (ECONNRESET)" ]

  phase_stats '{"killed":"could not start /opt/claude: spawn /opt/claude ENOENT","is_error":null,"result":null}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: could not start /opt/claude: spawn /opt/claude ENOENT" ]

  # The ticket's: what the endpoint refused for what this request held, and the session's own failures.
  phase_stats '{"is_error":true,"model_error":true,"model_error_kind":"invalid_request","api_error_status":400,"result":"API Error: 400 prompt is too long: 210000 tokens > 200000 maximum"}'
  run harness_phase_fail research research
  [ "$(env_failure)" = none ]
  [ "$(cut -f2 "$TICKET_DIR/result")" = "research: model endpoint failed: API Error: 400 prompt is too long: 210000 tokens > 200000 maximum" ]
  phase_stats '{"killed":"idle: no stream event for 300 s","is_error":null}'
  run harness_phase_fail research research
  [ "$(env_failure)" = none ]
  # Silent while it waited on the model, no tool call running: the endpoint's, not the ticket's.
  phase_stats '{"killed":"idle: no answer from the model for 300 s (its endpoint stopped answering)","awaiting_model":true,"is_error":null}'
  run harness_phase_fail research research
  [ "$(env_failure)" = "research: idle: no answer from the model for 300 s (its endpoint stopped answering)" ]
  phase_stats '{"subtype":"error_max_turns","is_error":true}'
  run harness_phase_fail research research
  [ "$(env_failure)" = none ]
}

# A Claude Code that cannot be started ends the session with the reason run-phase.mjs gives.
@test "a session whose command is gone: could not start, and the run is the machine's" {
  BUGBOT_CLAUDE="$TMP/no-such-claude"
  rm -f "$TICKET_DIR/environment-failure"
  harness_phase_start research "$TICKET_DIR/prompt.md"
  rc=0
  wait "$HARNESS_PHASE_PID" || rc=$?
  [ "$rc" -ne 0 ]
  run harness_phase_fail research research
  [ "$status" -eq 1 ]
  [[ $(env_failure) == "research: could not start $TMP/no-such-claude: spawn $TMP/no-such-claude ENOENT" ]]
}

# Review finding: the MCP host ran with the sessions' HOME, which the agent's sandbox writes:
# Node looks for a module it cannot find in ~/.node_modules (Playwright's optional
# bufferutil), so a module planted there ran in the browser server, outside any sandbox.
@test "mcp host: its servers' HOME is not the sessions' home, and a module planted there is not loaded" {
  mkdir -p "$TICKET_DIR/home/.node_modules/planted"
  printf 'require("fs").writeFileSync(process.env.PROBE_OUT, "LOADED");\n' >"$TICKET_DIR/home/.node_modules/planted/index.js"
  # A server that reports its HOME and asks for a module no node_modules holds.
  cat >"$TMP/server.sh" <<SH
#!/usr/bin/env bash
echo "\$HOME" >"$TMP/server-home"
PROBE_OUT="$TMP/loaded" node -e 'try { require("planted") } catch { require("fs").writeFileSync("$TMP/missing", "") }'
sleep 30
SH
  chmod +x "$TMP/server.sh"
  printf '{"servers":{"probe":{"command":"%s","args":[],"env":{},"socket":"%s"}}}' "$TMP/server.sh" "$TICKET_DIR/mcp/probe.sock" >"$TICKET_DIR/config/mcp-host.json"
  harness_mcp_host_start
  for _ in $(seq 50); do [ -e "$TMP/missing" ] || [ -e "$TMP/loaded" ] && break; sleep 0.1; done
  kill "$HARNESS_MCP_HOST_PID"
  [ "$(cat "$TMP/server-home")" != "$TICKET_DIR/home" ]
  [ -e "$TMP/missing" ]
  [ ! -e "$TMP/loaded" ]
}


# Review finding: a docs session that failed (its turns, budget or wall clock spent, or
# ended for a banned action) had its half-done edits committed and pushed with the fix,
# though the worker log said the fix went out without doc updates.
@test "a docs session that failed: its edits and commits are dropped, the reviewed fix is pushed" {
  worker_setup
  cat >"$TMP/play/docs-0.sh" <<'SH'
mkdir -p docs && printf 'half an edit\n' >docs/x.md && git add docs/x.md && git commit --quiet -m 'docs: half'
printf 'cut short\n' >CLAUDE.md
echo '{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":20,"total_cost_usd":0.01}'
SH
  run env -u BUGBOT_BIN bash "$HARNESS/worker.sh" 1 "$TICKET_DIR"
  [ "$(worker_result)" = "awaiting_approval|pushed bot/ticket-1 for approval" ] || { worker_result; echo "$output"; false; }
  log=$output
  [ "$(git -C "$TMP/origin.git" show bot/ticket-1:a.txt)" = "fixed 0" ]
  run git -C "$TMP/origin.git" cat-file -e bot/ticket-1:docs/x.md
  [ "$status" -ne 0 ]
  run git -C "$TMP/origin.git" cat-file -e bot/ticket-1:CLAUDE.md
  [ "$status" -ne 0 ]
  [[ $log == *"docs phase failed (error_max_turns): its changes are dropped"* ]]
}

@test "a docs session that succeeded: its docs go out with the fix" {
  worker_setup
  cat >"$TMP/play/docs-0.sh" <<'SH'
mkdir -p docs && printf 'the greeting\n' >docs/x.md
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.01,"result":"ok"}'
SH
  run env -u BUGBOT_BIN bash "$HARNESS/worker.sh" 1 "$TICKET_DIR"
  [ "$(cut -d'|' -f1 <<<"$(worker_result)")" = awaiting_approval ] || { worker_result; echo "$output"; false; }
  [ "$(git -C "$TMP/origin.git" show bot/ticket-1:docs/x.md)" = "the greeting" ]
}
