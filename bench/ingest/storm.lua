-- bench/ingest's alert storm for wrk: the same request as run.ts's body(): one Grafana
-- webhook with one firing alert whose URL, message and fingerprint carry a fresh number.
-- Arguments (after --): first number, distinct errors, wrk threads. On exit it prints one
-- JSON line (prefixed "wrk-result ") that run.ts reads.
local thread_no = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

local function base36(n)
  local digits, s = "0123456789abcdefghijklmnopqrstuvwxyz", ""
  repeat
    local d = n % 36
    s = digits:sub(d + 1, d + 1) .. s
    n = math.floor(n / 36)
  until n == 0
  return s
end

local errors = {
  function(n) return string.format("TypeError: Cannot read properties of undefined (reading 'owner') for pet %d", n) end,
  function(n) return string.format("Error: payment %d rejected: card ending %d declined", n, 1000 + n % 9000) end,
  function(n) return string.format("RangeError: order total %d.50 exceeds limit for account acct_%s%d", n, base36(n), n % 10) end,
  function(n) return string.format("Error: connect ECONNREFUSED 10.0.%d.%d:5432", n % 255, math.floor(n / 256) % 255) end,
  function(n) return string.format("SyntaxError: Unexpected token < in JSON at position %d", n) end,
  function(n) return string.format("Error: timeout after %d ms waiting for lock on invoice %d", n, n * 7) end,
}

function init(args)
  local first = tonumber(args[1] or "0")
  fingerprints = tonumber(args[2] or "5")
  step = tonumber(args[3] or "1")
  n = first + tid
  sent = 0
  -- 2026-11-21T00:00:00Z, as run.ts's Date.UTC(2026, 10, 21)
  base = 1795219200
end

function request()
  local kind = n % fingerprints
  local ms = n % 1000
  local body = string.format(
    '{"receiver":"bugbot","status":"firing","version":"1","groupKey":"{}:{alertname=\\"E%d\\"}","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"E%d","service":"petstore","route":"/api/pets/%d","method":"GET"},' ..
    '"annotations":{"summary":"errors in petstore (%d)","message":"%s"},' ..
    '"startsAt":"%s.%03dZ","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%016x","values":{"B":1,"C":1}}]}',
    kind, kind, n, kind, errors[kind % #errors + 1](n), os.date("!%Y-%m-%dT%H:%M:%S", base + math.floor(n / 1000)), ms, n)
  n = n + step
  sent = sent + 1
  return wrk.format("POST", "/triggers/grafana", { ["content-type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local total_sent = 0
  for _, t in ipairs(threads) do total_sent = total_sent + t:get("sent") end
  io.write(string.format(
    'wrk-result {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"sent":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, total_sent, latency:percentile(50), latency:percentile(99)))
end
