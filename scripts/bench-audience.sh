#!/usr/bin/env bash
# bench-audience.sh: the viewer counts (edge_router_viewers, the API's
# `viewers`) against the truth, and what counting costs the edge.
#
# 1. The platform on spare ports (one origin, a 320x240 test stream) with a
#    second edge beside `make up`'s: the same rendered edge.conf on another
#    port (so another edge id, $hostname-<port>), with its own pid, caches,
#    temp folders and logs. The edges count viewers by EDGE_VIEWER_KEY,
#    `$remote_addr/$http_x_playback_session_id` (AUDIENCE_KEY=addr-session,
#    the default) or `$remote_addr` (AUDIENCE_KEY=addr).
# 2. conform's `rtmp-live-audience`: AUDIENCE_VIEWERS (1000) viewers over
#    both edges, half with addresses of their own, half AUDIENCE_GROUP (10)
#    per address with an X-Playback-Session-Id each; each reloads the
#    playlist every second and fetches each new segment. Once the API's
#    count held still for 10 s: truth, API count, each edge's count. Then
#    half leave (AUDIENCE_KEEP=0.5): the seconds until the API's count is
#    within 5 % of the rest and stays there. Its summary goes to stderr, its
#    JSON report to AUDIENCE_OUT (default target/bench-audience.json).
# 3. The cost of counting: the same rendered edge.conf twice more, one
#    worker each, both pinned to CPU 1 (everything else to CPU 0): as is
#    ("on") and with `edge_router_viewers off;` in the stream location
#    ("off"), each loaded at the same moment by its own wrk (-t1 -c32,
#    AUDIENCE_WRK_SECONDS, 1,000 session ids in turn), for the playlist and
#    a segment, AUDIENCE_ROUNDS rounds: the req/s ratio on/off and the CPU
#    per request off/on (the medians). Control rounds put a second "off" in
#    the "on"'s place: their spread is the method's own. Both setups have
#    `tcp_nopush off` (AUDIENCE_NOPUSH; see below why). AUDIENCE_COST=0
#    skips this part.
# Exits nonzero when something fails to run, not when a goal is missed (the
# summary says so). Needs `make build`, ffmpeg, wrk, taskset.
# Usage: scripts/bench-audience.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
viewers=${AUDIENCE_VIEWERS:-1000}
group=${AUDIENCE_GROUP:-10}
keep=${AUDIENCE_KEEP:-0.5}
key_mode=${AUDIENCE_KEY:-addr-session}
wrk_secs=${AUDIENCE_WRK_SECONDS:-10}
rounds=${AUDIENCE_ROUNDS:-3}
out=${AUDIENCE_OUT:-$ROOT/target/bench-audience.json}
audience=$ROOT/target/release/rtmp-live-audience
[[ -x $audience ]] || { echo "bench-audience: $audience not built (make build)" >&2; exit 1; }
case $key_mode in
  addr-session) export EDGE_VIEWER_KEY='$remote_addr/$http_x_playback_session_id' ;;
  addr) export EDGE_VIEWER_KEY='$remote_addr' ;;
  *) echo "bench-audience: AUDIENCE_KEY is addr-session or addr" >&2; exit 1 ;;
esac
ulimit -n "$(ulimit -Hn)" # a socket per viewer
source "$ROOT/scripts/spare-platform.sh"
extra=() # the nginx prefixes started here (stopped at exit)
stop_extra() {
  local d
  for d in "${extra[@]}"; do [[ -s $d/edge.pid ]] && kill "$(cat "$d/edge.pid")" 2>/dev/null; done
  return 0
}
trap 'stop_extra; stop_platform' EXIT
start_platform 0
set -m
ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30 \
  -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -b:v 300k \
  -g 60 -keyint_min 60 -sc_threshold 0 -an \
  -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$key" >"$state/publisher.log" 2>&1 &
pub=$!
set +m

live() { # live <port>: the stream's playlist is served there within 60 s
  local _
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/golive/index.m3u8" | grep -q '#EXT-X-PART:' && return 0
    sleep 0.1
  done
  return 1
}
if ! live "$EDGE_PORT"; then
  echo "bench-audience: the stream is not live at the edge after 60 s" >&2
  tail -n 20 "$state/up.log" "$state/publisher.log" >&2
  exit 1
fi

# derive <name> <port> [sed args]: $state/<name>/nginx.conf, the rendered
# edge.conf on 127.0.0.1:<port> with its own pid, caches, temp folders,
# logs and edge id, as a daemon (started by `start`).
derive() {
  local dir=$state/$1 port=$2
  shift 2
  mkdir -p "$dir/tmp"
  sed -e "s|$state/edge|$dir/edge|g" -e "s|$state/tmp/|$dir/tmp/|g" \
    -e "s|^\( *\)listen [^;]*;|\1listen 127.0.0.1:$port;|" -e 's|^daemon off;|daemon on;|' \
    -e "s|^error_log stderr notice;|error_log $dir/error.log warn;|" \
    -e "s|/edges/\$hostname-$EDGE_PORT/|/edges/\$hostname-$port/|" "$@" "$state/edge.conf" >"$dir/nginx.conf"
  if ! grep -q "listen 127.0.0.1:$port;" "$dir/nginx.conf" || ! grep -q "/edges/\$hostname-$port/" "$dir/nginx.conf"; then
    echo "bench-audience: $dir/nginx.conf: the port or the edge id was not replaced" >&2
    exit 1
  fi
}
start() { # start <name>
  extra+=("$state/$1")
  /usr/sbin/nginx -p "$state/$1" -c "$state/$1/nginx.conf" -e "$state/$1/error.log"
}

