#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Needs rustup (rust-toolchain.toml pins the toolchain, its components and the wasm targets) and
# python3 with pip (scripts/requirements-test.txt) and node/npm (from Debian's packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned toolchain with its components and wasm targets (a no-op when they are installed).
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$toolchain" --profile minimal \
  --component rustfmt,clippy --target wasm32-wasip2,wasm32-wasip1 >/dev/null

# Python side of the ML tests: numpy/onnx/onnxruntime make the conformance models and the
# reference outputs, and the onnxruntime wheel carries the libonnxruntime.so that the
# ONNX Runtime backend loads (tests fail, never skip, when it is missing).
echo "== pip install -r scripts/requirements-test.txt"
python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
ORT_DYLIB_PATH="$(python3 scripts/onnxruntime-lib.py)"
export ORT_DYLIB_PATH NETMIND_REQUIRE_ORT=1
echo "   ONNX Runtime: $ORT_DYLIB_PATH"

# A throwaway PostgreSQL server on a free loopback port for the market's journal tests
# (installed from Debian's packages when missing); they fail, never skip, without it.
echo "== PostgreSQL"
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/netmind-pg.XXXXXX")
NETMIND_PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export NETMIND_PG_PORT
NETMIND_TEST_POSTGRES=$(scripts/postgres.sh start "$pgdir")
export NETMIND_TEST_POSTGRES NETMIND_REQUIRE_POSTGRES=1
trap 'scripts/postgres.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
echo "   $NETMIND_TEST_POSTGRES"

# A real GPU adapter for the GPU tests: the machine's, or Mesa's software Vulkan (lavapipe) where
# there is none (installed from Debian's packages when missing); the tests fail, never skip, without one.
echo "== Vulkan (GPU tests)"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "   installing Mesa's software Vulkan from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 libegl1 libgl1-mesa-dri >/dev/null
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/netmind-xdg.XXXXXX")
  chmod 700 "$XDG_RUNTIME_DIR"
  export XDG_RUNTIME_DIR
fi
export NETMIND_REQUIRE_GPU=1
echo "   $(ls /usr/share/vulkan/icd.d/ | tr '\n' ' ')"

# Headless Chromium for the market dashboard's browser test (Debian's package when missing);
# the test fails, never skips, without it.
echo "== Chromium (dashboard test)"
if ! command -v chromium >/dev/null 2>&1; then
  echo "   installing chromium from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export NETMIND_REQUIRE_CHROMIUM=1
echo "   $(chromium --version 2>/dev/null | head -1)"

# anvil and cast (Foundry 1.7.1, native binaries inside npm packages) and solcjs (npm solc) for
# the chain's differential tests against anvil and its cast tests, under the git-ignored
# .tools/npm (installed once per package list; node and npm from Debian's packages when missing);
# the tests fail, never skip, without them.
echo "== npm tools (anvil, cast, solc)"
npm_pkgs="@foundry-rs/anvil-linux-amd64@1.7.1 @foundry-rs/cast-linux-amd64@1.7.1 solc@0.8.30"
if [ "$(cat .tools/npm/.installed 2>/dev/null)" != "$npm_pkgs" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "   installing node and npm from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  mkdir -p .tools/npm
  # shellcheck disable=SC2086 # one word per package
  npm install --prefix .tools/npm --no-audit --no-fund --loglevel=error --save-exact $npm_pkgs >/dev/null
  echo "$npm_pkgs" > .tools/npm/.installed
fi
export NETMIND_REQUIRE_TOOLS=1
echo "   $(.tools/npm/node_modules/.bin/anvil --version | head -1), solc $(node -p 'require("./.tools/npm/node_modules/solc/package.json").version')"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
