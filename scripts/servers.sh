# Installs the servers the tests start themselves (Debian's packages) when they are missing:
# redis-server. Needs root (or sudo) and apt-get; on another system install them by hand, or
# the tests that need them skip, saying so (they fail instead when CI=true). Sourced by
# scripts/test.sh.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "==> not installing ${missing[*]}: no apt-get here; the tests needing them will skip"
  else
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing ${missing[*]} (Debian packages)"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package starts a system-wide server on port 6379; the tests start their own.
    if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
    $sudo service redis-server stop >/dev/null 2>&1 || true
  fi
fi