# 1. the second edge
edge2_port=$(port)
derive edge2 "$edge2_port"
start edge2
live "$edge2_port" || { echo "bench-audience: the second edge does not serve the stream" >&2; cat "$state/edge2/error.log" >&2; exit 1; }
echo "edges: 127.0.0.1:$EDGE_PORT and 127.0.0.1:$edge2_port (edge ids $(hostname)-$EDGE_PORT, $(hostname)-$edge2_port)," \
  "viewer key $EDGE_VIEWER_KEY; API 127.0.0.1:$API_PORT; cores: $(nproc)"

# 2. the counts
mkdir -p "$(dirname "$out")"
if ! "$audience" --viewers "$viewers" --identity mixed --group "$group" --key "$key_mode" --segments --keep "$keep" \
  --edge "http://127.0.0.1:$EDGE_PORT/golive/index.m3u8" --edge "http://127.0.0.1:$edge2_port/golive/index.m3u8" \
  --metrics "http://127.0.0.1:$EDGE_PORT/metrics" --metrics "http://127.0.0.1:$edge2_port/metrics" \
  --api "http://127.0.0.1:$API_PORT/streams/golive" >"$out" 2>"$out.log"; then
  cat "$out.log" >&2
  echo "bench-audience: rtmp-live-audience failed" >&2
  exit 1
fi
# the summary (every reading is in the log and the report)
grep -v '^\(measure\|drop\) *t=' "$out.log"
echo "report: $out, readings: $out.log"
# the edges' warnings, if any (the first edge's are in the platform's log),
# by message, request and upstream
{ grep -h '\[warn\]\|\[error\]\|\[crit\]' "$state/edge2/error.log" | sed 's/^/edge 2: /' || true
  grep '^\[edge\]' "$state/up.log" | grep '\[warn\]\|\[error\]\|\[crit\]' | sed 's/^/edge 1: /' || true; } |
  sed -e 's/: [^[]*\[\(warn\|error\|crit\)\] [0-9#]*: \*[0-9]* /: [\1] /' -e 's/, client: [^,]*//' -e 's/, server: [^,]*//' \
    -e 's/, host: .*//' -e 's|/[0-9-]*\.m4s|/N.m4s|g' |
  sort | uniq -c | sort -rn | head -n 8 || true

[[ ${AUDIENCE_COST:-1} == 1 ]] || exit 0

# 3. the cost: "on" and "off" (and "ctl", a second "off") on CPU 1 alone
descendants() { local p; for p in "$@"; do echo "$p"; descendants $(pgrep -P "$p" || true); done; }
for p in $(descendants "$up" "$pub" "$(cat "$state/edge2/edge.pid")"); do taskset -a -cp 0 "$p" >/dev/null 2>&1 || true; done
# tcp_nopush: the rendered edge's `on` holds every keep-alive answer from
# the cache whose body does not fill its last packet ~44 ms on loopback (a
# 75 KB segment: 25 answers a second per connection, 24,700 with `off`;
# the same without the module): segments would measure that wait, not the
# work. Both setups get AUDIENCE_NOPUSH (off), so they still differ only in
# edge_router_viewers.
one_worker=(-e 's|^worker_processes .*|worker_processes 1; worker_cpu_affinity 10;|'
  -e "s|^\( *\)tcp_nopush on;|\1tcp_nopush ${AUDIENCE_NOPUSH:-off};|")
off=(-e 's|^\( *\)edge_router \$edge_stream;|&\n\1edge_router_viewers off;|')
read -r on_port off_port ctl_port < <(ports 3)
derive on "$on_port" "${one_worker[@]}"
derive off "$off_port" "${one_worker[@]}" "${off[@]}"
derive ctl "$ctl_port" "${one_worker[@]}" "${off[@]}"
grep -q 'edge_router_viewers off;' "$state/off/nginx.conf" || { echo "bench-audience: edge_router_viewers off not added" >&2; exit 1; }
# the same but for their own paths and port, and that line
same() { sed -e "s|$state/$1/|DIR/|g" -e "s|$2|PORT|g" "$state/$1/nginx.conf"; }
if [[ $(diff <(same on "$on_port") <(same off "$off_port") | grep -c '^[<>]') != 1 ]]; then
  echo "bench-audience: 'on' and 'off' differ in more than edge_router_viewers:" >&2
  diff <(same on "$on_port") <(same off "$off_port") >&2 || true
  exit 1
