# mp3edge — two commands on a fresh Debian machine:
#   make up     install what is missing, build, run the platform on its embedded defaults
#   make test   install what is missing, build, run the whole test suite
.PHONY: setup build components host up test clean

CARGO ?= cargo
COMPONENTS := auth gateway

setup:
	./scripts/setup.sh

components: setup
	$(CARGO) build --release --target wasm32-wasip2 $(addprefix -p ,$(COMPONENTS))

host: setup
	$(CARGO) build --release -p host-worker

build: components host

up: build
	./target/release/mp3edge up

test: build
	$(CARGO) test --release --workspace $(addprefix --exclude ,$(COMPONENTS))

clean:
	$(CARGO) clean
