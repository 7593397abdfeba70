#!/bin/bash
# The origin container: nginx + nginx-rtmp (master as root, workers and the
# ffmpeg ladder they start as www-data) and, beside it, this origin's
# discovery (as www-data too: nginx-rtmp creates each stream's folder with
# mode 0744, readable by its owner only). Discovery advertises this
# container's address on the compose network: the edge lists exactly the
# addresses its origins' name resolves to (docker/edge-entrypoint.sh), so
# `--scale origin=N` gives N origins with nothing to configure. It also
# answers nginx-rtmp's on_publish (its /authorize asks the API and, while the
# API does not answer, still allows keys the API allowed recently).
#
# A small supervisor: when either process ends, the other is stopped and the
# container exits non-zero (the compose restart policy starts it again);
# SIGTERM/SIGINT stop both.
set -eu
export RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so NGINX_USER=www-data
export ORIGIN_DIR=/var/lib/rtmp-live/origin ORIGIN_PACKAGING=/var/lib/rtmp-live/origin/packaging.conf
export ORIGIN_HLS_HTTP=/var/lib/rtmp-live/origin/hls-http.conf
export ORIGIN_RENDITIONS=/var/lib/rtmp-live/origin/renditions.conf
export ABR_LADDER_BIN=/usr/local/bin/rtmp-live-abr
export AUTHORIZE_URL="${AUTHORIZE_URL:-http://$DISCOVERY_LISTEN/authorize}"
export DISCOVERY_API_URL="${DISCOVERY_API_URL:-$API_URL}"
if [ -z "${ADVERTISE_HOST:-}" ]; then
  ip=$(hostname -I | tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || true)
  [ -n "$ip" ] || { echo "origin: no IPv4 address: set ADVERTISE_HOST" >&2; exit 1; }
  export ADVERTISE_HOST=$ip:$ORIGIN_HTTP_PORT
fi
# Per-stream ingest facts in discovery's /metrics, from this origin's
# nginx-rtmp statistics (loopback only, in this container).
export DISCOVERY_RTMP_STAT_URL="${DISCOVERY_RTMP_STAT_URL:-http://127.0.0.1:$RTMP_STAT_PORT/}"
export DISCOVERY_STATE_DIR="${DISCOVERY_STATE_DIR:-/var/lib/rtmp-live/discovery}"
# The LL-HLS playlist component beside nginx (loopback only), unless
# LLHLS=0 (then nginx serves nginx-rtmp's playlist files only).
export LLHLS_PORT="${LLHLS_PORT:-9092}" LLHLS_LISTEN="127.0.0.1:${LLHLS_PORT:-9092}"
# nginx-rtmp's packaging applications (loopback only, in this container).
export RTMP_PACKAGING_PORT="${RTMP_PACKAGING_PORT:-8089}"

# Recordings (written by the LL-HLS component, served by nginx, reported by
# discovery) stay across restarts of the container: unfinished ones are
# finished when the component starts again.
export RECORDINGS_PATH="${RECORDINGS_PATH:-/var/lib/rtmp-live/recordings}"
mkdir -p "$HLS_PATH" "$ORIGIN_DIR/tmp" "$DISCOVERY_STATE_DIR" "$RECORDINGS_PATH"
# Started as root (compose): nginx's master stays root, everything else
# runs as www-data. Started as www-data (Kubernetes' runAsUser: 33, no
# capabilities): everything runs as it already, and nginx ignores `user`.
if [ "$(id -u)" = 0 ]; then
  chown www-data:www-data "$HLS_PATH" "$ORIGIN_DIR/tmp" "$DISCOVERY_STATE_DIR" "$RECORDINGS_PATH"
  as_www() { setpriv --reuid=www-data --regid=www-data --init-groups "$@"; }
else
  as_www() { "$@"; }
fi
# A restarted container starts with an empty HLS folder: discovery must not
# report the last run's streams.
find "$HLS_PATH" -mindepth 1 -delete
# The configs, chosen (ABR, LLHLS) and rendered as `make up` does.
rtmp-live-render origin /etc/rtmp-live "$ORIGIN_DIR"
nginx -t -q -p "$ORIGIN_DIR" -c "$ORIGIN_DIR/nginx.conf" -e stderr

echo "origin: advertising $ADVERTISE_HOST" >&2
as_www rtmp-live-discovery &
discovery=$!
llhls=
if [ "${LLHLS:-1}" = 1 ]; then
  as_www rtmp-live-llhls &
  llhls=$!
fi
nginx -p "$ORIGIN_DIR" -c "$ORIGIN_DIR/nginx.conf" -e stderr &
nginx=$!

stop() {
  trap '' TERM INT
  kill -TERM "$nginx" "$discovery" $llhls 2>/dev/null || true
  wait
}
trap 'stop; exit 0' TERM INT
status=0
wait -n || status=$?
echo "origin: a process exited (status $status): stopping the container" >&2
stop
exit 1
