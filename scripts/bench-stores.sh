#!/usr/bin/env bash
# Benchmarks publishing on each store setup, on each runtime, all in one run:
#   sqlite    one instance on its default SQLite store (the state directory)
#   redis     one instance with the store `default` on Redis (a runtime config file)
#   redis-x2  two instances on the same Redis; wrk's threads connect to them in turn
#   redis-x2-apart
#             two instances on the same Redis server, each in a database of its own (each with
#             its own application and token): the same server and load, but no key shared, so
#             no contention. redis-x2 / redis-x2-apart is what sharing the data costs.
#   sqlite-x2 (only when named in SETUPS) two instances, each on a SQLite store of its own
# The gateway (the repository's spin.toml, release components) gets 1 KiB structured
# CloudEvents, each with a unique id, at concurrency 16 (CONCURRENCY), for DURATION (15s). Redis
# is started here (Debian's redis-server; scripts/servers.sh installs it) on its own port and
# directory, with the recommended persistence (appendonly yes, appendfsync always; REDIS_FSYNC
# changes the latter), and emptied between setups.
#
# The machine is noisy, so the setups run in ROUNDS rounds (default 3), interleaved (each round
# runs every runtime and setup once), and the summary gives medians.
#
# Prints wrk's output, then per runtime and setup: the median over the rounds of accepted
# events/s and of p50/p90/p99, each round's events/s, and the ratios, of the medians and per
# round: the two the scale-out targets are about (redis / sqlite >= 70 %, redis-x2 / redis
# >= 100 %), and the controls (redis-x2 / redis-x2-apart: sharing the data against sharing
# nothing; redis-x2-apart / redis: a second instance that shares nothing).
#
#   ./scripts/bench-stores.sh
#   RUNTIMES=spin ./scripts/bench-stores.sh     # default: "spin eventplane"
#   SETUPS="redis redis-x2" DURATION=5s ROUNDS=1 ./scripts/bench-stores.sh
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
duration=${DURATION:-15s}
case "$duration" in *[!0-9]*s | s | *[!s]) echo "DURATION must be in seconds, e.g. 15s"; exit 1 ;; esac
base_port=${PORT:-3960}
concurrency=${CONCURRENCY:-16}
runtimes=${RUNTIMES:-spin eventplane}
setups=${SETUPS:-sqlite redis redis-x2 redis-x2-apart}
rounds=${ROUNDS:-3}
fsync=${REDIS_FSYNC:-always}
cpus=$(nproc 2>/dev/null || echo 2)
threads=${THREADS:-4}
admin=bench-admin-token
spin_bin=${SPIN_BIN:-$(command -v spin || true)}

source scripts/servers.sh
echo "==> building (release)"
case " $runtimes " in *" eventplane "*) cargo build --release -p eventplane-host ;; esac
./scripts/build-components.sh

work=$(mktemp -d)
source scripts/bench-lib.sh
redis_pid=
trap 'stop_servers; [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null; rm -rf "$work"' EXIT

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --appendonly yes \
  --appendfsync "$fsync" --save "" --daemonize no --logfile "$work/redis/redis.log" &
redis_pid=$!
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$redis_port" \
  >"$work/redis.toml"
# For redis-x2-apart: the same server, a database (keyspace) of each instance's own.
for db in 1 2; do
  printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s/%s"\n' "$redis_port" "$db" \
    >"$work/redis-db$db.toml"
done
echo "==> redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on port $redis_port, appendfsync $fsync"

