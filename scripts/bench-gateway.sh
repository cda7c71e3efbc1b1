#!/usr/bin/env bash
# Benchmarks publishing through the gateway (release host, release components, the real
# spin.toml): 1 KiB structured CloudEvents (application/cloudevents+json), each request with a
# unique `id` (so every one is stored, none is a duplicate), with one of our access tokens, at
# concurrency 1, 16 and 64. In the same run, the empty test component (tests/components/empty,
# served as in bench-host.sh) gets the same requests at the same concurrencies, for the ratio.
#
# Prints wrk's output (--latency) for each run, then a summary: requests/s, accepted events/s
# (answers 202), p50/p75/p90/p99, the answers that were not the expected status (202 for the
# gateway, 200 for the empty component) and socket errors, the gateway/empty ratio, and the
# gateway's .wasm size.
#
#   ./scripts/bench-gateway.sh
#   DURATION=5s ./scripts/bench-gateway.sh       # shorter runs (default 15s)
#   CONCURRENCY="1 16" ./scripts/bench-gateway.sh
#   THREADS=4 ./scripts/bench-gateway.sh         # wrk threads for concurrency > 1 (default: min(4, nproc))
#   EVENTPLANE_BIN=/tmp/eventplane-old ./scripts/bench-gateway.sh   # serve with another host build (A/B)
#   TIMINGS=0 ./scripts/bench-gateway.sh         # no in-host timings (needed for host builds without them)
#
# The gateway's server runs with EVENTPLANE_TIMINGS (crates/host/src/timings.rs): after each
# gateway run the summary also shows how long the publishes took inside the host (to the
# response head, of which waiting for store writes; waiting for durability; both together).
# What wrk measures beyond that is the time requests waited outside the handler, mostly for a
# core on a busy machine.
set -euo pipefail
# Servers run as deployed, without backtraces: with RUST_BACKTRACE set, wasmtime captures one
# for every error it formats, and it formats some on every request.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
duration=${DURATION:-15s}
port=${PORT:-3997}
empty_port=$((port + 1))
concurrency=${CONCURRENCY:-1 16 64}
cpus=$(nproc 2>/dev/null || echo 2)
threads=${THREADS:-$((cpus < 4 ? cpus : 4))}
admin=bench-admin-token

for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> installing $tool"
    apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
  fi
done

rustup target add wasm32-wasip2 >/dev/null
echo "==> building (release)"
cargo build --release -p eventplane-host
cargo build --release --target wasm32-wasip2 -p eventplane-registry -p eventplane-fetcher \
  -p eventplane-gateway -p eventplane-dispatcher -p eventplane-test-empty
gateway_wasm=target/wasm32-wasip2/release/eventplane_gateway.wasm

work=$(mktemp -d)
trap 'kill "${server:-}" "${empty_server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# ---- the application, on a fresh state directory ---------------------------------------------
timings=${TIMINGS:-1}
timings_env=()
[ "$timings" = 0 ] || timings_env=(EVENTPLANE_TIMINGS=86400) # reported on SIGUSR1, per run
env "${timings_env[@]}" SPIN_VARIABLE_ADMIN_TOKEN=$admin SPIN_VARIABLE_TOKEN_TTL_SECONDS=3600 \
  ${EVENTPLANE_BIN:-./target/release/eventplane} up --listen "127.0.0.1:$port" --manifest spin.toml \
  --state-dir "$work/.spin" --cache-dir "$PWD/target/eventplane-bench-cache" >"$work/server.log" 2>&1 &
server=$!

# ---- the empty component, as in bench-host.sh -------------------------------------------------
cat >"$work/empty.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench-empty"
[[trigger.http]]
route = "/..."
component = "empty"
[component.empty]
source = "$PWD/target/wasm32-wasip2/release/eventplane_test_empty.wasm"
TOML
./target/release/eventplane up --listen "127.0.0.1:$empty_port" --manifest "$work/empty.toml" \
  --state-dir "$work/.spin-empty" --cache-dir "$PWD/target/eventplane-bench-cache" >"$work/empty.log" 2>&1 &
empty_server=$!

