-- wrk script of the serving benchmark (bench/serving.py).
--
-- Usage: wrk ... -s bench/rotate_requests.lua URL -- REQUESTS.tsv NTHREADS
--
-- REQUESTS.tsv holds one "user id<TAB>telemetry value" per line, each telemetry value
-- with its own (sid, seq).  Thread k of NTHREADS sends lines k, k+NTHREADS, ... in
-- order, each once: the sidecar rejects a repeated (sid, seq) as replayed, so the file
-- must be longer than the run; if it runs out the thread starts over and counts it in
-- "wrapped" (reported, so a too-short file is visible).  done() prints one line
-- "WRK_JSON {...}" that the benchmark parses.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  requests = {}
  wrapped = 0
  pos = 0
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local user, telemetry = line:match("^([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("GET", "/api/ping",
        {["x-user-id"] = user, ["x-bioshard-telemetry"] = telemetry})
    end
    i = i + 1
  end
end

function request()
  pos = pos + 1
  if pos > #requests then
    pos = 1
    wrapped = wrapped + 1
  end
  return requests[pos]
end

function done(summary, latency, requests)
  local total_wrapped = 0
  for _, thread in ipairs(threads) do
    total_wrapped = total_wrapped + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"mean_us": %.1f, "p50_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, ' ..
    '"wrapped": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, total_wrapped))
end
