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
# A current nginx (nginx.org's source from the nginx-src crate, pinned in
# ngx-edge-router/nginx-current/) and the edge module built against it, in
# their own folder and cargo target dir (scripts/nginx-current.sh).
NGINX_CURRENT := $(CURDIR)/target/nginx-current

.PHONY: all deps build module nginx-current test-nginx-current player browser-deps conform-deps check test chaos up stream bench compose-check compose-test kube-validate kube-test lab clean

all: build

deps:
	@scripts/deps.sh

# The edge module (.so) for `load_module`.
module:
	@scripts/deps.sh build
	scripts/nginx-tree.sh $(NGINX_TREE)
	$(CARGO) build --release -p ngx-edge-router

# A current nginx binary and the module built for it (besides Debian's).
nginx-current:
	@scripts/deps.sh build
	CARGO=$(CARGO) scripts/nginx-current.sh $(NGINX_CURRENT)

# Everything: API, discovery, the edge module, the edge's player page.
build: module player
	$(CARGO) build --release --workspace --bins

# The player page's hls.js, pinned in player/package-lock.json, installed
# from the npm registry at build time and served by the edge as /hls.min.js
# (never from a CDN). player/node_modules and player/hls.min.js are not
# committed.
player: player/hls.min.js

player/hls.min.js: player/package.json player/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm (scripts/deps.sh build does)" >&2; exit 1; }
	npm ci --prefix player --no-audit --no-fund
	cp player/node_modules/hls.js/dist/hls.min.js $@

# hls-parser (pinned in conform/package-lock.json): the conformance
# checker's external strict parser (e2e/tests/conform.rs).
conform-deps: conform/node_modules/.package-lock.json

conform/node_modules/.package-lock.json: conform/package.json conform/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm (scripts/deps.sh build does)" >&2; exit 1; }
	npm ci --prefix conform --no-audit --no-fund
	@touch $@

# playwright-core (pinned in e2e/browser/package-lock.json) for the browser
# end-to-end test, which drives Debian's chromium.
browser-deps: e2e/browser/node_modules/.package-lock.json

e2e/browser/node_modules/.package-lock.json: e2e/browser/package.json e2e/browser/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm (scripts/deps.sh build does)" >&2; exit 1; }
	npm ci --prefix e2e/browser --no-audit --no-fund
	@touch $@

# Quality gate: formatting, and clippy with warnings as errors on every
# crate and target (the workspace lints deny undocumented unsafe blocks).
check: module kube-validate
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# The Kubernetes manifests (deploy/kubernetes/) against the Kubernetes API
# schemas, offline (kubernetes-validate from PyPI).
kube-validate:
	scripts/kube-validate.sh

# All tests. Integration and end-to-end tests start their own processes on
# free loopback ports and use the release binaries built above (the LL-HLS
# live test fails, not skips, when nginx-rtmp or ffmpeg is missing). The chaos
# suite runs shortened here; `make chaos` runs it at full length.
test: deps build browser-deps conform-deps
	LLHLS_REQUIRE_LIVE=1 $(CARGO) test --release --workspace --no-fail-fast

# The edge module's test suites again, against the current nginx and the
# module built for it (the tests themselves and the API are the ones
# `make build` builds).
test-nginx-current: deps build nginx-current
	EDGE_NGINX=$(NGINX_CURRENT)/tree/objs/nginx \
	EDGE_MODULE=$(NGINX_CURRENT)/cargo/release/libngx_edge_router.so \
	$(CARGO) test --release -p ngx-edge-router --no-fail-fast

chaos: deps build conform-deps
	CHAOS_FULL=1 $(CARGO) test --release -p rtmp-live-e2e --test chaos -- --nocapture
	CONFORM_SECONDS=600 $(CARGO) test --release -p rtmp-live-e2e --test conform -- --nocapture --test-threads 1

# The platform's topology (platform/): processes, ports, configs.
up: build
	target/release/rtmp-live-up

# The test pattern, published with `make up`'s key (rtmp-live-publish: the
# key on no command line).
stream:
	$(CARGO) build --release -p rtmp-live-platform --bin rtmp-live-publish
	scripts/stream.sh

bench: build browser-deps
	scripts/bench.sh

# docker-compose.yml parses (no Docker engine needed).
compose-check:
	API_REPORT_TOKEN=check REDIS_PASSWORD=check STREAM_KEYS=check-key-0123456789=golive docker-compose -f docker-compose.yml config -q

# docker-compose.yml run for real with podman (as root): images built (local
# stand-ins for base images no registry serves), the stack used as a viewer
# and a publisher would, an API outage, `--scale origin=2`, `down -v`.
compose-test:
	scripts/compose-test.sh

# The images as Kubernetes runs them (non-root, read-only root), played by
# `podman kube play`: publish into the pod, play through its edge.
kube-test:
	scripts/kube-test.sh

# The multi-node lab (as root): every node of the platform its own network
# host (podman), publishers and viewers, one fault per kind of node in turn
# and a report (docs/lab.md). `scripts/lab.sh up` keeps it running instead.
lab:
	scripts/lab.sh chaos

clean:
	$(CARGO) clean