# The machine's CPU time so far, in clock ticks: "busy idle".
machine_cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
# The instances' CPU time (clock ticks) and context switches so far, with every process they
# started (spin up runs its trigger in a child): "ticks switches".
instances_cpu() {
  local pids=("$@") all=() pid
  while [ ${#pids[@]} -gt 0 ]; do
    pid=${pids[0]}; pids=("${pids[@]:1}"); all+=("$pid")
    pids+=($(pgrep -P "$pid" || true))
  done
  local ticks=0 switches=0 n
  for pid in "${all[@]}"; do
    n=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0); ticks=$((ticks + n))
    for task in /proc/"$pid"/task/*/status; do
      n=$(awk '/ctxt_switches/{s+=$2} END{print s+0}' "$task" 2>/dev/null || echo 0)
      switches=$((switches + n))
    done
  done
  echo "$ticks $switches"
}

results="$work/results"
: >"$results"
port=$base_port
available=
for runtime in $runtimes; do
  case "$runtime" in
    spin)
      if [ -z "$spin_bin" ]; then echo "==> spin: skipped (no spin on PATH or SPIN_BIN)"; continue; fi
      echo "==> spin: $("$spin_bin" --version)" ;;
    eventplane) echo "==> eventplane: $(${EVENTPLANE_BIN:-./target/release/eventplane} --version)" ;;
    *) echo "unknown runtime $runtime: use spin or eventplane"; exit 1 ;;
  esac
  available="$available $runtime"
done
for round in $(seq 1 "$rounds"); do
  for runtime in $available; do
    for setup in $setups; do
      # The runtime config of each instance (empty: its own SQLite store), and whether the
      # instances share their store.
      case "$setup" in
        sqlite) configs=(""); apart= ;;
        redis) configs=("$work/redis.toml"); apart= ;;
        redis-x2) configs=("$work/redis.toml" "$work/redis.toml"); apart= ;;
        redis-x2-apart) configs=("$work/redis-db1.toml" "$work/redis-db2.toml"); apart=1 ;;
        sqlite-x2) configs=("" ""); apart=1 ;;
        *) echo "unknown setup $setup: use sqlite, redis, redis-x2, redis-x2-apart or sqlite-x2"; exit 1 ;;
      esac
      redis-cli -p "$redis_port" flushall >/dev/null
      targets=()
      for i in "${!configs[@]}"; do
        RUNTIME_CONFIG=${configs[$i]} start "$runtime" spin.toml "$port" "$work/$runtime-$setup-$round-$i" \
          "$work/$runtime-$setup-$round-$i.log" SPIN_VARIABLE_ADMIN_TOKEN=$admin SPIN_VARIABLE_TOKEN_TTL_SECONDS=3600
        targets+=("127.0.0.1:$port")
        port=$((port + 1))
      done
      if [ -n "$apart" ]; then # nothing shared: the application is registered on every instance
        for i in "${!targets[@]}"; do
          echo "==> $runtime $setup: registering application bench-shop on ${targets[$i]}"
          python3 scripts/bench-register.py "${targets[$i]#*:}" "$admin" "$work"
          cp "$work/token" "$work/token-$((i + 1))"
        done
      else
        echo "==> $runtime $setup: registering application bench-shop on ${targets[0]}"
        python3 scripts/bench-register.py "${targets[0]#*:}" "$admin" "$work"
      fi
      export BENCH_TOKEN_PER_TARGET=$apart
      url="http://${targets[0]}/events/publish"
      t=$((concurrency < threads ? concurrency : threads))
      BENCH_TARGETS="${targets[*]}" wrk -t"$t" -c"$concurrency" -d2s -s scripts/bench-publish.lua "$url" \
        -- "warm-$runtime-$setup-$round" gateway 202 >/dev/null
      echo "==> round $round/$rounds, $runtime $setup: concurrency $concurrency, $t wrk threads over ${targets[*]}, $duration"
      cpu_before=$(machine_cpu); instances_before=$(instances_cpu "${servers[@]}")
      BENCH_TARGETS="${targets[*]}" wrk -t"$t" -c"$concurrency" -d"$duration" --latency \
        -s scripts/bench-publish.lua "$url" -- "$runtime-$setup-$(date +%s)" gateway 202 \
        | tee "$work/out" | { grep -v '^RESULT' || true; }
      cpu_after=$(machine_cpu); instances_after=$(instances_cpu "${servers[@]}")
      grep '^RESULT' "$work/out" | sed "s/^RESULT [^ ]* [^ ]*/RESULT $runtime:$setup:$round $concurrency/" >>"$results"
      echo "CPU $runtime:$setup:$round $cpu_before $cpu_after $instances_before $instances_after" >>"$results"
      stop_servers
    done
  done
done

echo
echo "==> summary: the gateway at concurrency $concurrency, median of $rounds round(s) (latency in ms)"
python3 - "$results" "${duration%s}" "$(getconf CLK_TCK)" <<'PY'
import sys
from statistics import median
rows = {}
cpu = {}
seconds = float(sys.argv[2])
hz = float(sys.argv[3])
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "CPU" and len(f) == 10:
        runtime, setup, rnd = f[1].split(":")
        b0, i0, b1, i1, t0, s0, t1, s1 = (float(x) for x in f[2:10])
        busy = (b1 - b0) / max(1.0, (b1 - b0) + (i1 - i0))
        cpu.setdefault((runtime, setup), {})[int(rnd)] = [
            busy, (t1 - t0) / hz / seconds, (s1 - s0) / seconds]
        continue
    if len(f) != 12:
        continue
    runtime, setup, rnd = f[1].split(":")
    rows.setdefault((runtime, setup), {})[int(rnd)] = [float(x) for x in f[3:12]]
def med(runs, i):
    return median(r[i] for r in runs.values())
print(f"{'runtime':<11} {'setup':<14} {'accepted/s':>10} {'p50':>7} {'p90':>7} {'p99':>7} {'unexpected':>10} {'sock err':>8} {'cpu busy':>8} {'inst cores':>10} {'switches/s':>10}  rounds (accepted/s)")
for (runtime, setup), runs in rows.items():
    each = " ".join(f"{runs[k][1]:.0f}" for k in sorted(runs))
    unexpected = sum(int(r[6]) for r in runs.values())
    sock = sum(int(r[8]) for r in runs.values())
    c = cpu.get((runtime, setup), {})
    load = f"{med(c, 0):>8.0%} {med(c, 1):>10.2f} {med(c, 2):>10.0f}" if c else f"{'':>30}"
    print(f"{runtime:<11} {setup:<14} {med(runs, 1):>10.0f} {med(runs, 2):>7.2f} {med(runs, 4):>7.2f} {med(runs, 5):>7.2f} {unexpected:>10} {sock:>8} {load}  {each}")
print("cpu busy: both cores; inst cores: the instances' CPU (their processes and children), in cores; switches/s: their context switches")
for runtime in dict.fromkeys(k[0] for k in rows):
    def ratio(a, b, what):
        ra, rb = rows.get((runtime, a)), rows.get((runtime, b))
        if not ra or not rb:
            return None
        per_round = [ra[k][1] / rb[k][1] for k in sorted(ra) if k in rb and rb[k][1]]
        return (f"{a} / {b} {med(ra, 1) / med(rb, 1):.0%} ({what}; per round "
                + " ".join(f"{x:.0%}" for x in per_round) + ")")
    parts = [p for p in (
        ratio("redis", "sqlite", "target >= 70%"),
        ratio("redis-x2", "redis", "target >= 100%"),
        ratio("redis-x2", "redis-x2-apart", "sharing the data against sharing nothing: >= 100% when contention costs nothing"),
        ratio("redis-x2-apart", "redis", "a second instance that shares nothing"),
        ratio("sqlite-x2", "sqlite", "a second instance that shares nothing, on SQLite")) if p]
    if parts:
        print(f"{runtime}:\n  " + "\n  ".join(parts))
PY