fi
start on
start off
start ctl
for p in $on_port $off_port $ctl_port; do live "$p" || { echo "bench-audience: 127.0.0.1:$p does not serve the stream" >&2; exit 1; }; done
segment=$(curl -sf "http://127.0.0.1:$EDGE_PORT/golive/index.m3u8" | grep -v '^#' | tail -n 1)
for p in $on_port $off_port $ctl_port; do
  for obj in index.m3u8 "$segment"; do curl -sf -o /dev/null "http://127.0.0.1:$p/golive/$obj"; done
done
cat >"$state/sessions.lua" <<'EOF'
-- 1,000 viewers behind this one address, each with its session id, in turn
local reqs, i = {}, 0
function init(args)
  for n = 1, 1000 do
    reqs[n] = wrk.format(nil, nil, { ["X-Playback-Session-Id"] = string.format("%08X-0000-4000-8000-%012X", n * 2654435761 % 4294967296, n) })
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
EOF
hz=$(getconf CLK_TCK)
worker_ticks() { # worker_ticks <name>
  local t=0 w
  for w in $(pgrep -P "$(cat "$state/$1/edge.pid")"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done
  echo "$t"
}
together() { # together <object> <setup> <setup port> -> "rps ref-rps cpu/req ref-cpu/req cpu% ref-cpu%" (ref: off)
  local o=$1 t0 r0 n rn
  t0=$(worker_ticks "$2") r0=$(worker_ticks off)
  taskset -c 0 wrk -t1 -c32 -d"${wrk_secs}s" -s "$state/sessions.lua" "http://127.0.0.1:$off_port/golive/$o" >"$state/wrk-ref" &
  local rw=$!
  taskset -c 0 wrk -t1 -c32 -d"${wrk_secs}s" -s "$state/sessions.lua" "http://127.0.0.1:$3/golive/$o" >"$state/wrk-one" &
  local ow=$!
  wait "$rw" "$ow"
  if grep -q "Non-2xx" "$state/wrk-ref" "$state/wrk-one"; then echo "bench-audience: non-2xx answers ($o)" >&2; grep -h -A1 "Non-2xx" "$state/wrk-ref" "$state/wrk-one" >&2; exit 1; fi
  n=$(awk '/requests in/ {print $1}' "$state/wrk-one") rn=$(awk '/requests in/ {print $1}' "$state/wrk-ref")
  awk -v a="$(awk '/Requests\/sec/ {print $2}' "$state/wrk-one")" -v b="$(awk '/Requests\/sec/ {print $2}' "$state/wrk-ref")" \
    -v t="$(($(worker_ticks "$2") - t0))" -v rt="$(($(worker_ticks off) - r0))" -v n="$n" -v rn="$rn" -v hz="$hz" -v s="$wrk_secs" \
    'BEGIN { printf "%s %s %.2f %.2f %.0f %.0f\n", a, b, t / hz * 1e6 / n, rt / hz * 1e6 / rn, t / hz / s * 100, rt / hz / s * 100 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo
echo "cost of counting: 'on' (the rendered edge.conf) and 'off' (+ edge_router_viewers off), one worker each, both on CPU 1,"
echo "each with its own wrk -t1 -c32 -d${wrk_secs}s (1,000 session ids) on CPU 0 at the same moment; 'ctl' is a second 'off';"
echo "tcp_nopush ${AUDIENCE_NOPUSH:-off} in both"
echo "(ratio: req/s setup / off; cpu-ratio: CPU per request off / setup; cpu%: the worker's share of a core)"
printf '%-14s %-5s %10s %10s %8s %8s %6s %6s %7s %9s\n' object setup req/s off-req/s µs/req off-µs cpu% off% ratio cpu-ratio
summary=()
for obj in index.m3u8 "$segment"; do
  for setup in on ctl; do
    ratios=() cratios=()
    [[ $setup == on ]] && p=$on_port || p=$ctl_port
    for ((r = 0; r < rounds; r++)); do
      read -r rps ref_rps cpu ref_cpu pct ref_pct < <(together "$obj" "$setup" "$p")
      ratio=$(awk -v a="$rps" -v b="$ref_rps" 'BEGIN { printf "%.3f", a / b }')
      cratio=$(awk -v a="$ref_cpu" -v b="$cpu" 'BEGIN { printf "%.3f", a / b }')
      printf '%-14s %-5s %10s %10s %8s %8s %6s %6s %7s %9s\n' "$obj" "$setup" "$rps" "$ref_rps" "$cpu" "$ref_cpu" "$pct" "$ref_pct" "$ratio" "$cratio"
      ratios+=("$ratio") cratios+=("$cratio")
    done
    summary+=("$obj $setup/off: req/s ratio rounds ${ratios[*]} -> median $(median "${ratios[@]}"); cpu per request off/$setup rounds ${cratios[*]} -> median $(median "${cratios[@]}")")
  done
done
printf '%s\n' "${summary[@]}"
