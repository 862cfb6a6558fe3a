#!/usr/bin/env bash
# Running one Claude Code phase. The control plane wrote, for each phase,
# config/<phase>.args (NUL-separated CLI arguments: allowlists, MCP config,
# settings with the guard hook, limits); this assembles the prompt from files and
# runs the session through run-phase.mjs (idle kill, wall clock, stream watcher).

# harness_phase_prompt PHASE OUT FILE... : prompt = prompts/PHASE.md + the given files (missing ones skipped).
harness_phase_prompt() {
  local phase=$1 out=$2 f
  shift 2
  cat "$BUGBOT_PROMPTS/$phase.md" >"$out"
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf '\n\n' >>"$out"
      cat "$f" >>"$out"
    fi
  done
}

# harness_phase_run PHASE PROMPT_FILE [LABEL] : run the session; its log and stats are
# named after LABEL (default PHASE; a rework run has its own). Returns run-phase.mjs's status.
harness_phase_run() {
  local phase=$1 prompt=$2 label=${3:-$1} args_file="$TICKET_DIR/config/$1.args"
  local -a args=()
  [ -f "$args_file" ] || harness_fail "no arguments for phase $phase ($args_file)"
  mapfile -d '' -t args <"$args_file"
  local config_dir="$TICKET_DIR/claude-config/$phase"
  mkdir -p "$config_dir" "$TICKET_DIR/home"
  harness_status "$label" start
  local rc=0
  # The session's environment holds only what it needs: no control-plane secrets.
  # MCP_CONNECTION_NONBLOCKING=0: the first turn waits until the MCP servers are up.
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
    GIT_CONFIG_COUNT="${GIT_CONFIG_COUNT:-0}" \
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
      -- "$BUGBOT_CLAUDE" "${args[@]}" || rc=$?
  if [ "$rc" -eq 0 ]; then
    harness_status "$label" "done"
  else
    harness_status "$label" failed "$(harness_phase_reason "$label")"
  fi
  return "$rc"
}

# harness_phase_limit PHASE NAME : BUGBOT_<PHASE>_<NAME>, else BUGBOT_<NAME>.
harness_phase_limit() {
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

# harness_stat PHASE KEY : one value from a phase's stats (empty when missing).
harness_stat() {
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const v = s[process.argv[2]];
    process.stdout.write(v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  ' "$TICKET_DIR/stats-$1.json" "$2" 2>/dev/null || true
}
