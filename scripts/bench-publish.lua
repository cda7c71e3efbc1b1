-- wrk script of the publish benchmarks (scripts/bench-gateway.sh, scripts/bench-stores.sh):
-- 1 KiB structured CloudEvents, each with a unique id, with an access token of ours.
--
-- Environment: BENCH_WORK, the directory holding `head` and `tail` (the event's JSON before
-- and after its id) and `token` (written by scripts/bench-register.py); BENCH_TARGETS
-- (optional), several "host:port" separated by spaces: wrk's threads connect to them in turn,
-- so the requests are spread over several servers (the URL's path is used for all).
-- Arguments after `--`: run id (makes the ids unique per run), label, expected status.
local work = os.getenv("BENCH_WORK")
local function slurp(name)
  return io.open(work .. "/" .. name, "rb"):read("*a")
end
local head, tail = slurp("head"), slurp("tail")
local function bearer(name)
  return "Bearer " .. slurp(name):gsub("%s+$", "")
end
local headers = {
  ["content-type"] = "application/cloudevents+json",
  ["authorization"] = bearer("token"),
}
local targets = {}
for target in (os.getenv("BENCH_TARGETS") or ""):gmatch("%S+") do
  local host, port = target:match("^(.*):(%d+)$")
  table.insert(targets, wrk.lookup(host, port)[1])
end
-- With BENCH_TOKEN_PER_TARGET set, the instances share no store, so each has its own
-- application and token: target N's is in `token-N`.
local token_per_target = (os.getenv("BENCH_TOKEN_PER_TARGET") or "") ~= ""
local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  if #targets > 0 then
    local target = (next_thread - 1) % #targets + 1
    thread.addr = targets[target]
    thread:set("target", target)
  end
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  if token_per_target and target then
    headers["authorization"] = bearer("token-" .. target)
  end
  run = args[1]
  label = args[2]
  expected = tonumber(args[3])
  n = 0
  unexpected = 0
end

function request()
  n = n + 1
  local body = head .. run .. "-" .. tid .. "-" .. n .. tail
  return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
    if unexpected <= 3 then
      io.stderr:write("unexpected " .. status .. ": " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

-- One line for the scripts to collect: RESULT - 0 req/s accepted/s p50 p75 p90 p99 (ms)
-- unexpected non-2xx socket-errors.
function done(summary, latency, requests)
  local unexpected_total = 0
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + (thread:get("unexpected") or 0)
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  -- accepted: answered with the expected status (socket errors are not counted as requests)
  local ok = summary.requests - unexpected_total
  io.write(string.format("RESULT - 0 %.1f %.1f %.2f %.2f %.2f %.2f %d %d %d\n",
    summary.requests / seconds, ok / seconds,
    latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    unexpected_total, e.status, socket_errors))
end
