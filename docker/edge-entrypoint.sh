#!/bin/bash
# The edge container: renders the edge config from the shared template and
# runs nginx (master as root, workers as www-data), keeping its list of
# origins exact.
#
# EDGE_ORIGINS names the origins by name and port (compose: `origin:8080`,
# the service, which the compose network's DNS resolves to every replica).
# The edge contacts only origins inside its list, and while the API is down
# it probes the list's exact `ip:port` entries for a stream it never saw. So
# every `name:port` entry is rendered as the exact addresses the name
# resolves to now (each origin's discovery registers the origin under that
# address: origin-entrypoint.sh), and resolved again every
# EDGE_ORIGINS_REFRESH_SECS (5): when the addresses change (`--scale`, an
# origin restarted elsewhere on the network) the config is rendered again,
# checked, and nginx reloads gracefully. Other entries (an `ip:port`, a
# network, a `*` pattern) are kept as given. The API's name (API_URL) is
# watched the same way: nginx resolves it only when it loads its config, so
# an API container restarted at another address would otherwise never be
# asked again. Nothing an API answer says ever
# widens the list: a forged registration naming the API, Redis or any other
# port is refused (502).
#
# A small supervisor: when nginx ends, the container exits with its status;
# SIGTERM/SIGINT stop nginx.
#
# The image's paths are defaults, so that the end-to-end tests run this very
# script natively (e2e/tests/attacks.rs).
set -eu
# Workers run as www-data, not root.
export EDGE_MODULE=${EDGE_MODULE:-/usr/lib/nginx/modules/libngx_edge_router.so} NGINX_USER=${NGINX_USER:-www-data}
export STATE_DIR=${STATE_DIR:-/var/lib/rtmp-live/edge}
templates=${RTMP_LIVE_TEMPLATES:-/etc/rtmp-live}
# The player page (index.html, player.js, player.css, hls.min.js; see docker/Dockerfile).
export PLAYER_DIR=${PLAYER_DIR:-/usr/share/rtmp-live/player}
export EDGE_DEBUG_HEADERS=${EDGE_DEBUG_HEADERS:-0} EDGE_CORS_ORIGIN=${EDGE_CORS_ORIGIN:-*} EDGE_ROUTE_GRACE=${EDGE_ROUTE_GRACE:-8s}
origins=${EDGE_ORIGINS:?set EDGE_ORIGINS (the origins: name:port or ip:port, space-separated)}
refresh=${EDGE_ORIGINS_REFRESH_SECS:-5}
mkdir -p "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
chown -R "${NGINX_USER%% *}:" "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
conf=$STATE_DIR/edge.conf
nginx_() { nginx -p "$STATE_DIR" -e stderr "$@"; }

# The IPv4 addresses of a name, sorted. (Lookups run as www-data: root runs
# only this script and nginx's master.)
lookup() {
  unprivileged sh -c 'getent ahostsv4 "$1" | cut -d" " -f1 | sort -u | tr "\n" " "' lookup "$1"
}

# The list with each name:port replaced by name:port and the exact
# addresses it resolves to; fails while a name resolves to nothing.
resolve() {
  local out="" e host port addrs
  for e in $origins; do
    host=${e%:*} port=${e##*:}
    if [[ $e == *[*/[]* || $host == "$e" || $host =~ ^[0-9.]+$ ]]; then
      out+=" $e"
      continue
    fi
    addrs=$(lookup "$host")
    [[ -n $addrs ]] || return 1
    out+=" $e"
    for a in $addrs; do out+=" $a:$port"; done
  done
  echo "${out# }"
}

unprivileged() {
  if [[ $(id -u) == 0 ]]; then
    setpriv --reuid="${NGINX_USER%% *}" --regid="${NGINX_USER%% *}" --init-groups "$@"
  else
    "$@"
  fi
}

# Waits without starting a process: `read` with a timeout on a FIFO no one
# writes to.
mkfifo "$STATE_DIR/.tick" 2>/dev/null || true
exec 9<>"$STATE_DIR/.tick"
tick() { read -r -t "$1" -u 9 _ || true; }

# The origins start beside the edge (depends_on): give their names a moment
# to resolve. Past 30 s the edge starts with the names alone (an API answer
# naming them is still accepted; there is nothing to probe) and keeps trying.
waited=0
until current=$(resolve); do
  if ((waited >= 30)); then
    current=$origins
    break
  fi
  echo "edge: waiting for the origins ($origins) to resolve" >&2
  tick 2
  waited=$((waited + 2))
done
api_host=${API_URL#*://}
api_host=${api_host%%/*}
api_host=${api_host%:*}
api_now() {
  local a
  a=$(lookup "$api_host")
  echo "${a% }"
}
current_api=$(api_now)
EDGE_ORIGINS=$current rtmp-live-render file "$templates/edge.conf.template" "$conf"
echo "edge: origins $current" >&2
nginx -p "$STATE_DIR" -e stderr -c "$conf" &
nginx=$!
trap 'kill -TERM "$nginx" 2>/dev/null; wait "$nginx"; exit 0' TERM INT

while kill -0 "$nginx" 2>/dev/null; do
  tick "$refresh"
  new=$(resolve) || continue
  # The API stopped (its name resolves to nothing): nothing to reload for.
  new_api=$(api_now)
  [[ -n $new_api ]] || continue
  [[ $new != "$current" || $new_api != "$current_api" ]] || continue
  if EDGE_ORIGINS=$new rtmp-live-render file "$templates/edge.conf.template" "$conf.new" &&
    nginx_ -t -q -c "$conf.new"; then
    mv -f "$conf.new" "$conf"
    nginx_ -c "$conf" -s reload
    echo "edge: origins $new, API at $new_api (reloaded)" >&2
    current=$new current_api=$new_api
  fi
done
status=0
wait "$nginx" || status=$?
echo "edge: nginx exited (status $status)" >&2
exit "$status"