wait_for() { # url log
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$server" 2>/dev/null && kill -0 "$empty_server" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not start:"; cat "$2"; exit 1
}
wait_for "http://127.0.0.1:$port/graphql" "$work/server.log"
wait_for "http://127.0.0.1:$empty_port/" "$work/empty.log"

# ---- register the application, its event API, credentials; get a token -----------------------
echo "==> registering application bench-shop"
python3 - "$port" "$admin" "$work" <<'PY'
import base64, json, pathlib, sys, urllib.request, urllib.parse

port, admin, work = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
base = f"http://127.0.0.1:{port}"

def post(path, body, headers):
    request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")

def gql(query, variables):
    status, body = post("/graphql", json.dumps({"query": query, "variables": variables}).encode(),
                        {"authorization": f"Bearer {admin}", "content-type": "application/json"})
    if status != 200 or body.get("errors"):
        sys.exit(f"GraphQL failed ({status}): {body}")
    return body["data"]

spec = {
    "asyncapi": "2.6.0",
    "info": {"title": "Bench shop", "version": "1.0.0"},
    "channels": {"order.created.v1": {"subscribe": {"message": {"payload": {
        "type": "object", "required": ["orderId"],
        "properties": {"orderId": {"type": "string"}, "total": {"type": "number"},
                       "currency": {"type": "string", "enum": ["EUR", "USD"]},
                       "note": {"type": "string"}}}}}}},
}
app = gql("mutation { createApplication(in: {name: \"bench-shop\"}) { id } }", {})["createApplication"]["id"]
gql("mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
    {"app": app, "in": {"name": "orders", "spec": {"data": json.dumps(spec), "eventSpecType": "ASYNC_API", "format": "JSON"}}})
creds = gql("mutation($app: ID!) { requestClientCredentialsForApplication(applicationID: $app) { clientId clientSecret } }",
            {"app": app})["requestClientCredentialsForApplication"]
basic = base64.b64encode(f"{creds['clientId']}:{creds['clientSecret']}".encode()).decode()
status, token = post("/oauth/token", b"grant_type=client_credentials",
                     {"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"})
if status != 200:
    sys.exit(f"token request failed ({status}): {token}")
(work / "token").write_text(token["access_token"])

# A 1 KiB event (with an id of the length the benchmark generates), split around its id.
marker = "@@ID@@"
def event(pad):
    return json.dumps({"specversion": "1.0", "id": marker, "source": "/applications/bench-shop",
                       "type": "order.created.v1", "time": "2025-06-01T12:00:00Z",
                       "datacontenttype": "application/json",
                       "data": {"orderId": "ord-12345", "total": 99.5, "currency": "EUR", "note": "x" * pad}},
                      separators=(",", ":"))
typical_id = "r1-c16-1-1000000"
pad = 1024 - len(event(0).replace(marker, typical_id))
head, tail = event(pad).split(marker)
assert len(head) + len(typical_id) + len(tail) == 1024
(work / "head").write_text(head)
(work / "tail").write_text(tail)
print(f"event: {len(head) + len(typical_id) + len(tail)} bytes")
PY
token=$(cat "$work/token")

# A sanity check: one event is accepted (202), its repeat is a duplicate.
check_id="check-$(date +%s)"
body="$(cat "$work/head")$check_id$(cat "$work/tail")"
for expected in false true; do
  answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/events/publish" \
    -H "authorization: Bearer $token" -H 'content-type: application/cloudevents+json' --data-binary "$body")
  echo "check: $answer"
  case "$answer" in
    *"\"duplicate\":$expected"*" 202") ;;
    *) echo "unexpected answer (expected 202 with duplicate $expected); server log:"; tail -50 "$work/server.log"; exit 1 ;;
  esac
done

# ---- the wrk script ------------------------------------------------------------------------------
# Each thread numbers its requests; ids are <run>-<thread>-<n>, unique across runs and threads.
# response() counts answers whose status is not the expected one; done() prints one RESULT line.
cat >"$work/publish.lua" <<LUA
local head = io.open("$work/head", "rb"):read("*a")
local tail = io.open("$work/tail", "rb"):read("*a")
local headers = {
  ["content-type"] = "application/cloudevents+json",
  ["authorization"] = "Bearer $token",
}
local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  run = args[1]
  label = args[2]
  expected = tonumber(args[3])
  n = 0
  unexpected = 0
