#!/usr/bin/env bash
# Running one Claude Code phase. The control plane wrote, for each phase,
# config/<phase>.args (NUL-separated CLI arguments: allowlists, MCP config,
# settings with the guard hook, limits); this assembles the prompt from files and
# runs the session through run-phase.mjs (idle kill, wall clock, stream watcher).

# harness_phase_prompt PHASE OUT SPEC... : prompt = prompts/PHASE.md + the given files
# (missing or empty ones skipped), assembled by lib/fence.mjs (assemblePrompt): FILE as it
# is (the brief, fenced inside already), notes:FILE under its name with fence tags defused
# (what an earlier phase wrote, the docs search's excerpts), fenced:FILE under its name
# fenced as data (the diff, whose tests quote the report). Written by node straight to
# OUT: a shell's $(...) would drop NUL characters and join what stood around them.
harness_phase_prompt() {
  local phase=$1 out=$2
  shift 2
  node "$HARNESS_BUGBOT_ROOT/harness/lib/fence.mjs" --prompt "$out" "$BUGBOT_PROMPTS/$phase.md" "$@" ||
    harness_fail "could not assemble the $phase prompt"
}

# harness_phase_run PHASE PROMPT_FILE [LABEL] : run the session; its log and stats are
# named after LABEL (default PHASE; a rework run has its own). Returns run-phase.mjs's status.
harness_phase_run() {
  harness_status "${3:-$1}" start
  harness_phase_start "$@"
  harness_phase_wait
}

# harness_phase_start PHASE PROMPT_FILE [LABEL] [wait] [START_WHEN] : start the session
# in the background (HARNESS_PHASE_PID); harness_phase_wait collects it. With "wait",
# Claude Code starts up now and gets its prompt once PROMPT_FILE appears
# (harness_phase_deliver), so its start-up overlaps the work that writes the prompt. With
# START_WHEN (a file), Claude Code itself starts once that file exists.
HARNESS_PHASE_PID=""
HARNESS_PHASE_LABEL=""
harness_phase_start() {
  local phase=$1 prompt=$2 label=${3:-$1} wait=${4:-} start_when=${5:-} args_file="$TICKET_DIR/config/$1.args"
  local -a args=()
  [ -f "$args_file" ] || harness_fail "no arguments for phase $phase ($args_file)"
  mapfile -d '' -t args <"$args_file"
  local config_dir="$TICKET_DIR/claude-config/$phase"
  mkdir -p "$config_dir" "$TICKET_DIR/home"
  HARNESS_PHASE_LABEL=$label
  if [ -n "$wait" ]; then rm -f "$prompt"; fi
  rm -f "$TICKET_DIR/phase.ready"
  # The agent's git commands get the run's excludes (entry 0), not the harness's own
  # settings: inside the sandbox, the project's hooks may run.
  local git_count=0
  [ -z "${GIT_CONFIG_KEY_0:-}" ] || git_count=1
  # The session's environment holds only what it needs: no control-plane secrets.
  # MCP_CONNECTION_NONBLOCKING=0: the first turn waits until the MCP servers are up.
  # GIT_CONFIG_GLOBAL=/dev/null: the session's HOME is writable (its sandbox lets it), and
  # an alias in a ~/.gitconfig it wrote would run `git push` under another name.
  env -i \
    PATH="$PATH" \
    HOME="$TICKET_DIR/home" \
    LANG=C.UTF-8 \
    TMPDIR="${TMPDIR:-/tmp}" \
    CLAUDE_CONFIG_DIR="$config_dir" \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=1 \
    DISABLE_AUTOUPDATER=1 \
    MCP_CONNECTION_NONBLOCKING=0 \
    CLAUDE_CODE_MAX_RETRIES="${BUGBOT_MODEL_RETRIES:-4}" \
    API_TIMEOUT_MS="${BUGBOT_MODEL_TIMEOUT_MS:-600000}" \
    DISABLE_TELEMETRY=1 \
    DISABLE_ERROR_REPORTING=1 \
    ${ANTHROPIC_BASE_URL:+ANTHROPIC_BASE_URL="$ANTHROPIC_BASE_URL"} \
    ${ANTHROPIC_API_KEY:+ANTHROPIC_API_KEY="$ANTHROPIC_API_KEY"} \
    ${CLAUDE_CODE_OAUTH_TOKEN:+CLAUDE_CODE_OAUTH_TOKEN="$CLAUDE_CODE_OAUTH_TOKEN"} \
    GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-bugbot}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-bugbot@localhost}" \
    GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-bugbot}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-bugbot@localhost}" \
    GIT_CONFIG_GLOBAL=/dev/null \
    GIT_CONFIG_COUNT="$git_count" \
    GIT_CONFIG_KEY_0="${GIT_CONFIG_KEY_0:-}" \
    GIT_CONFIG_VALUE_0="${GIT_CONFIG_VALUE_0:-}" \
    BUGBOT_DEV_URL="http://127.0.0.1:$BUGBOT_PORT" \
    PORT="$BUGBOT_PORT" \
    node "$BUGBOT_HARNESS/lib/run-phase.mjs" \
      --phase "$phase" \
      --log "$TICKET_DIR/stage-$label.jsonl" \
      --stats "$TICKET_DIR/stats-$label.json" \
      --progress "$TICKET_DIR/progress.json" \
      --idle "$BUGBOT_IDLE_S" \
      --wall "$(harness_phase_limit "$phase" WALL_S)" \
      --on-banned "$BUGBOT_ON_BANNED" \
      --worktree "$WORKTREE" \
      --ticket-dir "$TICKET_DIR" \
      --policy "$TICKET_DIR/config/$phase.policy.json" \
      --stdin "$prompt" \
      ${wait:+--wait-for-stdin} \
      --ready-file "$TICKET_DIR/phase.ready" \
      ${start_when:+--start-when "$start_when"} \
      -- "$BUGBOT_CLAUDE" "${args[@]}" &
  HARNESS_PHASE_PID=$!
}

