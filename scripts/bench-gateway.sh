#!/usr/bin/env bash
# Benchmarks publishing through the gateway (release components, the real spin.toml) on each
# runtime in turn, in one run: real Spin (`spin up` from SPIN_BIN or PATH, its default SQLite
# store; skipped, saying so, where it is not found) and eventplane's host (`eventplane up`,
# release build). 1 KiB structured CloudEvents (application/cloudevents+json), each request with
# a unique `id` (so every one is stored, none is a duplicate), with one of our access tokens, at
# concurrency 1, 16 and 64. On the same runtime and in the same run:
# - the empty test component (tests/components/empty) gets the same requests, for the ratio;
# - the store-operations component (tests/components/storeops) makes exactly the store
#   operations one publish makes (STORE_OPS; counted with the host's timings, see the README)
#   and nothing else: the store's ceiling for this publish, for the second ratio.
#
# Prints wrk's output (--latency) for each run, then a summary per runtime: requests/s,
# accepted events/s (answers 202), p50/p75/p90/p99, the answers that were not the expected
# status (202 for the gateway, 200 for the others) and socket errors, the ratios, and the
# gateway's .wasm size.
#
#   ./scripts/bench-gateway.sh
#   RUNTIMES=spin ./scripts/bench-gateway.sh     # one runtime (default: "spin eventplane")
#   DURATION=5s ./scripts/bench-gateway.sh       # shorter runs (default 15s)
#   CONCURRENCY="1 16" ./scripts/bench-gateway.sh
#   THREADS=4 ./scripts/bench-gateway.sh         # wrk threads for concurrency > 1 (default: min(4, nproc))
#   EVENTPLANE_BIN=/tmp/eventplane-old ./scripts/bench-gateway.sh   # serve with another host build (A/B)
#   TIMINGS=0 ./scripts/bench-gateway.sh         # no in-host timings (needed for host builds without them)
#
# On eventplane's host the gateway's server runs with EVENTPLANE_TIMINGS
# (crates/host/src/timings.rs): after each gateway run the summary also shows how long the
# publishes took inside the host and the store operations each made.
set -euo pipefail
# Servers run as deployed, without backtraces: with RUST_BACKTRACE set, wasmtime captures one
# for every error it formats, and it formats some on every request.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
duration=${DURATION:-15s}
base_port=${PORT:-3990}
concurrency=${CONCURRENCY:-1 16 64}
runtimes=${RUNTIMES:-spin eventplane}
cpus=$(nproc 2>/dev/null || echo 2)
threads=${THREADS:-$((cpus < 4 ? cpus : 4))}
admin=bench-admin-token
# The store operations of one publish (own token already verified, one event API, no
# subscription): reads of the signing key, the verified token, the application's name, record,
# event-API index and event API, and the source's marker; the event's claim (increment), the
# tenant's sequence (increment), the log entry with the record (one set-many); reads of the log
# cursor and the subscriptions index.
store_ops=${STORE_OPS:-get,get,get,get,get,get,get,incr,seq,setmany,get,get}

spin_bin=${SPIN_BIN:-$(command -v spin || true)}

rustup target add wasm32-wasip2 >/dev/null
echo "==> building (release)"
case " $runtimes " in *" eventplane "*) cargo build --release -p eventplane-host ;; esac
./scripts/build-components.sh
gateway_wasm=target/wasm32-wasip2/release/eventplane_gateway.wasm

work=$(mktemp -d)
source scripts/bench-lib.sh
trap 'stop_servers; rm -rf "$work"' EXIT

# A manifest serving one test component on every path.
test_manifest() { # name package-file -> path
  cat >"$work/$1.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench-$1"
[[trigger.http]]
route = "/..."
component = "$1"
[component.$1]
source = "$PWD/target/wasm32-wasip2/release/$2.wasm"
key_value_stores = ["default"]
TOML
  echo "$work/$1.toml"
}
empty_manifest=$(test_manifest empty eventplane_test_empty)
store_manifest=$(test_manifest storeops eventplane_test_storeops)



results="$work/results"
: >"$results"
bench() { # runtime label url expected-status concurrency run-id
  local runtime=$1 label=$2 url=$3 expected=$4 c=$5 run=$6 t
  t=$((c < threads ? c : threads))
  echo "==> $runtime: $label, concurrency $c ($t wrk threads), $duration"
  in_host=$([ "$label" = gateway ] && [ -n "$timed_server" ] && echo yes || true)
  if [ -n "$in_host" ]; then kill -USR1 "$timed_server"; sleep 0.3; fi # a new interval
  wrk -t"$t" -c"$c" -d"$duration" --latency -s scripts/bench-publish.lua "$url" -- "$run" "$label" "$expected" \
    | tee "$work/out" | { grep -v '^RESULT' || true; }
  grep '^RESULT' "$work/out" | sed "s/^RESULT [^ ]* [^ ]*/RESULT $runtime:$label $c/" >>"$results"
  if [ -n "$in_host" ]; then
    kill -USR1 "$timed_server"; sleep 0.5
    grep '^timings gateway:' "$work/eventplane-app.log" | tail -n 1 \
      | sed "s/^timings gateway:/concurrency $c:/" >>"$work/in-host"
  fi
}

