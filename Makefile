# mp3edge — two commands on a fresh Debian machine:
#   make up     install what is missing, build, run the platform on its embedded defaults
#   make test   install what is missing, build, run the whole test suite
.PHONY: setup build components host up test conformance bench clean

CARGO ?= cargo
COMPONENTS := auth gateway converter web
PLUGINS := codec-mp3-lame codec-wav codec-opus codec-vorbis codec-flac codec-m4a
# Plugins in other languages, each built by the Makefile in its directory.
C_PLUGINS := components/codec-aiff-c
# Deliberately broken plugins that prove the sandbox holds (tests only).
TEST_PLUGINS := codec-trap codec-spin-loop codec-memory-bomb codec-segment-trap
# Libraries that only build for wasm (spin-sdk host interfaces); their pure parts are tested
# natively in edge-http.
WASM_LIBS := edge-spin
# The API description (built into the web component by its build script) turns on the API
# types' `openapi` feature: tested in a build of its own, so the host's build keeps its features.
API_DESCRIPTION := api-description
WASM_CRATES := $(COMPONENTS) $(PLUGINS) $(TEST_PLUGINS)

setup:
	./scripts/setup.sh

# MP3LAME_SYS_OVERRIDE_HOST makes LAME's configure cross-compile; it is not per-target, so it
# is set for this wasm-only build and never for the native one.
# libFLAC (codec-flac) is built by CMake with a toolchain file of its own (no C++ runtime, no
# threads in WASI); the variable would reach libopus's CMake build too, so codec-flac is built
# by a cargo run of its own.
FLAC_TOOLCHAIN := CMAKE_TOOLCHAIN_FILE_wasm32_wasip2=$(CURDIR)/components/codec-flac/wasm32-wasip2.cmake
components: setup
	MP3LAME_SYS_OVERRIDE_HOST=i686-pc-linux-gnu $(CARGO) build --release --target wasm32-wasip2 $(addprefix -p ,$(filter-out codec-flac,$(WASM_CRATES)))
	$(FLAC_TOOLCHAIN) $(CARGO) build --release --target wasm32-wasip2 -p codec-flac
	for dir in $(C_PLUGINS); do $(MAKE) -C $$dir || exit 1; done

host: setup
	$(CARGO) build --release -p host-worker

# Ends by compiling every component the platform loads (edge components, converter, codec
# plugins) for this machine's Wasmtime engine, beside each .wasm (`mp3edge precompile`), so that a
# first `mp3edge up`, `convert` or `worker` loads native code instead of compiling for seconds.
build: components host
	./target/release/mp3edge precompile

up: build
	./target/release/mp3edge up

# Spin's conformance suite runs when ../shared/spin-conformance exists (tests/tests/spin_conformance.rs).
# It ends by checking every status the suite's requests got against the API description (with
# the suite's package selection, so nothing is rebuilt).
# The tests run under cargo-nextest, side by side (`.config/nextest.toml`); doctests, which it
# does not run, by cargo. The components are precompiled first, as `make build` does, so the
# platforms the tests start load them instead of each compiling them at once. The host is built here with every test target; `crates/workspace-hack` makes `make build`
# resolve the same features, which `check-one-build.sh` holds it to (otherwise Wasmtime and the
# rest compile twice: 8 minutes of CI on 2 cores).
NATIVE_CRATES := --workspace $(addprefix --exclude ,$(COMPONENTS) $(TEST_PLUGINS) $(WASM_LIBS) $(API_DESCRIPTION))
test: components
	$(CARGO) build --release $(NATIVE_CRATES) --all-targets
	./scripts/check-one-build.sh
	./target/release/mp3edge precompile
	./scripts/conformance-components.sh
	for dir in $(C_PLUGINS); do $(MAKE) -C $$dir test || exit 1; done
	rm -rf target/observed-requests
	$(CARGO) test --release -p $(API_DESCRIPTION)
	$(CARGO) nextest run --release $(NATIVE_CRATES)
	$(CARGO) test --release $(NATIVE_CRATES) --doc
	$(CARGO) nextest run --release $(NATIVE_CRATES) --test openapi --run-ignored only

# Spin's conformance suite alone, every test with its verdict.
conformance: host
	./scripts/conformance-components.sh
	CONFORMANCE_BUILD=target/spin-conformance-build python3 ../shared/spin-conformance/run.py

# Worker vs `ffmpeg -threads 1` on 5- and 60-minute 640x360 videos (see README).
bench: build
	$(CARGO) run --release -p e2e-tests --bin bench -- $(BENCH_ARGS)

clean:
	$(CARGO) clean