# harness_phase_deliver PROMPT_FILE FILE... : write the prompt of a session started with
# "wait" (prompts/<phase>.md + FILEs, as harness_phase_prompt), all at once.
harness_phase_deliver() {
  local prompt=$1 phase=$2
  shift 2
  harness_phase_prompt "$phase" "$prompt.tmp" "$@"
  harness_status "$HARNESS_PHASE_LABEL" start
  mv "$prompt.tmp" "$prompt"
}

# harness_phase_ready TIMEOUT_S : wait until the running session is up (see run-phase.mjs
# --ready-file), has ended, or TIMEOUT_S passed. Work that may wait (the dev server) starts
# after it, so it does not slow the session's start-up.
harness_phase_ready() {
  local timeout=$1 waited=0
  while [ "$waited" -lt $((timeout * 50)) ]; do
    [ ! -e "$TICKET_DIR/phase.ready" ] || return 0
    kill -0 "$HARNESS_PHASE_PID" 2>/dev/null || return 0
    sleep 0.02
    waited=$((waited + 1))
  done
}

# harness_phase_wait : wait for the session harness_phase_start began; records done or
# failed and returns its status. Call it directly (not in $(...)), from the starting shell.
harness_phase_wait() {
  local rc=0 label=$HARNESS_PHASE_LABEL
  [ -n "$HARNESS_PHASE_PID" ] || return 1
  wait "$HARNESS_PHASE_PID" || rc=$?
  HARNESS_PHASE_PID=""
  if [ "$rc" -eq 0 ]; then
    harness_status "$label" "done"
  else
    harness_status "$label" failed "$(harness_phase_reason "$label")"
  fi
  return "$rc"
}

# harness_phase_stop : end a session still running (run-phase.mjs takes its process group down).
harness_phase_stop() {
  [ -n "$HARNESS_PHASE_PID" ] || return 0
  kill -TERM "$HARNESS_PHASE_PID" 2>/dev/null || true
  wait "$HARNESS_PHASE_PID" 2>/dev/null || true
  HARNESS_PHASE_PID=""
}

# harness_phase_limit PHASE NAME : BUGBOT_<PHASE>_<NAME>, else BUGBOT_<NAME>. Upper-cased
# in the C locale: in a Turkish one, ${1^^} makes "implement" "İMPLEMENT", not a name.
harness_phase_limit() {
  local LC_ALL=C
  local var="BUGBOT_${1^^}_$2" fallback="BUGBOT_$2"
  echo "${!var:-${!fallback:-1800}}"
}

# harness_phase_reason LABEL : why a phase failed, from its stats (killed / error subtype).
harness_phase_reason() {
  # shellcheck disable=SC2016 # JavaScript, not shell: the backticks are a template literal
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const apiError = s.is_error && (s.model_error || s.api_error_status)
      ? `model endpoint failed: ${String(s.result ?? `status ${s.api_error_status}`).split("\n")[0].slice(0, 200)}`
      : null;
    const why = s.killed ?? apiError ?? (s.subtype && s.subtype !== "success" ? s.subtype : s.is_error ? "error_during_execution" : `exit ${s.exit_code}`);
    process.stdout.write(String(why));
  ' "$TICKET_DIR/stats-$1.json" 2>/dev/null || echo "no stats"
}

