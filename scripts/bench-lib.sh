# Shared by the publish benchmarks (scripts/bench-gateway.sh, scripts/bench-stores.sh): the
# tools they need, and starting and stopping the servers. Sourced; expects $work (a scratch
# directory) and $spin_bin (may be empty) to be set by the caller.

for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> installing $tool"
    apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
  fi
done

servers=()
stop_servers() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  servers=()
}

# Serves a manifest on a runtime: start runtime manifest port state-dir log [env...]
# With RUNTIME_CONFIG set (a path), the server gets --runtime-config-file "$RUNTIME_CONFIG".
start() {
  local runtime=$1 manifest=$2 port=$3 state=$4 log=$5
  shift 5
  local config=()
  [ -z "${RUNTIME_CONFIG:-}" ] || config=(--runtime-config-file "$RUNTIME_CONFIG")
  case "$runtime" in
    spin)
      env "$@" "$spin_bin" up --from "$manifest" --listen "127.0.0.1:$port" --state-dir "$state" \
        "${config[@]}" >"$log" 2>&1 &
      ;;
    eventplane)
      env "$@" "${EVENTPLANE_BIN:-./target/release/eventplane}" up --listen "127.0.0.1:$port" \
        --manifest "$manifest" --state-dir "$state" --cache-dir "$PWD/target/eventplane-bench-cache" \
        "${config[@]}" >"$log" 2>&1 &
      ;;
  esac
  servers+=($!)
  for _ in $(seq 1 3000); do # Spin compiles every component on its first start
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "$runtime did not serve $manifest:"; cat "$log"; exit 1
}

# The benchmark's event and the requests: scripts/bench-publish.lua reads them from $work.
export BENCH_WORK=$work
