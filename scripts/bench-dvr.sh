#!/usr/bin/env bash
# bench-dvr.sh: what a DVR window costs, against today's 8 s playlist, in
# one run on this machine.
#
# Two platforms side by side on spare ports (scripts/spare-platform.sh):
# "dvr" with DVR_WINDOW=$DVR_WINDOW (30m) and recordings on, "live" with
# DVR_WINDOW=0 and RECORDING_RETENTION=0 (today). Each gets DVR_STREAMS
# (20) streams, published from one pre-encoded 640x360 sample (x264 800
# kbit/s, 2 s keyframes, AAC) looped with `-c copy`, so the publishers cost
# little. After DVR_FILL seconds (1860: the window full, and a minute
# more), the same period on both:
#   1. playlist bytes per reload: full, gzip through the edge, delta
#      (_HLS_skip=YES), blocking delta (the next part);
#   2. CPU of each side's LL-HLS component and origin nginx, idle (60 s),
#      then each loaded by wrk (-t1 -c8, DVR_WRK_SECONDS) with full and
#      with delta playlists straight from the origin (every request is
#      rendered: no cache), alternating sides, DVR_ROUNDS rounds: req/s and
#      CPU ms per 1000 requests;
#   3. the LL-HLS component's memory (VmRSS);
#   4. disk per stream-hour (the window's segments and the recordings,
#      hard links counted once) against the bytes published;
#   5. seek-back start time on the player page (hls.js in chromium,
#      e2e/browser/dvr.mjs): 20 s back and 5/6 of the window back (25
#      minutes of a full 30-minute window).
# Prints a summary; the raw numbers go to DVR_OUT (target/bench-dvr/).
# Needs `make build browser-deps`, ffmpeg, wrk, chromium.
# Usage: scripts/bench-dvr.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
streams=${DVR_STREAMS:-20}
window=${DVR_WINDOW:-30m}
fill=${DVR_FILL:-1860}
wrk_secs=${DVR_WRK_SECONDS:-15}
rounds=${DVR_ROUNDS:-2}
out=${DVR_OUT:-$ROOT/target/bench-dvr}
mkdir -p "$out"
rm -f "$out"/*.env "$out/stop"
hz=$(getconf CLK_TCK)

ffmpeg -hide_banner -nostdin -loglevel error -y \
  -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -t 20 -c:v libx264 -preset veryfast -pix_fmt yuv420p -b:v 800k -maxrate 800k -bufsize 1600k \
  -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 64k -f flv "$out/sample.flv"
sample_bps=$(($(stat -c %s "$out/sample.flv") * 8 / 20))

# side <label> <DVR_WINDOW> <RECORDING_RETENTION>: a platform and its
# publishers, until $out/stop exists; its ports and pids in $out/<label>.env.
side() (
  label=$1
  extra=() names=()
  for i in $(seq 2 "$streams"); do
    k=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    extra+=("$k=s$i") names+=("$k")
  done
  SPARE_STREAM_KEYS=$(IFS=,; echo "${extra[*]}")
  export SPARE_STREAM_KEYS DVR_WINDOW=$2 RECORDING_RETENTION=$3
  source "$ROOT/scripts/spare-platform.sh"
  trap 'stop_platform' EXIT
  start_platform 0
  set -m
  (
    for k in "$key" "${names[@]}"; do
      ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$out/sample.flv" \
        -c copy -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$k" >>"$state/publishers.log" 2>&1 &
    done
    wait
  ) &
  pub=$!
  set +m
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$EDGE_PORT/golive/index.m3u8" | grep -q '#EXT-X-PART:' && break
    sleep 0.1
  done
  llhls=$(pgrep -f -n "rtmp-live-llhls" -P "$up" || true)
  [[ -z $llhls ]] && llhls=$(for p in $(pgrep -f rtmp-live-llhls); do
    grep -qz "HLS_PATH=$state/" "/proc/$p/environ" && echo "$p"; done | head -n 1)
  origin=$(cat "$state/origin1/nginx.pid")
  printf 'EDGE=%s\nORIGIN=%s\nLLHLS_PORT=%s\nLLHLS_PID=%s\nORIGIN_PID=%s\nSTATE=%s\nSTARTED=%s\n' \
    "$EDGE_PORT" "$ORIGIN_HTTP_PORT" "$LLHLS_PORT" "$llhls" "$origin" "$state" "$(date +%s)" >"$out/$label.env"
  while [[ ! -e $out/stop ]]; do sleep 1; done
)

side dvr "$window" 24h &
side live 0 0 &
trap 'touch "$out/stop"; wait' EXIT
for _ in $(seq 120); do [[ -s $out/dvr.env && -s $out/live.env ]] && break; sleep 1; done
[[ -s $out/dvr.env && -s $out/live.env ]] || { echo "bench-dvr: the platforms did not start" >&2; exit 1; }
val() { grep "^$2=" "$out/$1.env" | cut -d= -f2; }
echo "bench-dvr: $streams streams a side, sample $((sample_bps / 1000)) kbit/s; filling the $window window for $fill s"
t_end=$(($(date +%s) + fill))
while (($(date +%s) < t_end)); do
  left=$((t_end - $(date +%s)))
  sleep $((left < 300 ? left : 300)) &
  wait $!
  span=$(curl -sf "http://127.0.0.1:$(val dvr ORIGIN)/golive/index.m3u8" | awk -F'[:,]' '/^#EXTINF/ {s += $2} END {printf "%d", s}')
  echo "  window now ${span} s ($(((t_end - $(date +%s)) / 60)) min to go)"
done

# 1. Bytes per reload.
bytes() { curl -sf "$@" | wc -c; }
gz() { curl -sf -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "$1"; }
next_part() { # the playlist's current MSN and next part, as a blocking reload asks
  curl -sf "$1" | awk '/^#EXT-X-MEDIA-SEQUENCE:/ {split($0, a, ":"); m = a[2]}
    /^#EXTINF/ {m++; p = 0} /^#EXT-X-PART:/ {p++} END {print m, p}'
}
{
  for s in dvr live; do
    o="http://127.0.0.1:$(val $s ORIGIN)/golive/index.m3u8"
    e="http://127.0.0.1:$(val $s EDGE)/golive/index.m3u8"
    read -r msn part < <(next_part "$o")
    echo "bytes $s full=$(bytes "$o") gzip=$(gz "$e") delta=$(bytes "$o?_HLS_skip=YES")" \
      "blocking_delta=$(bytes "$o?_HLS_msn=$msn&_HLS_part=$part&_HLS_skip=YES")" \
      "segments=$(curl -sf "$o" | grep -c '^#EXTINF')"
  done
} | tee "$out/bytes.txt"

# 2. CPU, idle then loaded.
ticks() { # ticks <side>: the LL-HLS component's and the origin nginx's (master and workers)
  local l o t=0
  l=$(val "$1" LLHLS_PID) o=$(val "$1" ORIGIN_PID)
  echo -n "$(awk '{print $14 + $15}' "/proc/$l/stat") "
  for p in "$o" $(pgrep -P "$o"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
read -r dl0 do0 < <(ticks dvr)
read -r ll0 lo0 < <(ticks live)
sleep 60
read -r dl1 do1 < <(ticks dvr)
read -r ll1 lo1 < <(ticks live)
echo "idle 60s dvr llhls_ms=$(((dl1 - dl0) * 1000 / hz)) origin_ms=$(((do1 - do0) * 1000 / hz))" \
  "live llhls_ms=$(((ll1 - ll0) * 1000 / hz)) origin_ms=$(((lo1 - lo0) * 1000 / hz))" | tee "$out/idle.txt"
cat >"$out/paths.lua" <<LUA
local n, i = $streams, 0
request = function()
  i = i % n + 1
  local name = (i == 1) and "golive" or ("s" .. i)
  return wrk.format("GET", "/" .. name .. "/index.m3u8" .. (os.getenv("DVR_QUERY") or ""))
end
LUA
: >"$out/load.txt"
for r in $(seq "$rounds"); do
  for kind in full delta; do
    q=""; [[ $kind == delta ]] && q="?_HLS_skip=YES"
    for s in dvr live; do
      read -r l0 o0 < <(ticks "$s")
      DVR_QUERY=$q wrk -t1 -c8 -d"${wrk_secs}s" -s "$out/paths.lua" "http://127.0.0.1:$(val $s ORIGIN)" >"$out/wrk.txt"
      reqs=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
      if grep -q 'Non-2xx' "$out/wrk.txt"; then
        echo "bench-dvr: $s $kind: $(grep 'Non-2xx' "$out/wrk.txt")" >&2
        exit 1
      fi
      read -r l1 o1 < <(ticks "$s")
      echo "round $r $kind $s requests=$reqs rps=$((reqs / wrk_secs))" \
        "llhls_ms_per_1k=$(((l1 - l0) * 1000 * 1000 / hz / (reqs > 0 ? reqs : 1)))" \
        "origin_ms_per_1k=$(((o1 - o0) * 1000 * 1000 / hz / (reqs > 0 ? reqs : 1)))" | tee -a "$out/load.txt"
    done
  done
done

# 3. Memory.
for s in dvr live; do
  echo "rss $s llhls_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$(val $s LLHLS_PID)/status")"
done | tee "$out/rss.txt"

# 4. Disk per stream-hour.
st=$(val dvr STATE)
elapsed=$(($(date +%s) - $(val dvr STARTED)))
disk=$(du -scb "$st/origin1/hls" "$st/origin1/recordings" | awk 'END {print $1}')
window_disk=$(du -sb "$st/origin1/hls" | awk '{print $1}')
echo "disk dvr total_bytes=$disk hls_bytes=$window_disk elapsed_s=$elapsed streams=$streams" \
  "per_stream_hour_mb=$((disk * 3600 / elapsed / streams / 1000000))" \
  "published_per_stream_hour_mb=$((sample_bps / 8 * 3600 / 1000000))" | tee "$out/disk.txt"

# 5. Seek-back start time on the player page.
: >"$out/seek.txt"
# 20 s back, and to near the start of the window (25 minutes of a full
# 30-minute one)
span=$(curl -sf "http://127.0.0.1:$(val dvr ORIGIN)/golive/index.m3u8" | awk -F'[:,]' '/^#EXTINF/ {s += $2} END {printf "%d", s}')
deep=$((span * 5 / 6))
backs=(20)
((span > 200)) && backs+=("$deep")
for back in "${backs[@]}"; do
  prof=$(mktemp -d)
  opts=$(printf '{"url":"http://127.0.0.1:%s/#golive","chromium":"/usr/bin/chromium","userDataDir":"%s","window":%s,"windowTimeout":60,"back":%s,"hold":5}' \
    "$(val dvr EDGE)" "$prof" $((back + 30)) "$back")
  (cd "$ROOT/e2e/browser" && node dvr.mjs "$opts") | sed -n 's/^DVR_STATE //p' |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("seek back=%s seek_start_ms=%s rate=%.3f window=%.0f live_after_ms=%s error=%s" % (sys.argv[1], r.get("seek_start_ms"), r.get("rewound_rate") or 0, r.get("window") or 0, r.get("live_after_ms"), r.get("error","")[:80]))' "$back" |
    tee -a "$out/seek.txt"
  rm -rf "$prof"
done
echo "bench-dvr: done; raw numbers in $out"
