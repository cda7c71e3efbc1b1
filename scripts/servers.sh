# Installs the servers the tests start themselves (Debian's packages) when they are missing:
# redis-server, and mosquitto with its command-line clients (mosquitto_pub, mosquitto_sub). Needs root (or sudo) and apt-get; on another system install them by hand, or
# the tests that need them skip, saying so (they fail instead when CI=true). Sourced by
# scripts/test.sh.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "==> not installing ${missing[*]}: no apt-get here; the tests needing them will skip"
  else
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing ${missing[*]} (Debian packages)"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start system-wide servers (ports 6379, 1883); the tests start their own.
    for service in redis-server mosquitto; do
      if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true; fi
      $sudo service "$service" stop >/dev/null 2>&1 || true
    done
  fi
fi
