#!/usr/bin/env bash
# Benchmarks the registry through the host over HTTP (release build), at concurrency 1, 10 s each:
#   1. the query application(id){ eventAPIs { data { id spec { data } events { name } } } }
#      on an application with 10 event APIs;
#   2. addEventAPI with a 50 KB AsyncAPI spec;
#   3. refetchEventAPISpec of a 50 KB spec served by a local HTTP server (python's http.server):
#      the fetch latency, registry -> fetcher (service chaining) -> server and back.
# Prints wrk's latency distribution (p50, p75, p90, p99) and the registry's .wasm size.
set -euo pipefail
# Servers run as deployed, without backtraces: with RUST_BACKTRACE set, wasmtime captures one
# for every error it formats, and it formats some on every request.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
port=${PORT:-3998}
token=bench-token

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -p eventplane-host
./scripts/build-components.sh

work=$(mktemp -d)
trap 'kill "$server" "${spec_server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
spec_port=$((port + 1))
SPIN_VARIABLE_FETCH_ALLOWED_HOSTS="http://127.0.0.1:$spec_port" \
SPIN_VARIABLE_ADMIN_TOKEN=$token ./target/release/eventplane up --listen "127.0.0.1:$port" \
  --state-dir "$work/.spin" --cache-dir "$PWD/target/eventplane-bench-cache" >"$work/server.log" 2>&1 &
server=$!
url="http://127.0.0.1:$port/graphql"
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$port/.well-known/spin/health" && break
  sleep 0.1
done

# Request bodies, built by python so that the spec is embedded as a proper JSON string.
python3 - "$work" <<'PY'
import json, sys, pathlib
work = pathlib.Path(sys.argv[1])
def spec(n_channels, pad):
    channels = {}
    for i in range(n_channels):
        channels[f"shop.order.event{i}.v1"] = {"subscribe": {"message": {
            "name": f"event{i}", "summary": f"Order event {i}",
            "payload": {"type": "object", "required": ["orderId"], "properties": {
                "orderId": {"type": "string", "description": pad},
                "total": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR", "USD"]}}}}}}
    return json.dumps({"asyncapi": "2.6.0", "info": {"title": "Shop events", "version": "1.0.0"}, "channels": channels})
small = spec(5, "x" * 20)
big = spec(60, "y" * 600)
assert 45_000 <= len(big) <= 55_000, len(big)
(work / "small-spec.json").write_text(small)
(work / "www").mkdir()
(work / "www" / "spec.json").write_text(big)
def add(app_id, data):
    return json.dumps({"query": "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
                       "variables": {"app": app_id, "in": {"name": "orders", "spec": {"data": data, "eventSpecType": "ASYNC_API", "format": "JSON"}}}})
(work / "add.tmpl").write_text(add("APP_ID", big))
(work / "add-small.tmpl").write_text(add("APP_ID", small))
print(f"50 KB spec: {len(big)} bytes")
PY

create() {
  curl -sf "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"query\":\"mutation { createApplication(in: {name: \\\"$1\\\"}) { id } }\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["createApplication"]["id"])'
}
read_app=$(create bench-read)
write_app=$(create bench-write)
sed "s/APP_ID/$read_app/" "$work/add-small.tmpl" >"$work/add-small.json"
for _ in $(seq 1 10); do
  curl -sf "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    --data-binary "@$work/add-small.json" >/dev/null
done
sed "s/APP_ID/$write_app/" "$work/add.tmpl" >"$work/add.json"
python3 -c 'import json,sys; print(json.dumps({"query": "{ application(id: \"%s\") { eventAPIs { data { id spec { data } events { name } } } } }" % sys.argv[1]}))' \
  "$read_app" >"$work/query.json"

lua() { # body file -> wrk script
  cat <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $token"
local f = io.open("$1", "rb"); wrk.body = f:read("*a"); f:close()
LUA
}
lua "$work/query.json" >"$work/query.lua"
lua "$work/add.json" >"$work/add.lua"

check=$(curl -s "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' --data-binary "@$work/query.json" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["data"]["application"]["eventAPIs"]["data"]))')
echo "application has $check event APIs"

echo "==> query application(id){ eventAPIs { data { id spec { data } events { name } } } }, concurrency 1"
wrk -t1 -c1 -d2s -s "$work/query.lua" "$url" >/dev/null
wrk -t1 -c1 -d"$duration" --latency -s "$work/query.lua" "$url"
echo "==> addEventAPI with a 50 KB spec, concurrency 1"
wrk -t1 -c1 -d"$duration" --latency -s "$work/add.lua" "$url"
added=$(curl -s "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"query\":\"{ application(id: \\\"$write_app\\\") { eventAPIs { totalCount } } }\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["application"]["eventAPIs"]["totalCount"])')
echo "addEventAPI stored $added event APIs (each request must add one)"
echo "==> refetchEventAPISpec of a 50 KB spec from a local server, concurrency 1"
python3 -m http.server "$spec_port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
spec_server=$!
fetch_app=$(create bench-fetch)
sleep 0.5
api=$(curl -sf "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"query\":\"mutation { addEventAPI(applicationID: \\\"$fetch_app\\\", in: {name: \\\"remote\\\", spec: {eventSpecType: ASYNC_API, fetchRequest: {url: \\\"http://127.0.0.1:$spec_port/spec.json\\\"}}}) { id events { name } spec { fetchRequest { status { condition message } } } } }\"}")
echo "$api" | python3 -c 'import json,sys; a=json.load(sys.stdin)["data"]["addEventAPI"]; s=a["spec"]["fetchRequest"]["status"]; print("fetched:", s["condition"], s["message"] or "", len(a["events"]), "event types")'
api_id=$(echo "$api" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["addEventAPI"]["id"])')
python3 -c 'import json,sys; print(json.dumps({"query": "mutation { refetchEventAPISpec(eventID: \"%s\") { fetchRequest { status { condition } } } }" % sys.argv[1]}))' \
  "$api_id" >"$work/refetch.json"
lua "$work/refetch.json" >"$work/refetch.lua"
wrk -t1 -c1 -d"$duration" --latency -s "$work/refetch.lua" "$url"
curl -s "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' --data-binary "@$work/refetch.json"; echo
echo "==> registry and fetcher component sizes"
ls -l target/wasm32-wasip2/release/eventplane_fetcher.wasm | awk '{print $5 " bytes (fetcher)"}'
ls -l target/wasm32-wasip2/release/eventplane_registry.wasm | awk '{print $5 " bytes"}'
