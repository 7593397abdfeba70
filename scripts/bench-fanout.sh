#!/usr/bin/env bash
# bench-fanout.sh: N low-latency viewers of one stream on one edge, against
# one origin (the platform as `make up` runs it, on spare ports, one
# 640x360 30 fps publisher). For each N in FANOUT_STEPS: the delay from a
# part existing at the origin to each viewer holding its bytes (p50, p90,
# p99, max), origin requests per part (blocking reloads and parts,
# from the origin's access log, the probe's own reloads taken out), errors,
# and the edge workers' CPU and memory (RSS) during the run. Then the same
# against the reference (FANOUT_REFERENCE=1, the default): the rendered
# edge configuration without the module, collapsing with nginx's own
# proxy_cache_lock. The viewers and the probe: conform's `rtmp-live-fanout`.
# Needs `make build`. Usage: scripts/bench-fanout.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
steps=${FANOUT_STEPS:-100 1000 2500 5000}
secs=${FANOUT_SECONDS:-20}
ramp=${FANOUT_RAMP:-5}
ulimit -n "$(ulimit -Hn)" # a socket per viewer
source "$ROOT/scripts/spare-platform.sh"
trap stop_platform EXIT
start_platform 0
set -m
ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 \
  -re -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -b:v 800k \
  -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 64k \
  -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$key" >"$state/publisher.log" 2>&1 &
pub=$!
set +m
edge="http://127.0.0.1:$EDGE_PORT/golive/index.m3u8"
origin="http://127.0.0.1:$ORIGIN_HTTP_PORT/golive/index.m3u8"
live=0
for _ in $(seq 600); do curl -sf "$edge" | grep -q '#EXT-X-PART:' && live=1 && break; sleep 0.1; done
if ((!live)) || [[ ! -s $state/edge.pid ]]; then
  echo "bench-fanout: the stream is not live at the edge after 60 s" >&2
  tail -n 20 "$state/up.log" "$state/publisher.log" >&2
  exit 1
fi
sleep 3

# The reference: the same edge configuration without the module, nginx's
# proxy_cache_lock collapsing (scripts/edge-reference.sh), on its own port,
# caches and logs, in front of the same origin.
ref_port=$(port)
mkdir -p "$state/ref/tmp"
"$ROOT/scripts/edge-reference.sh" "$state/edge.conf" "127.0.0.1:$ORIGIN_HTTP_PORT" on |
  sed -e "s|$state/edge|$state/ref/edge|g" -e "s|$state/tmp/|$state/ref/tmp/|g" \
    -e "s|^\( *\)listen [^;]*;|\1listen 127.0.0.1:$ref_port;|" -e 's|^daemon off;|daemon on;|' \
    -e "s|^error_log stderr notice;|error_log $state/ref/error.log warn;|" >"$state/ref/nginx.conf"
[[ ${FANOUT_REFERENCE:-1} == 1 ]] && /usr/sbin/nginx -p "$state/ref" -c "$state/ref/nginx.conf"
stop_reference() { [[ -s $state/ref/edge.pid ]] && kill "$(cat "$state/ref/edge.pid")" 2>/dev/null || true; }
trap 'stop_reference; stop_platform' EXIT

master=
workers() { pgrep -P "$master" -f 'worker process'; }
ticks() { local t=0 w; for w in $(workers); do t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done; echo "$t"; }
rss_kb() { local t=0 w; for w in $(workers); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$w/status"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
alog=$state/origin1/access.log
master=$(cat "$state/edge.pid")
echo "cores: $(nproc), edge workers: $(workers | wc -l), $secs s measured after a $ramp s ramp per step"
printf '%-9s %7s %9s %9s %9s %9s %8s %9s %9s %8s %9s %10s %10s %s\n' setup viewers p50-ms p90-ms p99-ms max-ms parts reloads/pt parts/pt edge-cpu rss-MB kB/viewer client-cpu errors
steps() { # steps <setup> <playlist URL>
for n in $steps; do
  idle_rss=$(rss_kb)
  o0=$(wc -l <"$alog") t0=$(ticks)
  "$ROOT/target/release/rtmp-live-fanout" --edge "$2" --origin "$origin" --viewers "$n" \
    --seconds "$secs" --ramp "$ramp" >"$state/report.json" &
  run=$!
  # the edge's memory while every viewer holds a request
  sleep "$((ramp + secs / 2))"
  busy_rss=$(rss_kb)
  client_ticks=0
  while kill -0 "$run" 2>/dev/null; do
    client_ticks=$(awk '{print $14 + $15}' "/proc/$run/stat" 2>/dev/null || echo "$client_ticks")
    sleep 0.5
  done
  wait "$run"
  t1=$(ticks)
  o_reloads=$(tail -n +"$((o0 + 1))" "$alog" | grep -c '_HLS_msn' || true)
  # parts: CMAF parts (<E>-<n>.m4s) or byte ranges of a .ts fragment
  o_ranges=$(tail -n +"$((o0 + 1))" "$alog" | grep -c -e '-[0-9]*\.m4s HTTP[^"]*" 200 ' -e '\.ts[^"]*" 206 ' || true)
  python3 - "$1" "$state/report.json" "$n" "$o_reloads" "$o_ranges" "$((t1 - t0))" "$hz" "$idle_rss" "$busy_rss" "$((ramp + secs))" "$client_ticks" <<'EOF'
import json, sys
setup = sys.argv[1]
r = json.load(open(sys.argv[2]))
n, o_rel, o_rng, ticks, hz, idle, busy, wall, client = (float(x) for x in sys.argv[3:])
parts = max(r["parts_at_origin"], 1)
# the probe's reloads and the whole run's requests against the parts of the whole run
rel = (o_rel - r["probe_reloads"]) / (parts * wall / r["seconds"])
rng = o_rng / (parts * wall / r["seconds"])
cpu = ticks / hz / wall
errors = ",".join(f"{k}:{v}" for k, v in sorted(r["errors"].items())) or "0"
print(f'{setup:9s} {int(n):7d} {r["delay_ms_p50"]:9.1f} {r["delay_ms_p90"]:9.1f} {r["delay_ms_p99"]:9.1f} {r["delay_ms_max"]:9.1f} '
      f'{r["parts_at_origin"]:8d} {rel:9.2f} {rng:9.2f} {cpu:8.2f} {busy / 1024:9.1f} {(busy - idle) / n:10.1f} '
      f'{client / hz / wall:10.2f} {errors}')
EOF
done
}
steps edge "$edge"
if [[ ${FANOUT_REFERENCE:-1} == 1 ]]; then
  master=$(cat "$state/ref/edge.pid")
  steps cache-lock "http://127.0.0.1:$ref_port/golive/index.m3u8"
fi