# harness_phase_fail WHAT LABEL : fail the run for the session LABEL that failed, named
# WHAT. What would fail every ticket the same way is the machine's problem, not the
# ticket's, and the run fails as one the machine could not host (harness_fail_env):
# - never counted against a ticket (`uncounted`), since nothing in a ticket can cause it:
#   the endpoint refusing the credentials (401), the account out of credit (a
#   billing error: Claude Code's `billing_error`, or a 400 or 402 saying "credit balance"
#   or "billing"), nothing answering at its address (connection refused, the name not
#   resolving);
# - given back a few times, then counted (the control plane's ENV_REFUNDS): a 5xx or 529,
#   a 403 (a key without access, but also a gateway's content filter refusing what one
#   ticket's report says, which must not retry for ever), a 408 or a timeout, a connection cut, a 429 (after Claude Code's own retries: the
#   organisation's rate limit, every ticket's requests refused alike; a request too big
#   for the per-minute token limit is refused the same way, and ends counted after its
#   refunds), Claude Code that could not be started (removed or made not executable
#   under a running bugbot: an `npm ci`), and a session killed for silence while it
#   waited on the model (no tool call running: the endpoint stopped answering).
# What the endpoint refused for what the request held (a prompt too long, other 4xx) is
# the ticket's.
harness_phase_fail() {
  local why class
  why="$1: $(harness_phase_reason "$2")"
  class=$(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const st = Number(s.api_error_status) || 0;
    const text = String(s.result ?? "");
    const kind = String(s.model_error_kind ?? "");
    const noConnection = s.model_error && !st;
    const uncounted = st === 401 || (kind === "authentication_failed" && st !== 403) || kind === "billing_error" ||
      ([400, 402].includes(st) && /credit balance|billing/i.test(text)) ||
      (noConnection && /ConnectionRefused|ECONNREFUSED|connection refused|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(text));
    const machine = st >= 500 || [403, 408, 429].includes(st) || kind === "rate_limit" ||
      (noConnection && /unable to connect|connection (error|reset)|ECONNRESET|ETIMEDOUT|socket hang up|fetch failed|timed? ?out/i.test(text));
    // Killed for silence while it waited on the model: the endpoint stopped answering.
    const modelSilent = /^idle: /.test(String(s.killed ?? "")) && s.awaiting_model === true;
    process.stdout.write(/^could not start /.test(String(s.killed ?? "")) || modelSilent ? "machine" : !s.is_error ? "ticket" : uncounted ? "uncounted" : machine ? "machine" : "ticket");
  ' "$TICKET_DIR/stats-$2.json" 2>/dev/null) || class=ticket
  case $class in
    uncounted) harness_fail_env "$why" uncounted ;;
    machine) harness_fail_env "$why" ;;
  esac
  harness_fail "$why"
}

# harness_stat PHASE KEY : one value from a phase's stats (empty when missing).
harness_stat() {
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const v = s[process.argv[2]];
    process.stdout.write(v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  ' "$TICKET_DIR/stats-$1.json" "$2" 2>/dev/null || true
}

# harness_mcp_host_start : start the ticket's MCP servers for the whole run, when the
# control plane asked for any (config/mcp-host.json; see lib/mcp-host.mjs). Sets
# HARNESS_MCP_HOST_PID. The host gets no credentials but the servers' own (in the spec);
# it stops by itself once this worker is gone, however it ended. It runs at a lower CPU
# priority: it starts beside research's session, whose start-up the ticket waits for.
# Its HOME is a folder of the ticket's that the agent's sandbox can neither read nor write
# (not the sessions' home, which it writes): Node looks for a module it cannot find in
# ~/.node_modules (Playwright's optional bufferutil, pg's pg-native), so a module planted
# there would run in the servers, outside any sandbox.
HARNESS_MCP_HOST_PID=""
harness_mcp_host_start() {
  local spec="$TICKET_DIR/config/mcp-host.json"
  [ -s "$spec" ] || return 0
  mkdir -p "$TICKET_DIR/mcp-home"
  env -i PATH="$PATH" HOME="$TICKET_DIR/mcp-home" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
    nice -n 10 node "$BUGBOT_HARNESS/lib/mcp-host.mjs" --spec "$spec" --parent "$$" --cwd "$BUGBOT_REPO" --log-dir "$TICKET_DIR" \
    </dev/null >>"$TICKET_DIR/mcp-host.log" 2>&1 &
  HARNESS_MCP_HOST_PID=$!
}

# harness_project_notes DIR OUT : the repository's CLAUDE.md (at most 32 KB) as a notes
# file for the sessions' prompts: its auto-load table names the docs to read per topic.
# Not a link (the harness reads it outside any sandbox: a link could name any file). OUT
# is in the agent's folder: replaced, not written through a link there.
harness_project_notes() {
  local dir=$1 out=$2 max=32768 size
  if [ -f "$dir/CLAUDE.md" ] && [ ! -L "$dir/CLAUDE.md" ]; then
    size=$(stat -c %s -- "$dir/CLAUDE.md")
    {
      printf "# Project notes (the repository's CLAUDE.md)\n\n"
      head -c "$max" -- "$dir/CLAUDE.md"
      [ "$size" -le "$max" ] || printf '\n\n… (cut at %d of %d bytes: the rest is in CLAUDE.md)\n' "$max" "$size"
    } | harness_replace_file "$out"
  else
    printf '# Project notes\n\nThe repository has no CLAUDE.md%s.\n' "$([ -L "$dir/CLAUDE.md" ] && echo ' (only a link, not read)')" | harness_replace_file "$out"
  fi
}

# harness_mcp_host_stop : stop the MCP servers (their sessions have ended) and wait for them.
harness_mcp_host_stop() {
  [ -n "$HARNESS_MCP_HOST_PID" ] || return 0
  kill -TERM "$HARNESS_MCP_HOST_PID" 2>/dev/null || true
  wait "$HARNESS_MCP_HOST_PID" 2>/dev/null || true
  HARNESS_MCP_HOST_PID=""
}
