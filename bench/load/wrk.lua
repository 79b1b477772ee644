-- wrk script for bench/run.sh:  wrk ... -s wrk.lua URL -- BODY_FILE|- [BEARER_KEY]
-- BODY_FILE: POST it as JSON; "-": plain GET. BEARER_KEY: sent as Authorization: Bearer KEY.
-- A body containing __VARY__ gets a new number there on every request (a loop whose last message is new each step).
-- done() prints one line, "BENCH_RESULT key=value ...", latencies in microseconds.
function init(args)
  if args[1] and args[1] ~= "-" then
    local file = assert(io.open(args[1], "rb"))
    wrk.body = file:read("*a")
    file:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    local at = wrk.body:find("__VARY__", 1, true)
    if at then
      head, tail = wrk.body:sub(1, at - 1), wrk.body:sub(at + 8)
    end
  end
  if args[2] and args[2] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
  end
end

counter = 0
function request()
  if not head then
    return wrk.format()
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d seconds=%.3f rps=%.1f mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d"
      .. " connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
