#!/usr/bin/env bats
# The worker's dev server: started in its own process group, probed, stopped whole.
load test_helper
bats_require_minimum_version 1.5.0

setup() {
  setup_tmp
  make_repo
}
teardown() { [ -z "${PID:-}" ] || harness_devserver_stop "$PID"; teardown_tmp; }

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

@test "a port something else listens on is taken; a free one is not" {
  PORT_N=$(free_port)
  run ! harness_port_taken "$PORT_N"
  PID=$(harness_devserver_start "$TMP/repo" "$PORT_N" "node -e \"require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT,'127.0.0.1')\"" "$TMP/dev.log")
  harness_devserver_wait "$PORT_N" "$PID" 20
  harness_port_taken "$PORT_N"
}

@test "start, wait until it listens, stop the whole group" {
  PORT_N=$(free_port)
  PID=$(harness_devserver_start "$TMP/repo" "$PORT_N" "node -e \"require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT,'127.0.0.1')\"" "$TMP/dev.log")
  harness_devserver_wait "$PORT_N" "$PID" 20
  harness_devserver_stop "$PID"
  run ! harness_devserver_session_alive "$PID"
  run ! bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$PORT_N"
  PID=""
}

@test "stop ends a server that ignores TERM: its whole group, not only the process started" {
  PORT_N=$(free_port)
  PID=$(harness_devserver_start "$TMP/repo" "$PORT_N" "node -e \"process.on('SIGTERM',()=>{});require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT,'127.0.0.1')\"" "$TMP/dev.log")
  harness_devserver_wait "$PORT_N" "$PID" 20
  harness_devserver_stop "$PID"
  run ! harness_devserver_session_alive "$PID"
  run ! bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$PORT_N"
  PID=""
}

@test "wait fails fast when the server dies" {
  PID=$(harness_devserver_start "$TMP/repo" 1 "exit 3" "$TMP/dev.log")
  run harness_devserver_wait 1 "$PID" 20
  [ "$status" -ne 0 ]
  PID=""
}

@test "outside a git repository it does not start (its git data could not be made read-only), and says why" {
  mkdir "$TMP/plain"
  export GIT_CEILING_DIRECTORIES=$TMP
  PID=$(harness_devserver_start "$TMP/plain" 1 "echo STARTED" "$TMP/dev.log")
  run harness_devserver_wait 1 "$PID" 20
  [ "$status" -ne 0 ]
  grep -q 'not in a git repository; the dev server does not start' "$TMP/dev.log"
  run grep -c STARTED "$TMP/dev.log"
  [ "$output" = 0 ]
  PID=""
}
