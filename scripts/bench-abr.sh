#!/usr/bin/env bash
# bench-abr.sh: does the ABR ladder keep real time on this machine while the
# test publisher (scripts/stream.sh, 1280x720@30 x264 veryfast) runs beside
# it? Starts the platform with ABR=1 on spare ports, publishes, then over a
# window of BENCH_SECS (default 30) measures the ladder's speed (media time
# produced / wall time, from its 720p playlist) and the CPU of the ladder
# and of the publisher. Needs `make build`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECS:-30}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
state=$(mktemp -d)
chmod 755 "$state"
export STATE_DIR=$state RTMP_PORT=$(port) ORIGIN_HTTP_PORT=$(port) API_PORT=$(port) EDGE_PORT=$(port)
export REDIS_PORT=$(port) RTMP_STAT_PORT=$(port) DISCOVERY_PORT=$(port) LLHLS_PORT=$(port) RTMP_PACKAGING_PORT=$(port)
export ABR=1 ORIGINS=1 PUBLIC_HOST=127.0.0.1
"$ROOT/scripts/up.sh" >"$state/up.log" 2>&1 &
up=$!
cleanup() {
  kill "$pub" 2>/dev/null || true
  kill -TERM "$up" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$state"
}
pub=
trap cleanup EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null && break; sleep 0.1; done
RTMP_PORT=$RTMP_PORT "$ROOT/scripts/stream.sh" >"$state/stream.log" 2>&1 &
pub=$!
pl=$state/origin1/hls/golive/720p/index.m3u8
for _ in $(seq 300); do [[ -s $pl ]] && break; sleep 0.1; done
sleep 4 # let the ladder settle
ladder=$(pgrep -f -- "-i rtmp://127.0.0.1:$RTMP_PACKAGING_PORT/hls/golive" | head -1)
[[ -n $ladder ]] || { echo "no ladder process found" >&2; exit 1; }
encoder=$(pgrep -f -- "rtmp://127.0.0.1:$RTMP_PORT/stream/" | head -1)
[[ -n $encoder ]] || { echo "no publisher process found" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# the last listed segment's media sequence number (names are clock-based)
last_seg() { awk -F: '/^#EXT-X-MEDIA-SEQUENCE:/ {m = $2} /^[^#]/ {n++} END {print m + n - 1}' "$pl"; }
hz=$(getconf CLK_TCK)
s0=$(last_seg) l0=$(ticks "$ladder") e0=$(ticks "$encoder") t0=$(date +%s.%N)
sleep "$secs"
s1=$(last_seg) l1=$(ticks "$ladder") e1=$(ticks "$encoder") t1=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$ladder/status")
frag=${ABR_FRAGMENT_SECS:-2}
echo "cores: $(nproc); publisher: ${STREAM_SIZE:-1280x720}, pattern ${STREAM_PATTERN:-smptehdbars}; ladder: ${ABR_LADDER:-720p:720:2500:128 480p:480:1000:96 240p:240:400:64}, preset ${ABR_PRESET:-superfast}; window ${secs}s"
awk -v s0="$s0" -v s1="$s1" -v f="$frag" -v t0="$t0" -v t1="$t1" -v l0="$l0" -v l1="$l1" -v e0="$e0" -v e1="$e1" -v hz="$hz" -v rss="$rss" 'BEGIN {
  wall = t1 - t0
  printf "ladder speed: %.2fx real time (%d segments of %ds in %.1fs)\n", (s1 - s0) * f / wall, s1 - s0, f, wall
  printf "ladder CPU: %.0f%% of one core, peak RSS %.0f MB\n", (l1 - l0) / hz / wall * 100, rss / 1024
  printf "publisher (stream.sh) CPU: %.0f%% of one core\n", (e1 - e0) / hz / wall * 100
}'
