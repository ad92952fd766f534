#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Needs only rustup: rust-toolchain.toml pins the toolchain, its components and the wasm targets.
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned toolchain with its components and wasm targets (a no-op when they are installed).
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$toolchain" --profile minimal \
  --component rustfmt,clippy --target wasm32-wasip2,wasm32-wasip1 >/dev/null

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
