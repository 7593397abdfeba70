#!/usr/bin/env bash
# bench.sh: every benchmark, one after another (results go to BENCHMARKS.md by hand).
set -euo pipefail
cd "$(dirname "$0")"
echo "== API";       ./bench-api.sh "${BENCH_SECS_WRK:-10}"
echo "== edge";      rounds=${BENCH_ROUNDS:-5} ./bench-edge.sh "${BENCH_SECS_WRK:-8}"
echo "== edge, as make up runs it"; SEMANTICS=template rounds=${BENCH_ROUNDS:-5} ./bench-edge.sh "${BENCH_SECS_WRK:-8}"
echo "== LL fan-out"; ./bench-fanout.sh
echo "== LL fan-out: the machine's floor"; ./bench-fanout-floor.sh
echo "== discovery"; ./bench-discovery.sh
echo "== ABR";       ./bench-abr.sh
echo "== players";   ./bench-players.sh
echo "== DVR window (about 40 minutes)"; ./bench-dvr.sh
