# The workspace packages that are WebAssembly components (built for wasm32-wasip2 only).
# Sourced by scripts/test.sh and .ci/run.
WASM_PACKAGES=(
  eventplane-registry
  eventplane-fetcher
  eventplane-gateway
  eventplane-dispatcher
  eventplane-test-probe
  eventplane-test-empty
)
