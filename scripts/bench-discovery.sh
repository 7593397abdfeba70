#!/usr/bin/env bash
# bench-discovery.sh: appearance-to-registered latency over BENCH_STREAMS
# (default 200) streams, then discovery's CPU and RSS while all of them are
# live (playlists rewritten every 2 s for BENCH_LIVE_SECS, default 20).
# Real API, real redis-server; needs `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -q -p rtmp-live-discovery --test bench -- --ignored --nocapture 2>&1 |
  grep -E "appearance|live streams|panicked|error"
