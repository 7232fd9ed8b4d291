#!/usr/bin/env bash
# Installs what building, running and testing mp3edge needs on Debian 12, idempotently:
# Debian packages (only the missing ones, with one `apt-get update` first) and the
# wasm32-wasip2 Rust target. Safe to run on every `make` invocation.
set -euo pipefail

APT_PACKAGES=(
  redis-server        # job queue; tests and `mp3edge up` start private instances
  curl                # README examples
  pkg-config clang    # FFmpeg bindings (bindgen) and LAME for wasm
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev   # native demux/decode (FFmpeg 5.1)
  ffmpeg              # test fixtures and the benchmark's reference
  lld wasi-libc libclang-rt-14-dev-wasm32 llvm-14   # LAME (C) compiled to wasm32-wasip2
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
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
