# The workspace packages that are WebAssembly components (built for wasm32-wasip2 only).
# Sourced by scripts/test.sh and .ci/run.
#
# The application's components, in the order of spin.toml's build command: every
# component's build command there builds exactly these, in one cargo invocation (features are
# unified per invocation), and scripts/build-components.sh builds them with the same arguments,
# so a `spin build` after the tests compiles nothing (.ci/run checks it).
APP_PACKAGES=(
  eventplane-registry
  eventplane-fetcher
  eventplane-gateway
  eventplane-dispatcher
  eventplane-mqtt
)
# The test components, built in an invocation of their own.
TEST_WASM_PACKAGES=(
  eventplane-test-probe
  eventplane-test-empty
  eventplane-test-storeops
  eventplane-test-mqttprobe
)
WASM_PACKAGES=("${APP_PACKAGES[@]}" "${TEST_WASM_PACKAGES[@]}")
