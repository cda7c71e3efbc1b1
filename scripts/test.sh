#!/usr/bin/env bash
# Builds every WebAssembly component and runs every test (unit, host and end-to-end).
# This is the one test command: it works from a fresh clone on a machine with only rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain pinned in rust-toolchain.toml, with the wasm target. Both steps are no-ops when
# already installed; they are explicit because rustup may be set not to auto-install
# (RUSTUP_AUTO_INSTALL=0).
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy >/dev/null
rustup target add --toolchain "$toolchain" wasm32-wasip2 >/dev/null

source scripts/packages.sh

echo "==> building the WebAssembly components"
cargo build --target wasm32-wasip2 --release $(for p in "${WASM_PACKAGES[@]}"; do printf -- '-p %s ' "$p"; done)

echo "==> running the tests"
cargo test --workspace $(for p in "${WASM_PACKAGES[@]}"; do printf -- '--exclude %s ' "$p"; done) "$@"