port=$base_port
for runtime in $runtimes; do
  case "$runtime" in
    spin)
      if [ -z "$spin_bin" ]; then
        echo "==> spin: skipped (no spin on PATH or SPIN_BIN)"
        continue
      fi
      echo "==> spin: $("$spin_bin" --version)"
      ;;
    eventplane) echo "==> eventplane: $(${EVENTPLANE_BIN:-./target/release/eventplane} --version 2>/dev/null || echo eventplane)" ;;
    *) echo "unknown runtime $runtime: use spin or eventplane"; exit 1 ;;
  esac
  app_port=$port empty_port=$((port + 1)) store_port=$((port + 2))
  port=$((port + 3))
  timed_server=
  timings_env=()
  if [ "$runtime" = eventplane ] && [ "${TIMINGS:-1}" != 0 ]; then
    timings_env=(EVENTPLANE_TIMINGS=86400) # reported on SIGUSR1, per run
  fi
  start "$runtime" spin.toml "$app_port" "$work/$runtime-state" "$work/$runtime-app.log" \
    "${timings_env[@]}" SPIN_VARIABLE_ADMIN_TOKEN=$admin SPIN_VARIABLE_TOKEN_TTL_SECONDS=3600
  [ ${#timings_env[@]} -eq 0 ] || timed_server=${servers[-1]}
  start "$runtime" "$empty_manifest" "$empty_port" "$work/$runtime-empty" "$work/$runtime-empty.log"
  start "$runtime" "$store_manifest" "$store_port" "$work/$runtime-store" "$work/$runtime-store.log"

  echo "==> $runtime: registering application bench-shop"
  python3 scripts/bench-register.py "$app_port" "$admin" "$work"
  # A sanity check: one event is accepted (202), its repeat is a duplicate.
  check_id="check-$runtime-$(date +%s)"
  body="$(cat "$work/head")$check_id$(cat "$work/tail")"
  for expected in false true; do
    answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$app_port/events/publish" \
      -H "authorization: Bearer $(cat "$work/token")" -H 'content-type: application/cloudevents+json' \
      --data-binary "$body")
    echo "check: $answer"
    case "$answer" in
      *"\"duplicate\":$expected"*" 202") ;;
      *) echo "unexpected answer (expected 202 with duplicate $expected); server log:"
         tail -50 "$work/$runtime-app.log"; exit 1 ;;
    esac
  done

  echo "==> $runtime: warm-up"
  wrk -t1 -c1 -d2s -s scripts/bench-publish.lua "http://127.0.0.1:$app_port/events/publish" -- "warm-$runtime" gateway 202 >/dev/null
  wrk -t1 -c1 -d2s -s scripts/bench-publish.lua "http://127.0.0.1:$empty_port/events/publish" -- "warm-$runtime" empty 200 >/dev/null
  wrk -t1 -c1 -d2s -s scripts/bench-publish.lua "http://127.0.0.1:$store_port/$store_ops" -- "warm-$runtime" store 200 >/dev/null

  stamp=$(date +%s)
  for c in $concurrency; do
    bench "$runtime" gateway "http://127.0.0.1:$app_port/events/publish" 202 "$c" "g$runtime$stamp-c$c"
    bench "$runtime" empty "http://127.0.0.1:$empty_port/events/publish" 200 "$c" "e$runtime$stamp-c$c"
    bench "$runtime" store "http://127.0.0.1:$store_port/$store_ops" 200 "$c" "s$runtime$stamp-c$c"
  done
  stop_servers
done

echo
echo "==> summary (latency in ms; 'unexpected' = answers other than 202 for the gateway, 200 for the others)"
echo "    store = the store operations of one publish alone ($store_ops): the store's ceiling"
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) != 12:
        continue
    runtime, label = f[1].split(":")
    c = int(f[2])
    rps, okps, p50, p75, p90, p99 = map(float, f[3:9])
    unexpected, non2xx, socket = (int(x) for x in f[9:12])
    rows[(runtime, label, c)] = (rps, okps, p50, p75, p90, p99, unexpected, non2xx, socket)
order = {"gateway": 0, "store": 1, "empty": 2}
for runtime in dict.fromkeys(r for (r, _, _) in rows):
    print(f"--- {runtime}")
    print(f"{'component':<9} {'conc':>4} {'req/s':>9} {'accepted/s':>10} {'p50':>7} {'p75':>7} {'p90':>7} {'p99':>7} {'unexpected':>10} {'non-2xx':>7} {'sock err':>8}")
    mine = sorted(((l, c) for (r, l, c) in rows if r == runtime), key=lambda k: (k[1], order.get(k[0], 9)))
    for label, c in mine:
        r = rows[(runtime, label, c)]
        print(f"{label:<9} {c:>4} {r[0]:>9.0f} {r[1]:>10.0f} {r[2]:>7.2f} {r[3]:>7.2f} {r[4]:>7.2f} {r[5]:>7.2f} {r[6]:>10} {r[7]:>7} {r[8]:>8}")
    for c in sorted({c for (_, c) in mine}):
        g, e, s = (rows.get((runtime, l, c)) for l in ("gateway", "empty", "store"))
        if not g:
            continue
        parts = [f"{runtime}, concurrency {c}: gateway {g[1]:.0f} accepted/s (p90/p50 {g[4] / g[2]:.1f}x)"]
        if e and e[0] > 0:
            parts.append(f"{g[1] / e[0]:.1%} of the empty component's req/s")
        if s and s[0] > 0:
            parts.append(f"{g[1] / s[0]:.1%} of its store operations alone")
        print("; ".join(parts))
    print()
PY
if [ -s "$work/in-host" ]; then
  echo
  echo "==> eventplane: the gateway's publishes inside the host (ms; see crates/host/src/timings.rs)"
  sed 's/; /\n    /g' "$work/in-host"
fi
echo
ls -l "$gateway_wasm" | awk '{printf "gateway .wasm: %d bytes (%.0f KiB)\n", $5, $5 / 1024}'
