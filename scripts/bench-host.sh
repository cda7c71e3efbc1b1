#!/usr/bin/env bash
# Benchmarks the host alone: an empty component behind one `/...` route, served by a release
# build of `eventplane`, loaded by wrk over keep-alive connections. Prints requests/s and the
# latency distribution (p50, p75, p90, p99) at concurrency 1 and 32, 10 s each.
#
#   ./scripts/bench-host.sh            # both runs
#   DURATION=30s ./scripts/bench-host.sh
set -euo pipefail
# Servers run as deployed, without backtraces: with RUST_BACKTRACE set, wasmtime captures one
# for every error it formats, and it formats some on every request.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
port=${PORT:-3999}

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

rustup target add wasm32-wasip2 >/dev/null
echo "==> building (release)"
cargo build --release -p eventplane-host
./scripts/build-components.sh

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "empty"
[component.empty]
source = "$PWD/target/wasm32-wasip2/release/eventplane_test_empty.wasm"
TOML

./target/release/eventplane up --listen "127.0.0.1:$port" --manifest "$work/spin.toml" \
  --state-dir "$work/.spin" --cache-dir "$PWD/target/eventplane-bench-cache" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/" >/dev/null || { cat "$work/server.log"; exit 1; }

echo "==> warm-up"
wrk -t1 -c1 -d2s "http://127.0.0.1:$port/" >/dev/null
echo "==> concurrency 1"
wrk -t1 -c1 -d"$duration" --latency "http://127.0.0.1:$port/"
echo "==> concurrency 32"
wrk -t2 -c32 -d"$duration" --latency "http://127.0.0.1:$port/"
