#!/bin/sh
# Renders the edge config from the shared template, then runs nginx in the
# foreground.
set -eu
# Workers run as www-data, not root.
export EDGE_MODULE=/usr/lib/nginx/modules/libngx_edge_router.so NGINX_USER=www-data
export STATE_DIR=/var/lib/rtmp-live/edge
# The player page (index.html, player.js, hls.min.js; see docker/Dockerfile).
export PLAYER_DIR=${PLAYER_DIR:-/usr/share/rtmp-live/player}
export EDGE_DEBUG_HEADERS=${EDGE_DEBUG_HEADERS:-0} EDGE_CORS_ORIGIN=${EDGE_CORS_ORIGIN:-*} EDGE_ROUTE_GRACE=${EDGE_ROUTE_GRACE:-8s}
mkdir -p "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
chown -R www-data:www-data "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
render-conf.sh /etc/rtmp-live/edge.conf.template "$STATE_DIR/edge.conf"
exec nginx -p "$STATE_DIR" -c "$STATE_DIR/edge.conf" -e stderr
