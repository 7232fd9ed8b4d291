#!/usr/bin/env bash
# Builds the guest components of Spin's conformance suite (../shared/spin-conformance, or
# SPIN_CONFORMANCE_DIR) into target/spin-conformance-build, where the spin_conformance e2e test
# finds them. Without the suite it does nothing, so a fresh clone's `make test` does not need it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
suite=${SPIN_CONFORMANCE_DIR:-$root/../shared/spin-conformance}
if [ ! -x "$suite/build.sh" ]; then
  echo "conformance: no suite at $suite; its test will be skipped"
  exit 0
fi
export CONFORMANCE_BUILD=${CONFORMANCE_BUILD:-$root/target/spin-conformance-build}
if [ ! -f "$CONFORMANCE_BUILD/Cargo.toml" ]; then
  mkdir -p "$CONFORMANCE_BUILD"
  (cd "$suite/suite" && tar --exclude=.git --exclude=target -cf - .) | tar -xf - -C "$CONFORMANCE_BUILD"
  # The suite's root package (its own harness) needs crates/conformance-tests, which the shared
  # copy lacks; the guest components need only the workspace, so the copy keeps just that.
  if [ ! -d "$CONFORMANCE_BUILD/crates/conformance-tests" ]; then
    sed -i -n '/^\[workspace\]/,$p' "$CONFORMANCE_BUILD/Cargo.toml"
  fi
  # As build.sh does for a fresh copy: url 2.5.0 does not build on wasm32-wasip2.
  (cd "$CONFORMANCE_BUILD" && cargo update -q -p url --precise 2.5.4)
fi
"$suite/build.sh" >/dev/null
echo "conformance: components built in $CONFORMANCE_BUILD"
