#!/usr/bin/env bash
# bench-edge.sh: the edge module with a warm route cache versus the same
# nginx proxying to a fixed keepalive upstream, same run, same settings
# (no proxy cache on either side), for a playlist and a 500 KB segment; then
# the latency a route-cache miss adds. Needs `make build`.
# Usage: scripts/bench-edge.sh [seconds per wrk run]
# SEMANTICS=template compares the edge as `make up` renders it with the same
# rendered configuration minus the module (see template_conf below), for a
# playlist, a blocking reload and a segment.
#
# With two or more CPUs (PIN=1, the default there) the proxying nginx's one
# worker has CPU 1 to itself (`worker_cpu_affinity`) and everything else
# (wrk, the origin, the API, Redis) runs on CPU 0: both setups then proxy on
# the same, otherwise idle core, which removes most of the run-to-run spread
# of an unpinned run. Its CPU time per request is then the module's cost
# undiluted; the throughput ratio is reported too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
workers=${EDGE_WORKERS:-1}
if [[ -z ${PIN:-} ]]; then PIN=$(($(nproc) >= 2)); fi
if ((PIN)); then
  proxy_affinity="worker_cpu_affinity 10;" others_affinity="worker_cpu_affinity 01;" on_cpu0=(taskset -c 0)
else
  proxy_affinity="" others_affinity="" on_cpu0=()
