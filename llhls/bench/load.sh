#!/usr/bin/env bash
# CPU and memory of rtmp-live-llhls with N synthetic live streams (see
# examples/load.rs) and one blocking-reload LL client per stream (CLIENTS=0:
# none, the cost of following the streams alone).
#
# usage: bench/load.sh <source.ts> <streams>... (release build first:
#   cargo build --release --bin rtmp-live-llhls --example load)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)  # the workspace (its target/)
src=$1; shift
secs=${SECS:-20}
warm=5
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
for n in "$@"; do
  work=$(mktemp -d)
  port=$((20000 + RANDOM % 10000))
  "$here/target/release/rtmp-live-llhls" --hls-path "$work" --listen "127.0.0.1:$port" --tick-ms "${TICK_MS:-10}" >"$work.log" 2>&1 &
  comp=$!
  sleep 0.3
  url=http://127.0.0.1:$port
  [[ ${CLIENTS:-1} == 0 ]] && url=
  "$here/target/release/examples/load" "$work" "$n" "$secs" "$src" $url 2>"$work.load" &
  load=$!
  sleep $warm
  c0=$(cpu $comp); l0=$(cpu $load); t0=$(date +%s.%N)
  sleep $((secs - warm - 2))
  c1=$(cpu $comp); l1=$(cpu $load); t1=$(date +%s.%N)
  rss=$(awk '/VmRSS/{print $2}' /proc/$comp/status); hwm=$(awk '/VmHWM/{print $2}' /proc/$comp/status)
  wait $load || true
  kill $comp; wait $comp 2>/dev/null || true
  awk -v n="$n" -v c0="$c0" -v c1="$c1" -v l0="$l0" -v l1="$l1" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v rss="$rss" -v hwm="$hwm" \
    'BEGIN { printf "streams %4d: llhls CPU %5.1f%% of one core, RSS %d KiB (peak %d KiB); load generator CPU %5.1f%%\n", n, 100*(c1-c0)/tck/(t1-t0), rss, hwm, 100*(l1-l0)/tck/(t1-t0) }'
  grep -h "clients\|wrote" "$work.load" | sed 's/^/    /'
  rm -rf "$work" "$work.log" "$work.load"
done
