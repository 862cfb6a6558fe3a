#!/usr/bin/env bash
# The worker's dev server: PORT=BASE_PORT+worker-id, probed until it accepts connections.

# harness_devserver_start DIR PORT COMMAND LOG : start COMMAND in its own process group; prints its PID.
# It runs at a lower CPU priority: it starts beside the first Claude Code session, whose
# turns the ticket waits for.
# A dev server that reloads runs the agent's edits outside its sandbox: it is confined
# (harness_confine: no model credentials, the operator's credentials hidden, bugbot's
# home read-only but for its worktree, the database and the local key unreadable) and
# the repository's git data is read-only to it (harness_git_readonly), as for the test
# gate. It keeps the host's network: the browser tools and harness_devserver_wait reach
# it on 127.0.0.1, which a network namespace of its own would cut off.
# DIR not in a repository: nothing starts, the reason goes to LOG and the PID printed is
# that of a process already failing, so harness_devserver_wait reports it.
harness_devserver_start() {
  local dir=$1 port=$2 command=$3 log=$4
  (
    if ! harness_git_readonly "$dir" 2>>"$log"; then
      echo "harness: $dir is not in a git repository; the dev server does not start" >>"$log"
      exit 1
    fi
    harness_confine --bind "$dir" "$dir" "${HARNESS_GIT_RO[@]}"
    # The credentials and the operator's HOME go before the first exec: no process on the
    # way (setsid, nice) holds them either.
    cd "$dir" && unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN && export HOME="$TICKET_DIR/home" &&
      PORT=$port exec setsid nice -n 10 "${HARNESS_CONFINE[@]}" bash -c "$command" </dev/null >>"$log" 2>&1
  ) &
  echo $!
}

# harness_port_taken PORT : true when something listens on 127.0.0.1:PORT already. Then
# the dev server could not listen there, and harness_devserver_wait and the browser tools
# would reach that other process instead.
harness_port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# harness_devserver_wait PORT PID TIMEOUT_S : true once 127.0.0.1:PORT accepts a connection.
harness_devserver_wait() {
  local port=$1 pid=$2 timeout=$3 waited=0
  while [ "$waited" -lt $((timeout * 10)) ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
    waited=$((waited + 1))
  done
  return 1
}

# harness_devserver_session_alive PID : true while a process of the dev server's session
# (started by setsid: its id is PID) is alive. Zombies do not count: they are dead and
# only wait for a parent to reap them.
harness_devserver_session_alive() {
  local stat
  for stat in $(ps -o stat= -s "$1" 2>/dev/null); do
    [ "${stat#Z}" != "$stat" ] || return 0
  done
  return 1
}

# harness_devserver_stop PID : stop the dev server's whole process group: TERM, then KILL
# after 2 s. What is waited for is every process of it, not PID: the outer bubblewrap
# exits at once, while a server that handles TERM (drains, or ignores it) lives on inside
# (harness_reap waits after the KILL too).
harness_devserver_stop() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  harness_reap "$pid" harness_devserver_session_alive "$pid"
}
