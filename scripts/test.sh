#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Needs only rustup: rust-toolchain.toml pins the toolchain, its components and the wasm targets.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustup installs the pinned toolchain on first use; make sure the targets and components are there too.
rustup show active-toolchain >/dev/null
rustup target add wasm32-wasip2 wasm32-wasip1 >/dev/null
rustup component add rustfmt clippy >/dev/null

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
