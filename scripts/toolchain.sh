# Installs the toolchain pinned in rust-toolchain.toml, with rustfmt, clippy and the wasm
# target, when missing (rustup may be set not to auto-install: RUSTUP_AUTO_INSTALL=0); each
# step is a no-op when already there. Sourced by scripts/test.sh and .ci/run.
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
