#!/usr/bin/env bash
# up.sh: run the whole platform in the foreground (`make up` builds first).
# Redis, the API, one or more origins (nginx-rtmp) each with its discovery,
# and the edge (nginx + the edge-router module). Every output line is
# prefixed with its component. Ctrl-C / SIGTERM stops everything it started.
#
# Environment (all optional):
#   RTMP_PORT=1935 ORIGIN_HTTP_PORT=8080 API_PORT=9090 EDGE_PORT=8081
#   REDIS_PORT=6379 RTMP_STAT_PORT=8088 DISCOVERY_PORT=9091 LLHLS_PORT=9092
#   ORIGINS=1        origins to run; origin k (1-based) listens on
#                    RTMP_PORT+k-1, ORIGIN_HTTP_PORT+10*(k-1), RTMP_STAT_PORT+10*(k-1),
#                    and its discovery (on_publish, /metrics) on 127.0.0.1:DISCOVERY_PORT+10*(k-1),
#                    its LL-HLS playlist component on 127.0.0.1:LLHLS_PORT+10*(k-1)
#   ABR=0            1: transcode every stream into the ABR ladder
#   STATE_DIR        runtime files (default ${XDG_STATE_HOME:-~/.local/state}/rtmp-live)
#   PUBLIC_HOST      host name printed in the OBS/player URLs (default: first IPv4)
#   EDGE_WORKERS=2 EDGE_VIEWER_KEY='$remote_addr' EDGE_ROUTE_VALID=5s
#   EDGE_ROUTE_NEGATIVE=1s EDGE_ROUTE_STALE=15m EDGE_ROUTE_GRACE=8s
#   EDGE_ORIGINS     origins the edge may contact (default: exactly this run's)
#   EDGE_DEBUG_HEADERS=0  1: X-Edge-Origin/X-Edge-Upstream in viewer answers
#   EDGE_CORS_ORIGIN='*'  Access-Control-Allow-Origin of viewer answers
#   PLAYER_DIR       the player page the edge serves at / (default: player/,
#                    with hls.min.js from `make player`)
#   STREAM_KEYS, API_REPORT_TOKEN, STREAM_TTL_SECS, DISCOVERY_HEARTBEAT_SECS,
#   DISCOVERY_STALE_SECS, RUST_LOG: passed to the services.
#
# Credentials: unless API_REPORT_TOKEN / STREAM_KEYS are set, the first start
# generates a random registry token and a random OBS stream key (32 hex
# characters each) into $STATE_DIR/api-report-token and $STATE_DIR/stream-key
# (mode 0600) and reuses them afterwards; the key publishes as `golive`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN_DIR:-$ROOT/target/release}

