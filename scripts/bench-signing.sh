#!/usr/bin/env bash
# bench-signing.sh: signed playback links against plain ones, on the edge as
# `make up` renders it (the platform on spare ports, one 320x240 stream),
# same run: wrk alternates, round after round, between the plain URL of an
# object and the same object through 1,000 different signed links (one per
# simulated viewer, `/t/<token>/golive/...`, issued by the API), for a
# segment and for the playlist. Reports, per object, the req/s ratio
# signed/plain and the edge workers' CPU per request plain/signed (medians
# of the rounds) and the edge's cache hit ratio of each
# phase (its access log's `cache` field): signed viewers must share the
# plain viewers' cached objects. Needs `make build` and wrk.
# Usage: scripts/bench-signing.sh [seconds per wrk run]   (ROUNDS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${ROUNDS:-5}
source "$ROOT/scripts/spare-platform.sh"
trap stop_platform EXIT
start_platform 0
set -m
ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=25 \
  -re -f lavfi -i sine=frequency=440:sample_rate=44100 -c:v libx264 -preset veryfast \
  -pix_fmt yuv420p -g 50 -c:a aac -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$key" \
  >"$state/publisher.log" 2>&1 &
pub=$!
set +m
edge="http://127.0.0.1:$EDGE_PORT"
seg=
for _ in $(seq 600); do
  seg=$(curl -sf "$edge/golive/index.m3u8" | grep -v '^#' | grep . | head -n1 || true)
  [[ -n $seg ]] && break
  sleep 0.1
done
[[ -n $seg ]] || { tail -n 20 "$state/up.log" >&2; echo "bench-signing: not live" >&2; exit 1; }

operator=$(cat "$state/api-operator-token")
paths=$state/tokens.txt
python3 - "http://127.0.0.1:$API_PORT/streams/golive/playback-tokens" "$operator" >"$paths" <<'PY'
import json, sys, urllib.request
for _ in range(1000):
    req = urllib.request.Request(sys.argv[1], data=b"", method="POST",
                                 headers={"Authorization": "Bearer " + sys.argv[2]})
    print(json.load(urllib.request.urlopen(req))["token"])
PY
# wrk: each request the next viewer's link, or the plain URL: the same
# script both ways (wrk shares the 2 cores; its per-request work must not
# differ between the two).
cat >"$state/links.lua" <<'LUA'
local prefixes, i, object = {}, 0, os.getenv("OBJECT")
for line in io.lines(os.getenv("PREFIXES")) do prefixes[#prefixes + 1] = line end
request = function()
  i = i % #prefixes + 1
  return wrk.format("GET", prefixes[i] .. "/golive/" .. object)
end
LUA
sed 's|^|/t/|' "$paths" >"$state/signed.txt"
sed 's|.*||' "$paths" >"$state/plain.txt"
log=$state/edge-access.log
hz=$(getconf CLK_TCK)
master=$(cat "$state/edge.pid")
ticks() { local t=0 w; for w in $(pgrep -P "$master" -f 'worker process'); do t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done; echo "$t"; }
run() { # run <plain|signed> <object>: prints "req/s cpu-µs-per-request hits total"
  local from t0 t1
  from=$(wc -l <"$log") t0=$(ticks)
  out=$(PREFIXES=$state/$1.txt OBJECT=$2 wrk -t1 -c32 -d"${secs}s" -s "$state/links.lua" "$edge")
  t1=$(ticks)
  if grep -q "Non-2xx" <<<"$out"; then echo "bench-signing: non-2xx answers ($1 $2)" >&2; exit 1; fi
  tail -n +"$((from + 1))" "$log" | awk -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    -v cpu="$(((t1 - t0) * 1000000 / hz))" '
    /"status":200/ { n++; if (/"cache":"HIT"/) h++ } END { printf "%s %.2f %d %d\n", rps, cpu / n, h, n }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "cores: $(nproc); edge: the rendered template, $(grep -c . "$paths") signed links; wrk -t1 -c32 -d${secs}s per run, $rounds rounds alternating which goes first"
for object in "$seg" index.m3u8; do
  ratios=() cratios=() ph=0 pn=0 sh=0 sn=0
  for r in $(seq "$rounds"); do
    if ((r % 2)); then read -r prps pcpu h n < <(run plain "$object"); read -r srps scpu h2 n2 < <(run signed "$object")
    else read -r srps scpu h2 n2 < <(run signed "$object"); read -r prps pcpu h n < <(run plain "$object"); fi
    ph=$((ph + h)) pn=$((pn + n)) sh=$((sh + h2)) sn=$((sn + n2))
    ratios+=("$(awk -v a="$srps" -v b="$prps" 'BEGIN { printf "%.3f", a / b }')")
    cratios+=("$(awk -v a="$pcpu" -v b="$scpu" 'BEGIN { printf "%.3f", a / b }')")
    echo "  $object round $r: plain $prps req/s ($pcpu µs CPU/req), signed $srps req/s ($scpu µs CPU/req)"
  done
  echo "$object: req/s signed/plain rounds ${ratios[*]} -> median $(median "${ratios[@]}");" \
    "edge CPU per request plain/signed rounds ${cratios[*]} -> median $(median "${cratios[@]}");" \
    "cache hits plain $(awk -v h=$ph -v n=$pn 'BEGIN { printf "%.4f", h / n }') ($ph/$pn)," \
    "signed $(awk -v h=$sh -v n=$sn 'BEGIN { printf "%.4f", h / n }') ($sh/$sn)"
done
