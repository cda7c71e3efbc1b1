#!/usr/bin/env bash
# Benchmarks spec registration through `eventplane up` (release build), or real Spin with
# RUNTIME=spin (`spin` from SPIN_BIN or PATH), 30 sequential runs each, measured by the client
# (p50, p99, max):
#   1. addEventAPI with a 500 KB AsyncAPI document given inline (parse, validate, catalog, store);
#   2. addEventAPI with a fetchRequest for a document split across 20 files, served by a local
#      HTTP server (python's http.server): registry -> fetcher -> 20 fetches -> bundle -> store.
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
runs=${RUNS:-30}
port=${PORT:-3996}
spec_port=$((port + 1))
token=bench-token

rustup target add wasm32-wasip2 >/dev/null
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p eventplane-host
  ./scripts/build-components.sh
fi

work=$(mktemp -d)
trap 'kill "$server" "${spec_server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
export SPIN_VARIABLE_FETCH_ALLOWED_HOSTS="http://127.0.0.1:$spec_port" SPIN_VARIABLE_ADMIN_TOKEN=$token
case "${RUNTIME:-eventplane}" in
  spin)
    "${SPIN_BIN:-spin}" up -f spin.toml --listen "127.0.0.1:$port" --state-dir "$work/.spin" \
      >"$work/server.log" 2>&1 &
    ;;
  eventplane)
    ./target/release/eventplane up --listen "127.0.0.1:$port" --state-dir "$work/.spin" \
      --cache-dir "$PWD/target/eventplane-bench-cache" >"$work/server.log" 2>&1 &
    ;;
  *) echo "RUNTIME must be eventplane or spin"; exit 1 ;;
esac
server=$!
echo "==> runtime: ${RUNTIME:-eventplane}"
python3 -m http.server "$spec_port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
spec_server=$!
for _ in $(seq 1 3000); do
  curl -s -o /dev/null "http://127.0.0.1:$port/.well-known/spin/health" && break
  sleep 0.1
done

python3 - "$port" "$spec_port" "$token" "$work" "$runs" <<'PY'
import json, pathlib, statistics, sys, time, urllib.request
port, spec_port, token, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4]), int(sys.argv[5])
url = f"http://127.0.0.1:{port}/graphql"

def gql(query, variables):
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        sys.exit(f"GraphQL failed: {answer}")
    return answer["data"]

ADD = """mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) {
  id events { name } spec { fetchRequest { status { condition message } } } } }"""
app = gql('mutation { createApplication(in: {name: "bench-split"}) { id } }', {})["createApplication"]["id"]

def channel(i, pad):
    return {"subscribe": {"message": {"name": f"event{i}", "summary": f"Order event {i}", "payload": {
        "type": "object", "required": ["orderId"], "properties": {
            "orderId": {"type": "string", "description": pad}, "total": {"type": "number"}}}}}}

# 1. A 500 KB document, inline.
big = json.dumps({"asyncapi": "2.6.0", "info": {"title": "Big", "version": "1"},
                  "channels": {f"shop.order.event{i}.v1": channel(i, "y" * 1600) for i in range(270)}})
assert 490_000 <= len(big) <= 520_000, len(big)

# 2. A document split across 20 files: the root, 18 message files and one shared schema file.
www = work / "www"
(www / "common").mkdir()
(www / "apis").mkdir()
(www / "common" / "schemas.yaml").write_text("Money: {type: number, minimum: 0}\nId: {type: string}\n")
channels = {}
for i in range(18):
    (www / "common" / f"message{i}.yaml").write_text(
        f"summary: Order event {i}\npayload:\n  type: object\n  properties:\n"
        f"    id: {{$ref: 'schemas.yaml#/Id'}}\n    total: {{$ref: 'schemas.yaml#/Money'}}\n"
        f"    note: {{type: string, description: '{'z' * 1000}'}}\n")
    channels[f"shop.order.event{i}.v1"] = {"subscribe": {"message": {"$ref": f"../common/message{i}.yaml"}}}
(www / "apis" / "shop.json").write_text(json.dumps(
    {"asyncapi": "2.6.0", "info": {"title": "Split", "version": "1"}, "channels": channels}))
split_bytes = sum(p.stat().st_size for p in www.rglob("*") if p.is_file())
files = sum(1 for p in www.rglob("*") if p.is_file())

def measure(name, input_):
    times = []
    for _ in range(runs + 2):
        started = time.perf_counter()
        api = gql(ADD, {"app": app, "in": input_})["addEventAPI"]
        times.append((time.perf_counter() - started) * 1000)
        status = api["spec"]["fetchRequest"]
        if status and status["status"]["condition"] != "SUCCEEDED":
            sys.exit(f"{name}: {status}")
    times = sorted(times[2:])  # the first two warm the components up
    p = lambda q: times[min(len(times) - 1, round(q * (len(times) - 1)))]
    print(f"{name}: {len(api['events'])} event types; {runs} runs: p50 {p(0.5):.1f} ms, "
          f"p99 {p(0.99):.1f} ms, max {times[-1]:.1f} ms, mean {statistics.mean(times):.1f} ms")

measure(f"addEventAPI, {len(big)} bytes inline",
        {"name": "big", "spec": {"eventSpecType": "ASYNC_API", "format": "JSON", "data": big}})
measure(f"addEventAPI, fetchRequest for {files} files ({split_bytes} bytes)",
        {"name": "split", "spec": {"eventSpecType": "ASYNC_API",
                                   "fetchRequest": {"url": f"http://127.0.0.1:{spec_port}/apis/shop.json"}}})
PY
