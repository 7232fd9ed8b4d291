#!/usr/bin/env bash
# Installs what building, running and testing mp3edge needs on Debian 12, idempotently:
# Debian packages (only the missing ones, with one `apt-get update` first) and the
# wasm32-wasip2 Rust target. Safe to run on every `make` invocation.
set -euo pipefail

APT_PACKAGES=(
  redis-server        # job queue; tests and `mp3edge up` start private instances
  curl jq             # README examples
  libssl-dev          # TLS for SMTP (STARTTLS) and HTTPS webhooks
  python3-aiosmtpd    # a real SMTP server for the e-mail tests
  python3-venv        # the OpenAPI validator's virtualenv (tests/openapi/.venv)
  pkg-config clang    # FFmpeg bindings (bindgen) and LAME for wasm
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev   # native demux/decode (FFmpeg 5.1)
  libswscale-dev      # the cover picture: a video frame scaled for the JPEG encoder
  ffmpeg              # test fixtures and the benchmark's reference
  lld wasi-libc libclang-rt-14-dev-wasm32 llvm-14   # LAME (C) compiled to wasm32-wasip2
  cmake               # libopus's build (opusic-sys), for the Opus codec plugin
  g++                 # fdk-aac (C++) of the m4a plugin, built natively for its unit tests
  chromium            # the web app's browser test (headless, driven by playwright-core)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# Node.js (>= 18) and npm for the browser test: a newer Node already on the machine (which may
# bundle its own npm) is kept; otherwise Debian's.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < 18)); then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
# Spin's conformance suite, which `make test` runs when ../shared/spin-conformance exists (not in
# the container image's build), starts a private MQTT broker and PostgreSQL of its own.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ -d "${SPIN_CONFORMANCE_DIR:-$(dirname "$0")/../../shared/spin-conformance}" ]; then
  installed mosquitto || missing+=(mosquitto)
  installed postgresql || missing+=(postgresql)
fi
# The benchmark's request rates (`make bench`); the worker image has no use for it.
installed wrk || missing+=(wrk)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

# cargo-nextest runs the test suite (`make test`); the machines' toolchain has it, a machine
# without it gets it from crates.io once.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest (crates.io)"
  cargo install --locked cargo-nextest@0.9.143
fi

# The browser test's Node packages (playwright-core only: it never downloads a browser), again
# whenever the lock file changes.
BROWSER_TESTS="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ ! -f "$BROWSER_TESTS/node_modules/.package-lock.json" ] \
  || [ "$BROWSER_TESTS/package-lock.json" -nt "$BROWSER_TESTS/node_modules/.package-lock.json" ]; then
  echo "setup: installing the browser test's Node packages"
  npm ci --prefix "$BROWSER_TESTS" --no-audit --no-fund
fi

# tuspy, the tus project's Python client, for the resumable-upload tests (a client no one here
# wrote), in a virtualenv inside the clone.
TUS_VENV="$(cd "$(dirname "$0")/.." && pwd)/tests/tus/.venv"
if [ ! -f "$TUS_VENV/.tuspy-1.1.0" ]; then
  echo "setup: installing tuspy (PyPI) in tests/tus/.venv"
  python3 -m venv "$TUS_VENV"
  "$TUS_VENV/bin/pip" install -q --disable-pip-version-check tuspy==1.1.0
  touch "$TUS_VENV/.tuspy-1.1.0"
fi

# What the web app ships from npm (tus-js-client's browser build, compiled into the web
# component), again whenever its lock file changes.
WEB="$(cd "$(dirname "$0")/.." && pwd)/components/web"
if [ ! -f "$WEB/node_modules/.package-lock.json" ] || [ "$WEB/package-lock.json" -nt "$WEB/node_modules/.package-lock.json" ]; then
  echo "setup: installing the web app's Node packages"
  npm ci --prefix "$WEB" --no-audit --no-fund
fi

# A real OpenAPI validator and a client generator (generators no one here wrote) for the API
# description's tests, in a virtualenv inside the clone; a marker file names the versions.
OPENAPI_VENV="$(cd "$(dirname "$0")/.." && pwd)/tests/openapi/.venv"
if [ ! -f "$OPENAPI_VENV/.validator-0.7.1-generator-0.29.1" ]; then
  echo "setup: installing openapi-spec-validator and openapi-python-client (PyPI) in tests/openapi/.venv"
  python3 -m venv "$OPENAPI_VENV"
  "$OPENAPI_VENV/bin/pip" install -q --disable-pip-version-check openapi-spec-validator==0.7.1 openapi-python-client==0.29.1
  touch "$OPENAPI_VENV/.validator-0.7.1-generator-0.29.1"
fi

# openapi-typescript and TypeScript (npm) for the same tests, again whenever the lock changes.
OPENAPI_NODE="$(cd "$(dirname "$0")/.." && pwd)/tests/openapi"
if [ ! -f "$OPENAPI_NODE/node_modules/.package-lock.json" ] \
  || [ "$OPENAPI_NODE/package-lock.json" -nt "$OPENAPI_NODE/node_modules/.package-lock.json" ]; then
  echo "setup: installing openapi-typescript and typescript (npm) in tests/openapi"
  npm ci --prefix "$OPENAPI_NODE" --no-audit --no-fund
fi
