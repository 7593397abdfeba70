#!/bin/bash
# The edge container: prepares its folders and defaults, then execs
# `rtmp-live-render edge`, which renders the edge config from the shared
# template and runs nginx (master as root, workers as www-data), keeping
# its list of origins exact.
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
# When nginx ends, the container exits with its status; SIGTERM/SIGINT stop
# nginx. Names are resolved as www-data (getent): root runs only the
# supervisor and nginx's master.
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
: "${EDGE_ORIGINS:?set EDGE_ORIGINS (the origins: name:port or ip:port, space-separated)}"
# Viewer reports to the API (docs/audience.md) and signed playback links:
# the secret goes into a root-only file for nginx's master (a random one
# when PLAYBACK_SECRET is unset: no link is valid then) and leaves the
# environment.
export EDGE_API_TOKEN=${API_EDGE_TOKEN:-} EDGE_PLAYBACK_SIGNED=${EDGE_PLAYBACK_SIGNED:-off}
export EDGE_PLAYBACK_SECRET_FILE=$STATE_DIR/playback-secret
mkdir -p "$STATE_DIR"
(umask 077 && printf '%s' "${PLAYBACK_SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}" >"$EDGE_PLAYBACK_SECRET_FILE")
unset PLAYBACK_SECRET API_EDGE_TOKEN
mkdir -p "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
# (as root; started as the workers' user itself, e.g. Kubernetes'
# runAsUser: 33, they are its own already and nginx ignores `user`)
if [ "$(id -u)" = 0 ]; then
  chown -R "${NGINX_USER%% *}:" "$STATE_DIR/tmp" "$STATE_DIR/edge-cache" "$STATE_DIR/edge-playlist-cache"
fi
conf=$STATE_DIR/edge.conf
# Renders the config with the origins' exact addresses, runs nginx and keeps
# the list exact (platform/src/bin/rtmp-live-render/edge.rs).
exec rtmp-live-render edge "$templates/edge.conf.template" "$conf"
