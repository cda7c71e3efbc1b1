#!/usr/bin/env bash
# Builds every WebAssembly component (release, wasm32-wasip2): the application's four exactly as
# spin.toml's build commands build them (one invocation, the same packages in the same order),
# then the test components. Run by scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/toolchain.sh
source scripts/packages.sh

echo "==> building the WebAssembly components"
cargo build --target wasm32-wasip2 --release $(for p in "${APP_PACKAGES[@]}"; do printf -- '-p %s ' "$p"; done)
cargo build --target wasm32-wasip2 --release $(for p in "${TEST_WASM_PACKAGES[@]}"; do printf -- '-p %s ' "$p"; done)