RTMP_PORT=${RTMP_PORT:-1935}
ORIGIN_HTTP_PORT=${ORIGIN_HTTP_PORT:-8080}
API_PORT=${API_PORT:-9090}
EDGE_PORT=${EDGE_PORT:-8081}
REDIS_PORT=${REDIS_PORT:-6379}
RTMP_STAT_PORT=${RTMP_STAT_PORT:-8088}
DISCOVERY_PORT=${DISCOVERY_PORT:-9091}
LLHLS_PORT=${LLHLS_PORT:-9092}
ORIGINS=${ORIGINS:-1}
ABR=${ABR:-0}
STATE_DIR=${STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/rtmp-live}
export EDGE_WORKERS=${EDGE_WORKERS:-2}
export EDGE_VIEWER_KEY=${EDGE_VIEWER_KEY:-'$remote_addr'}
export EDGE_ROUTE_VALID=${EDGE_ROUTE_VALID:-5s}
export EDGE_ROUTE_NEGATIVE=${EDGE_ROUTE_NEGATIVE:-1s}
export EDGE_ROUTE_STALE=${EDGE_ROUTE_STALE:-15m}
export EDGE_ROUTE_GRACE=${EDGE_ROUTE_GRACE:-8s}
export EDGE_DEBUG_HEADERS=${EDGE_DEBUG_HEADERS:-0}
export EDGE_CORS_ORIGIN=${EDGE_CORS_ORIGIN:-*}
export PLAYER_DIR=${PLAYER_DIR:-$ROOT/player}
export NGINX_USER=${NGINX_USER:-$(id -un)}
export RTMP_MODULE=${RTMP_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
export EDGE_MODULE=${EDGE_MODULE:-$BIN/libngx_edge_router.so}
NGINX=${NGINX:-/usr/sbin/nginx}

say() { echo "[up] $*"; }
die() { echo "[up] error: $*" >&2; exit 1; }

"$ROOT/scripts/deps.sh" run || die "missing packages (see above)"
for f in "$BIN/rtmp-live-api" "$BIN/rtmp-live-discovery" "$BIN/rtmp-live-llhls" "$EDGE_MODULE"; do
  [[ -e $f ]] || die "$f not built: run 'make build' (or 'make up')"
done
[[ $ORIGINS =~ ^[1-9]$ ]] || die "ORIGINS must be 1..9"
# The player page works without it only in browsers that play HLS natively.
[[ -e $PLAYER_DIR/hls.min.js ]] || say "warning: $PLAYER_DIR/hls.min.js missing: run 'make player' for the player page"

ports=("$REDIS_PORT" "$API_PORT" "$EDGE_PORT")
for ((k = 0; k < ORIGINS; k++)); do
  ports+=($((RTMP_PORT + k)) $((ORIGIN_HTTP_PORT + 10 * k)) $((RTMP_STAT_PORT + 10 * k)))
  ports+=($((DISCOVERY_PORT + 10 * k)) $((LLHLS_PORT + 10 * k)))
done
for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is already in use (set the matching *_PORT variable to move it)"
  fi
done

mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
export STATE_DIR
rm -rf "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache" "$STATE_DIR/tmp"
mkdir -p "$STATE_DIR/tmp" "$STATE_DIR/redis"

# kept_secret FILE: the secret stored in FILE, generated on first use.
kept_secret() {
  local f=$1
  if [[ ! -s $f ]]; then
    (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$f.new" && mv "$f.new" "$f")
  fi
  chmod 600 "$f"
  cat "$f"
}
if [[ -z ${API_REPORT_TOKEN:-} ]]; then
  API_REPORT_TOKEN=$(kept_secret "$STATE_DIR/api-report-token")
fi
obs_key=""
if [[ -z ${STREAM_KEYS:-} ]]; then
  obs_key=$(kept_secret "$STATE_DIR/stream-key")
  STREAM_KEYS="$obs_key=golive"
fi
export API_REPORT_TOKEN STREAM_KEYS

pids=()
names=()
# start <name> <command...>: runs a component in the background with its
# output prefixed by [name]; remembers its PID.
start() {
  local name=$1
  shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
  names+=("$name")
}

stopping=0
cleanup() {
  ((stopping)) && return
  stopping=1
  trap '' INT TERM
  say "stopping..."
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  # Transcoders started by nginx-rtmp, should any survive their nginx.
  pkill -TERM -f -- "$STATE_DIR/" 2>/dev/null || true
  sleep 0.2
  pkill -KILL -f -- "$STATE_DIR/" 2>/dev/null || true
  wait 2>/dev/null || true
  say "stopped"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

# Redis: private, no persistence.
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE_DIR/redis" \
  --save "" --appendonly no --daemonize no --loglevel warning

# API. Allowed publishes are renamed to their public name; each origin relays
# them into its own packaging application (see nginx/origin.conf.template).
export API_URL="http://127.0.0.1:$API_PORT"
API_LISTEN="0.0.0.0:$API_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PUBLISH_REDIRECT='{name}' \
  API_REPORT_TOKEN="$API_REPORT_TOKEN" STREAM_KEYS="$STREAM_KEYS" \
  start api "$BIN/rtmp-live-api"

packaging=origin-hls.conf.template
if [[ $ABR == 1 ]]; then packaging=origin-abr.conf.template; fi
export ABR_LADDER_SCRIPT="$ROOT/scripts/abr-ladder.sh"

for ((k = 1; k <= ORIGINS; k++)); do
  dir="$STATE_DIR/origin$k"
  rm -rf "$dir/hls"
  mkdir -p "$dir/hls" "$dir/tmp"
  (
    export ORIGIN_DIR=$dir HLS_PATH=$dir/hls ORIGIN_PACKAGING=$dir/packaging.conf
    export RTMP_PORT=$((RTMP_PORT + k - 1)) ORIGIN_HTTP_PORT=$((ORIGIN_HTTP_PORT + 10 * (k - 1)))
    export RTMP_STAT_PORT=$((RTMP_STAT_PORT + 10 * (k - 1))) LLHLS_PORT=$((LLHLS_PORT + 10 * (k - 1)))
    export AUTHORIZE_URL="http://127.0.0.1:$((DISCOVERY_PORT + 10 * (k - 1)))/authorize"
    "$ROOT/scripts/render-conf.sh" "$ROOT/nginx/$packaging" "$dir/packaging.conf"
    "$ROOT/scripts/render-conf.sh" "$ROOT/nginx/origin.conf.template" "$dir/nginx.conf"
  )
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" -e stderr || die "origin $k config invalid"
  start "origin$k" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e stderr
  HLS_PATH="$dir/hls" DISCOVERY_API_URL="$API_URL" API_REPORT_TOKEN="$API_REPORT_TOKEN" \
    ADVERTISE_HOST="127.0.0.1:$((ORIGIN_HTTP_PORT + 10 * (k - 1)))" \
    DISCOVERY_LISTEN="127.0.0.1:$((DISCOVERY_PORT + 10 * (k - 1)))" DISCOVERY_STATE_DIR="$dir/discovery" \
    start "discovery$k" "$BIN/rtmp-live-discovery"
  # LL-HLS playlists for this origin (nginx falls back to the files without it).
  HLS_PATH="$dir/hls" LLHLS_LISTEN="127.0.0.1:$((LLHLS_PORT + 10 * (k - 1)))" \
    start "llhls$k" "$BIN/rtmp-live-llhls"
done

# The edge contacts exactly these origins, whatever the registry says.
origins_allowed=()
for ((k = 1; k <= ORIGINS; k++)); do origins_allowed+=("127.0.0.1:$((ORIGIN_HTTP_PORT + 10 * (k - 1)))"); done
export EDGE_ORIGINS=${EDGE_ORIGINS:-${origins_allowed[*]}}
EDGE_PORT=$EDGE_PORT "$ROOT/scripts/render-conf.sh" "$ROOT/nginx/edge.conf.template" "$STATE_DIR/edge.conf"
"$NGINX" -t -q -p "$STATE_DIR" -c "$STATE_DIR/edge.conf" -e stderr || die "edge config invalid"
start edge "$NGINX" -p "$STATE_DIR" -c "$STATE_DIR/edge.conf" -e stderr

host=${PUBLIC_HOST:-$(hostname -I 2>/dev/null | awk '{print $1}')}
host=${host:-127.0.0.1}
manifest=index.m3u8
[[ $ABR == 1 ]] && manifest=master.m3u8
say "RTMP Live is up (state in $STATE_DIR)"
say "  OBS: server rtmp://$host:$RTMP_PORT/stream"
for ((k = 2; k <= ORIGINS; k++)); do
  say "       origin $k: rtmp://$host:$((RTMP_PORT + k - 1))/stream"
done
if [[ -n $obs_key ]]; then
  say "  OBS stream key: $obs_key   (kept in $STATE_DIR/stream-key; publishes as golive)"
  say "  play: http://$host:$EDGE_PORT/golive/$manifest   (VLC, ffplay, hls.js)"
  say "        http://$host:$EDGE_PORT/#golive   (the edge's player page)"
else
  say "  OBS stream key: one of your STREAM_KEYS"
  say "  play: http://$host:$EDGE_PORT/<name>/$manifest   (VLC, ffplay, hls.js)"
  say "        http://$host:$EDGE_PORT/   (the edge's player page)"
fi
say "  test stream: make stream     stop: Ctrl-C"

# Keep running while any component runs; report the ones that exit.
while true; do
  alive=0
  for i in "${!pids[@]}"; do
    p=${pids[i]}
    [[ -z $p ]] && continue
    if kill -0 "$p" 2>/dev/null; then
      alive=1
    else
      code=0
      wait "$p" 2>/dev/null || code=$?
      say "${names[i]} exited (status $code)"
      pids[i]=""
    fi
  done
  ((alive)) || break
  sleep 0.5
done
