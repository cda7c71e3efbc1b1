#!/usr/bin/env bash
# Builds every WebAssembly component and runs every test (unit, host and end-to-end).
# This is the one test command: it works from a fresh clone on a machine with only rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain pinned in rust-toolchain.toml, with rustfmt, clippy and the wasm target.
# Installed only when missing (rustup may be set not to auto-install: RUSTUP_AUTO_INSTALL=0);
# each step is a no-op when already there.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
fi
installed=$(rustup component list --toolchain "$toolchain" --installed)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed" || rustup component add --toolchain "$toolchain" "$component"
done
rustup target list --toolchain "$toolchain" --installed | grep -qx wasm32-wasip2 ||
  rustup target add --toolchain "$toolchain" wasm32-wasip2

source scripts/packages.sh

echo "==> building the WebAssembly components"
cargo build --target wasm32-wasip2 --release $(for p in "${WASM_PACKAGES[@]}"; do printf -- '-p %s ' "$p"; done)

echo "==> running the tests"
cargo test --workspace $(for p in "${WASM_PACKAGES[@]}"; do printf -- '--exclude %s ' "$p"; done) "$@"