end

function request()
  n = n + 1
  local body = head .. run .. "-" .. tid .. "-" .. n .. tail
  return wrk.format("POST", "/events/publish", headers, body)
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
    if unexpected <= 3 then
      io.stderr:write("unexpected " .. status .. ": " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

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
LUA

results="$work/results"
: >"$results"
bench() { # label url expected-status concurrency run-id
  local label=$1 url=$2 expected=$3 c=$4 run=$5 t
  t=$((c < threads ? c : threads))
  echo "==> $label, concurrency $c ($t wrk threads), $duration"
  in_host=$([ "$label" = gateway ] && [ "$timings" != 0 ] && echo yes || true)
  if [ -n "$in_host" ]; then kill -USR1 "$server"; sleep 0.3; fi # a new interval
  wrk -t"$t" -c"$c" -d"$duration" --latency -s "$work/publish.lua" "$url" -- "$run" "$label" "$expected" \
    | tee "$work/out" | { grep -v '^RESULT' || true; }
  grep '^RESULT' "$work/out" | sed "s/^RESULT [^ ]* [^ ]*/RESULT $label $c/" >>"$results"
  if [ -n "$in_host" ]; then
    kill -USR1 "$server"; sleep 0.5
    grep '^timings gateway:' "$work/server.log" | tail -n 1 | sed "s/^timings gateway:/concurrency $c:/" >>"$work/in-host"
  fi
}

echo "==> warm-up"
wrk -t1 -c1 -d2s -s "$work/publish.lua" "http://127.0.0.1:$port/events/publish" -- "warm" gateway 202 >/dev/null
wrk -t1 -c1 -d2s -s "$work/publish.lua" "http://127.0.0.1:$empty_port/events/publish" -- "warm" empty 200 >/dev/null

stamp=$(date +%s)
for c in $concurrency; do
  bench gateway "http://127.0.0.1:$port/events/publish" 202 "$c" "g$stamp-c$c"
  bench empty "http://127.0.0.1:$empty_port/events/publish" 200 "$c" "e$stamp-c$c"
done

echo
echo "==> summary (latency in ms; 'unexpected' = answers other than 202 for the gateway, 200 for empty)"
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) != 12:
        continue
    label, c = f[1], int(f[2])
    rps, okps, p50, p75, p90, p99 = map(float, f[3:9])
    unexpected, non2xx, socket = (int(x) for x in f[9:12])
    rows[(label, c)] = (rps, okps, p50, p75, p90, p99, unexpected, non2xx, socket)
print(f"{'component':<9} {'conc':>4} {'req/s':>9} {'accepted/s':>10} {'p50':>7} {'p75':>7} {'p90':>7} {'p99':>7} {'unexpected':>10} {'non-2xx':>7} {'sock err':>8}")
for (label, c), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != "gateway")):
    print(f"{label:<9} {c:>4} {r[0]:>9.0f} {r[1]:>10.0f} {r[2]:>7.2f} {r[3]:>7.2f} {r[4]:>7.2f} {r[5]:>7.2f} {r[6]:>10} {r[7]:>7} {r[8]:>8}")
print()
for c in sorted({c for (_, c) in rows}):
    g, e = rows.get(("gateway", c)), rows.get(("empty", c))
    if g and e and e[0] > 0:
        print(f"concurrency {c}: gateway accepted/s = {g[1] / e[0]:.1%} of the empty component's req/s "
              f"(p99 {g[5]:.2f} ms vs {e[5]:.2f} ms)")
PY
if [ -s "$work/in-host" ]; then
  echo
  echo "==> the gateway's publishes inside the host (ms; see crates/host/src/timings.rs)"
  sed 's/; /\n    /g' "$work/in-host"
fi
echo
ls -l "$gateway_wasm" | awk '{printf "gateway .wasm: %d bytes (%.0f KiB)\n", $5, $5 / 1024}'
