#!/usr/bin/env bash
# bench-latency.sh: glass-to-glass latency of live playback through the edge,
# LL-HLS against the plain playlist, in a real browser; and the requests
# LL-HLS viewers cost at the edge and at the origin.
#
# Starts the platform (scripts/up.sh, one origin, spare ports), publishes
# frames that carry the publisher's wall clock (scripts/clock-frames.py ->
# ffmpeg x264 veryfast/zerolatency 640x360@30, keyframes every 2 s, AAC),
# then runs e2e/browser/latency.mjs (headless chromium + hls.js reading the
# clock from every displayed frame) against the edge URL:
#   1. LL-HLS, hls.js defaults
#   2. LL-HLS, the player page's LL settings (player/player.js HLS_CONFIG_LL)
#   2b. LL-HLS with the plain playlists' settings (HLS_CONFIG: liveSyncDuration
#      2.5 overrides PART-HOLD-BACK), for comparison
#   2c. as 1, while BENCH_VIEWERS simulated LL viewers watch the same stream
#   3. BENCH_VIEWERS (50) simulated LL viewers (e2e/browser/ll-clients.mjs):
#      requests per viewer at the edge, at the origin per part
#   4. plain playlist (the LL component stopped: the origin serves the
#      file), hls.js defaults
#   5. plain playlist, the player page's settings for it (HLS_CONFIG)
# BENCH_SECS (60) measured per run after BENCH_WARMUP (10) s of playing.
# BENCH_ONLY=ll-defaults runs 1 only (e.g. BENCH_SECS=600 for a 10-minute
# stall count). BENCH_ABR=1: the same with ABR on, the player reading the
# master playlist (the ladder's renditions, each with its LL parts).
# Needs `make build browser-deps` and Debian's chromium.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECS:-60}
warmup=${BENCH_WARMUP:-10}
viewers=${BENCH_VIEWERS:-50}
abr=${BENCH_ABR:-0}
source "$ROOT/scripts/spare-platform.sh"
trap stop_platform EXIT
start_platform "$abr"

# The publisher in its own process group (generator | ffmpeg).
set -m
(python3 "$ROOT/scripts/clock-frames.py" 30 640 360 |
  ffmpeg -hide_banner -nostdin -loglevel error \
    -f rawvideo -pix_fmt gray -s 640x360 -framerate 30 -i - \
    -re -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -b:v 1000k \
    -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 64k \
    -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$key") >"$state/publisher.log" 2>&1 &
pub=$!
set +m
src="http://127.0.0.1:$EDGE_PORT/golive/index.m3u8"
media=$src
if [[ $abr == 1 ]]; then
  src="http://127.0.0.1:$EDGE_PORT/golive/master.m3u8"
  media="http://127.0.0.1:$EDGE_PORT/golive/240p/index.m3u8"
fi
for _ in $(seq 300); do
  curl -sf "$src" >/dev/null && curl -sf "$media" | grep -q '#EXT-X-PART:' && break
  sleep 0.1
done
sleep 4

cd "$ROOT/e2e/browser"
summary() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const l = r.latency_ms || {};
    console.log(`${process.argv[1]}: latency p50 ${l.p50} ms, p95 ${l.p95} ms, min ${l.min}, max ${l.max} ms over ${r.frames} frames; ` +
      `first frame ${r.first_frame_ms} ms; stalls ${r.stalls} (${r.stall_ms} ms); parts ${r.parts_loaded}, segments ${r.segments_loaded}; ` +
      `hls.latency median ${r.hls_latency_median}; unreadable frames ${r.unreadable_frames}; fatal ${JSON.stringify(r.fatal)}${r.error ? "; error " + r.error : ""}`);
  ' "$1"
}
measure() {
  local what=$1 config=$2
  node latency.mjs "{\"src\":\"$src\",\"config\":\"$config\",\"seconds\":$secs,\"warmup\":$warmup}" |
    tee -a "$state/latency.jsonl" | summary "$what"
}
echo "cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg); $secs s measured per run after $warmup s"
measure "LL-HLS, hls.js defaults" defaults
[[ ${BENCH_ONLY:-} == ll-defaults ]] && exit 0
measure "LL-HLS, player page (LL settings)" player-ll
measure "LL-HLS, plain playlists' settings" player
# The same as 1, with BENCH_VIEWERS simulated LL viewers waiting for the same
# parts at the same edge (the browser shares their collapsed requests).
node ll-clients.mjs "{\"src\":\"$src\",\"viewers\":$viewers,\"seconds\":$((secs + warmup + 15))}" >/dev/null &
crowd=$!
measure "LL-HLS, hls.js defaults, $viewers more LL viewers" defaults
wait "$crowd"

alog=$state/origin1/access.log
elog=$state/edge-access.log
o0=$(wc -l <"$alog") e0=$(wc -l <"$elog")
clients=$(node ll-clients.mjs "{\"src\":\"$src\",\"viewers\":$viewers,\"seconds\":30}")
sleep 1
o_pl=$(tail -n +"$((o0 + 1))" "$alog" | grep -c '_HLS_msn' || true)
o_206=$(tail -n +"$((o0 + 1))" "$alog" | grep -c '\.ts[^"]*" 206 ' || true)
e_all=$(tail -n +"$((e0 + 1))" "$elog" | wc -l)
echo "$clients" | node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const [opl, o206, eall] = process.argv.slice(1).map(Number);
  const parts = r.parts_seen;
  console.log(`${r.viewers} LL viewers, ${r.seconds} s: ${parts} parts; at the edge ${eall} requests ` +
    `(${(eall / r.viewers / parts).toFixed(2)} per viewer per part), errors ${r.errors}; ` +
    `at the origin ${opl} blocking playlist requests (${(opl / parts).toFixed(2)} per part) and ` +
    `${o206} part fetches (${(o206 / parts).toFixed(2)} per part)`);
' "$o_pl" "$o_206" "$e_all"

# The plain playlist: stop the LL component; the origin serves the file.
for p in $(pgrep -f rtmp-live-llhls); do
  if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "HLS_PATH=$state/origin1/hls"; then kill "$p"; fi
done
sleep 3
curl -sf "$src" | grep -q '#EXT-X-PART:' && { echo "LL component still answering" >&2; exit 1; }
measure "plain playlist, hls.js defaults" defaults
measure "plain playlist, player page" player