fi
tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers may run as another user
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port) aport=$(port) oport=$(port) eport=$(port) fport=$(port) f2port=$(port)
NGINX=/usr/sbin/nginx
cleanup() {
  for d in origin edge fixed fixed2; do [[ -f $tmp/$d/nginx.pid ]] && kill "$(cat "$tmp/$d/nginx.pid")" 2>/dev/null || true; done
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
[[ -n ${HOLD:-} ]] && trap 'cleanup' INT

main() { # main <dir> <workers> <load module?> [affinity]
  echo "daemon on; master_process on; worker_processes $2; ${4:-} pid $1/nginx.pid; error_log $1/error.log warn;"
  [[ $3 == 1 ]] && echo "load_module $ROOT/target/release/libngx_edge_router.so;"
  echo "events { worker_connections 4096; }"
}
common() {
  echo "access_log off; client_body_temp_path $1/cb; proxy_temp_path $1/p; fastcgi_temp_path $1/f; uwsgi_temp_path $1/u; scgi_temp_path $1/s;"
  echo "proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffers 16 64k;"
}
# The edge: the module's minimal setup, without the template's proxy cache,
# CORS and error pages (the reference has none either). Its directives are
# checked against nginx/edge.conf.template by ngx-edge-router/tests/
# template_parity.rs (PRINT_EDGE_CONF=1 prints it and exits).
edge_conf() { # edge_conf <valid>
  main "$tmp/edge" "$workers" 1 "$proxy_affinity"; echo "http { $(common "$tmp/edge")
  edge_router_zone routes 10m;
  upstream edge_origins { edge_router_upstream; keepalive 64; }
  server { listen 127.0.0.1:$eport;
    location ~ \"^/([^/]+)/[^?]+\$\" { edge_router \$1; edge_router_api /_api; edge_router_valid $1; edge_router_origins 127.0.0.1:$oport; proxy_pass http://edge_origins; }
    location = /metrics { edge_router_metrics; }
    location ^~ /_api/ { internal; proxy_pass http://127.0.0.1:$aport/streams/; proxy_pass_request_headers off; proxy_pass_request_body off; proxy_next_upstream error timeout http_502 http_503 http_504; } } }"
}
if [[ -n ${PRINT_EDGE_CONF:-} ]]; then edge_conf 5s; exit 0; fi

# SEMANTICS=template: the edge exactly as `make up` renders
# nginx/edge.conf.template (proxy caches, playlists cached per 200 ms slot
# and per delivery directive, collapsing, the held-request limit, CORS, the
# JSON access log), and as the reference the same rendered file with the
# module taken out (scripts/edge-reference.sh, without collapsing: nginx's
# lock would make every playlist miss's waiters sleep 500 ms). Both answer
# from the same caches with keys of the same length; what differs is the
# module's work per request.
template_conf() { # template_conf <dir> <port> <module: 1 | 0>
  local out=$1/nginx.conf
  mkdir -p "$1/tmp"
  [[ -s $tmp/playback-secret ]] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/playback-secret"
  EDGE_MODULE=$ROOT/target/release/libngx_edge_router.so NGINX_USER="nobody nogroup" \
    EDGE_WORKERS=$workers STATE_DIR=$1 API_HOST=127.0.0.1:$aport EDGE_PORT=127.0.0.1:$2 \
    EDGE_ORIGINS=127.0.0.1:$oport EDGE_ROUTE_VALID=5s EDGE_ROUTE_NEGATIVE=1s EDGE_ROUTE_STALE=15m \
    EDGE_ROUTE_GRACE=8s EDGE_VIEWER_KEY='$remote_addr' EDGE_DEBUG_HEADERS=0 EDGE_CORS_ORIGIN='*' \
    EDGE_RESOLVER=127.0.0.1 PLAYER_DIR=$ROOT/player EDGE_PLAYBACK_SIGNED=off \
    EDGE_PLAYBACK_SECRET_FILE="$tmp/playback-secret" EDGE_API_TOKEN=bench-edge-token-0123456789 \
    "$ROOT/target/release/rtmp-live-render" file \
    "$ROOT/nginx/edge.conf.template" "$out.rendered"
  local run=(-e 's|^daemon off;|daemon on;|' -e "s|^pid .*|pid $1/nginx.pid;|" -e "s|^error_log stderr notice;|error_log $1/error.log warn;|"
    -e "s|^worker_processes .*|&${proxy_affinity:+ $proxy_affinity}|")
  if [[ $3 == 1 ]]; then
    sed "${run[@]}" "$out.rendered" >"$out"
  else
    "$ROOT/scripts/edge-reference.sh" "$out.rendered" "127.0.0.1:$oport" off | sed "${run[@]}" >"$out"
  fi
}

"${on_cpu0[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
API_INSECURE_NO_AUTH=1 API_LISTEN=127.0.0.1:$aport REDIS_URL=redis://127.0.0.1:$rport RUST_LOG=warn STREAM_TTL_SECS=3600 \
  "${on_cpu0[@]}" "$ROOT/target/release/rtmp-live-api" >"$tmp/api.log" 2>&1 &

mkdir -p "$tmp/origin/html/golive" "$tmp/edge" "$tmp/fixed" "$tmp/fixed2"
for i in $(seq 0 5); do echo -e "#EXTINF:2.000,\n$i.ts"; done | { echo -e "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0"; cat; } >"$tmp/origin/html/golive/index.m3u8"
head -c 500000 /dev/urandom >"$tmp/origin/html/golive/1.ts"
{ main "$tmp/origin" 1 0 "$others_affinity"; echo "http { $(common "$tmp/origin") keepalive_requests 100000; server { listen 127.0.0.1:$oport; root $tmp/origin/html; location = /status { stub_status; } } }"; } >"$tmp/origin/nginx.conf"
{ main "$tmp/fixed" "$workers" 0 "$proxy_affinity"; echo "http { $(common "$tmp/fixed")
  upstream fixed { server 127.0.0.1:$oport; keepalive 64; }
  server { listen 127.0.0.1:$fport; location ~ \"^/([^/]+)/[^?]+\$\" { proxy_pass http://fixed; } } }"; } >"$tmp/fixed/nginx.conf"
# A second, identical reference: the control of the "both at once" rounds.
sed -e "s|$tmp/fixed|$tmp/fixed2|g" -e "s|listen 127.0.0.1:$fport;|listen 127.0.0.1:$f2port;|" "$tmp/fixed/nginx.conf" >"$tmp/fixed2/nginx.conf"
objects=(index.m3u8 1.ts) conns=64
if [[ ${SEMANTICS:-minimal} == template ]]; then
  template_conf "$tmp/edge" "$eport" 1
  template_conf "$tmp/fixed" "$fport" 0
  template_conf "$tmp/fixed2" "$f2port" 0
  # a plain playlist (cached per 200 ms slot), a blocking reload (cached
  # per delivery directive; the static origin answers it at once), a segment
  objects=(index.m3u8 'index.m3u8?_HLS_msn=3&_HLS_part=1' 1.ts)
  # below the template's 64 held requests per client address
  conns=32
else
  edge_conf 5s >"$tmp/edge/nginx.conf"
fi
for d in origin fixed fixed2 edge; do $NGINX -p "$tmp/$d" -c "$tmp/$d/nginx.conf" -e "$tmp/$d/error.log"; done
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && break; sleep 0.1; done
for i in $(seq 0 199); do
  curl -sf -X POST "http://127.0.0.1:$aport/streams" -H 'content-type: application/json' \
    -d "{\"name\":\"s$i\",\"manifest\":\"index.m3u8\",\"host\":\"127.0.0.1:$oport\"}"
done
curl -sf -X POST "http://127.0.0.1:$aport/streams" -H 'content-type: application/json' \
  -d "{\"name\":\"golive\",\"manifest\":\"index.m3u8\",\"host\":\"127.0.0.1:$oport\"}"
curl -s -o /dev/null "http://127.0.0.1:$eport/golive/index.m3u8" # warm the route

accepted() { curl -s "http://127.0.0.1:$oport/status" | awk 'NR == 3 {print $1}'; }
# CPU time (clock ticks) used so far by the workers of the nginx in <dir>.
worker_ticks() {
  local t=0 w
  for w in $(pgrep -P "$(cat "$tmp/$1/nginx.pid")"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat")))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
run() { # run <dir> <url> -> "req/s p99 origin-connections-opened worker-cpu-us-per-request"
  local out a0 t0 n
  a0=$(accepted) t0=$(worker_ticks "$1")
  out=$("${on_cpu0[@]}" wrk -t2 -c"$conns" -d"${secs}s" --latency "$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers from $2" >&2; exit 1; fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out") $(($(accepted) - a0 - 1))" \
    "$(awk -v t="$(($(worker_ticks "$1") - t0))" -v n="$n" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}
if [[ -n ${HOLD:-} ]]; then echo "edge $eport fixed $fport origin $oport"; sleep "$HOLD"; exit 0; fi
echo "cores: $(nproc), nginx workers: $workers, wrk -t2 -c$conns -d${secs}s on the same machine"
((PIN)) && echo "pinned: the proxying worker alone on CPU 1; wrk, origin, API and Redis on CPU 0"
echo "each pair runs ${rounds:=3} times, alternating which goes first; the ratio is the median of the rounds"
echo "cpu/req: CPU time of the proxying nginx's workers per request (µs); its ratio reference/edge is"
echo "less sensitive to the machine's other load than the throughput ratio"
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# SEQUENTIAL=0 skips these rounds (the "both at once" ones only).
if [[ ${SEQUENTIAL:-1} == 1 ]]; then
printf '%-10s %-34s %12s %10s %12s %8s\n' object setup req/s p99 origin-conns cpu/req
for obj in "${objects[@]}"; do
  ratios=() cratios=()
  for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then
      read -r f_rps f_p99 f_c f_cpu < <(run fixed "http://127.0.0.1:$fport/golive/$obj")
      read -r e_rps e_p99 e_c e_cpu < <(run edge "http://127.0.0.1:$eport/golive/$obj")
    else
      read -r e_rps e_p99 e_c e_cpu < <(run edge "http://127.0.0.1:$eport/golive/$obj")
      read -r f_rps f_p99 f_c f_cpu < <(run fixed "http://127.0.0.1:$fport/golive/$obj")
    fi
    printf '%-10s %-34s %12s %10s %12s %8s\n' "$obj" "fixed upstream + keepalive (ref)" "$f_rps" "$f_p99" "$f_c" "$f_cpu"
    printf '%-10s %-34s %12s %10s %12s %8s\n' "$obj" "edge_router, warm route" "$e_rps" "$e_p99" "$e_c" "$e_cpu"
    ratios+=("$(awk -v a="$e_rps" -v b="$f_rps" 'BEGIN { printf "%.3f", a / b }')")
    cratios+=("$(awk -v a="$f_cpu" -v b="$e_cpu" 'BEGIN { printf "%.3f", a / b }')")
  done
  echo "ratio edge/reference ($obj): rounds ${ratios[*]} -> median $(median "${ratios[@]}")"
  echo "cpu per request reference/edge ($obj): rounds ${cratios[*]} -> median $(median "${cratios[@]}")"
done

fi

# Both at once: two proxies' workers share CPU 1 (PIN=1) and each gets its
# own wrk at the same moment, so whatever else slows the machine (other
# guests, frequency, the origin) slows both alike. The kernel shares the core
# fairly between two busy workers, so each one's throughput follows its cost
# per request. The control rounds put a second, identical reference in the
# edge's place: their spread is the method's own.
together() { # together <object> <dir> <port> <reference dir> <reference port> -> "rps ref-rps cpu/req ref-cpu/req"
  local ft0 et0 fn en fw ew
  ft0=$(worker_ticks "$4") et0=$(worker_ticks "$2")
  "${on_cpu0[@]}" wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$5/golive/$1" >"$tmp/wrk-ref" &
  fw=$!
  "${on_cpu0[@]}" wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$3/golive/$1" >"$tmp/wrk-one" &
  ew=$!
  wait "$fw" "$ew"
  if grep -q "Non-2xx" "$tmp/wrk-ref" "$tmp/wrk-one"; then echo "non-2xx answers ($1, together)" >&2; exit 1; fi
  fn=$(awk '/requests in/ {print $1}' "$tmp/wrk-ref") en=$(awk '/requests in/ {print $1}' "$tmp/wrk-one")
  echo "$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-one") $(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-ref")" \
    "$(awk -v t="$(($(worker_ticks "$2") - et0))" -v n="$en" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')" \
    "$(awk -v t="$(($(worker_ticks "$4") - ft0))" -v n="$fn" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}
if ((PIN)) && ((workers == 1)); then
  echo
  echo "both at once on one shared core (CPU 1), each with its own wrk -t1 -c32 -d${secs}s"
  echo "(ratio: req/s setup / reference; cpu-ratio: CPU per request reference / setup)"
  printf '%-10s %-8s %12s %12s %10s %10s %8s %10s\n' object setup req/s ref-req/s cpu ref-cpu ratio cpu-ratio
  for obj in "${objects[@]}"; do
    for setup in edge control; do
      ratios=() cratios=()
      for ((r = 0; r < rounds; r++)); do
        if [[ $setup == edge ]]; then
          read -r e_rps f_rps e_cpu f_cpu < <(together "$obj" edge "$eport" fixed "$fport")
        else
          read -r e_rps f_rps e_cpu f_cpu < <(together "$obj" fixed2 "$f2port" fixed "$fport")
        fi
        ratio=$(awk -v a="$e_rps" -v b="$f_rps" 'BEGIN { printf "%.3f", a / b }')
        cratio=$(awk -v a="$f_cpu" -v b="$e_cpu" 'BEGIN { printf "%.3f", a / b }')
        printf '%-10s %-8s %12s %12s %10s %10s %8s %10s\n' "$obj" "$setup" "$e_rps" "$f_rps" "$e_cpu" "$f_cpu" "$ratio" "$cratio"
        ratios+=("$ratio") cratios+=("$cratio")
      done
      echo "together, $setup/reference ($obj): req/s rounds ${ratios[*]} -> median $(median "${ratios[@]}")"
      echo "together, cpu per request reference/$setup ($obj): rounds ${cratios[*]} -> median $(median "${cratios[@]}")"
    done
  done
fi

# Route-cache miss: the first request for each of 200 streams asks the API.
miss_total=0 warm_total=0
for i in $(seq 0 199); do
  t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$eport/s$i/index.m3u8")
  miss_total=$(awk -v a="$miss_total" -v b="$t" 'BEGIN { print a + b }')
  t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$eport/s$i/index.m3u8")
  warm_total=$(awk -v a="$warm_total" -v b="$t" 'BEGIN { print a + b }')
done
awk -v m="$miss_total" -v w="$warm_total" 'BEGIN {
  printf "route miss (first request of 200 streams): mean %.3f ms; warm: mean %.3f ms; added by a miss: %.3f ms\n",
    m / 200 * 1000, w / 200 * 1000, (m - w) / 200 * 1000 }'
