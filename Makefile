# RTMP Live — build, run and test the whole platform.
#   make up     start Redis, API, origin, discovery and edge in the foreground
#   make test   run every test (unit, integration, end-to-end)
SHELL := /bin/bash
CARGO ?= cargo
# Configured nginx tree the edge module is built against (default: Debian's
# nginx from the nginx-dev package). Point NGINX_TREE_SRC at another unpacked
# nginx source (and NGINX_CONF_FLAGS at its configure flags) to target it.
NGINX_TREE ?= $(CURDIR)/target/nginx
export NGINX_SOURCE_DIR := $(NGINX_TREE)
export NGINX_BUILD_DIR := $(NGINX_TREE)/objs
export NGINX_TREE_SRC NGINX_CONF_FLAGS
MODULE := target/release/libngx_edge_router.so

.PHONY: all deps build module check test chaos up stream bench compose-check clean

all: build

deps:
	@scripts/deps.sh

# The edge module (.so) for `load_module`.
module:
	@scripts/deps.sh build
	scripts/nginx-tree.sh $(NGINX_TREE)
	$(CARGO) build --release -p ngx-edge-router

# Everything: API, discovery, the edge module.
build: module
	$(CARGO) build --release --workspace --bins

# Quality gate: formatting, and clippy with warnings as errors on every
# crate and target (the workspace lints deny undocumented unsafe blocks).
check: module
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# All tests. Integration and end-to-end tests start their own processes on
# free loopback ports and use the release binaries built above. The chaos
# suite runs shortened here; `make chaos` runs it at full length.
test: deps build
	$(CARGO) test --release --workspace --no-fail-fast

chaos: deps build
	CHAOS_FULL=1 $(CARGO) test --release -p rtmp-live-e2e --test chaos -- --nocapture

up: build
	scripts/up.sh

stream:
	scripts/stream.sh

bench: build
	scripts/bench.sh

# docker-compose.yml parses (no Docker engine needed).
compose-check:
	API_REPORT_TOKEN=check STREAM_KEYS=check-key-0123456789=golive docker-compose -f docker-compose.yml config -q

clean:
	$(CARGO) clean
