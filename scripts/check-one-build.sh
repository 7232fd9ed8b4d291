#!/usr/bin/env bash
# After the test build: `make build`'s host build must find everything already compiled. If it
# compiles a crate, the two builds resolve that crate's features differently; add the features
# the tests turn on to crates/workspace-hack/Cargo.toml (compare `cargo tree -e features`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(${CARGO:-cargo} build --release -p host-worker 2>&1) || { echo "$out"; exit 1; }
if grep -q '^ *Compiling' <<<"$out"; then
  echo "$out" | grep '^ *Compiling'
  echo "check-one-build: \`cargo build --release -p host-worker\` compiled the crates above again after the test build;" >&2
  echo "their features differ between the two builds (see crates/workspace-hack/Cargo.toml)" >&2
  exit 1
fi
echo "check-one-build: the host build reuses the test build"
