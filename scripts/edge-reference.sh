#!/usr/bin/env bash
# edge-reference.sh <rendered edge.conf> <origin ip:port> <lock: on|off>:
# prints the same edge configuration with the ngx-edge-router module taken
# out, the benchmarks' reference: a fixed keepalive upstream to the one
# origin, the module's variables replaced by constants of the same length
# (the session: a 13-digit registration time; a cache key's length moves
# the body's offset in the cache file, which changes sendfile's speed),
# `edge_router_collapse` by nginx's `proxy_cache_lock <lock>` (`off`: no
# collapsing; `on`: nginx's own, whose waiters look every 500 ms) and no
# query canonicalization, no token check and no viewer counting (its report
# location stays, unused). Fails if anything of the module is left.
set -euo pipefail
conf=$1 origin=$2 lock=$3
# `$edge_router_collapse_key` becomes the key of the location's
# `edge_router_collapse` (written just before it), then the module goes.
out=$(awk '
  match($0, /^ *edge_router_collapse [^;]*;/) {
    key = $0; sub(/^ *edge_router_collapse /, "", key); sub(/;.*$/, "", key)
  }
  /\$edge_router_collapse_key/ { gsub(/\$edge_router_collapse_key/, key) }
  { print }' "$conf" | sed -e '/^load_module /d' \
  -e "s|edge_router_upstream;|server $origin;|" \
  -e 's|edge_router_metrics;|return 204;|' \
  -e "s|proxy_cache_lock off;|proxy_cache_lock $lock;|" \
  -e '/^ *edge_router[a-z_]*[ ;]/d' \
  -e "s|\$edge_router_origin|$origin|g" -e 's|\$edge_router_session|1000000000000|g' \
  -e 's|\$edge_router_cache|HIT|g' \
  -e 's|proxy_set_body \$edge_router_viewer_report;|proxy_set_body "{}";|')
if grep -n 'edge_router_[a-z]*[ ;]\|\$edge_router' <<<"$out" | grep -v -e '_edge_router_\(api\|probe\|viewers\)' -e '^[0-9]*: *#' >&2; then
  echo "edge-reference: the reference still uses the module (lines above)" >&2
  exit 1
fi
printf '%s\n' "$out"
