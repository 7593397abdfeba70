#!/bin/sh
# Renders the origin config from the shared templates, then runs nginx in
# the foreground.
set -eu
# Workers (and the ffmpeg ladder they start) run as www-data, not root.
export RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so NGINX_USER=www-data
export ORIGIN_DIR=/var/lib/rtmp-live/origin ORIGIN_PACKAGING=/var/lib/rtmp-live/origin/packaging.conf
export ABR_LADDER_SCRIPT=/usr/local/bin/abr-ladder.sh
# on_publish: the API itself unless AUTHORIZE_URL says otherwise (discovery
# runs in its own container here; scripts/up.sh points each origin at its
# discovery's /authorize, which keeps known keys working through API outages).
export AUTHORIZE_URL="${AUTHORIZE_URL:-$API_URL/authorize}"
# The LL-HLS playlist component (rtmp-live-llhls) is not part of this image
# yet: without it nginx serves the playlist files, as before.
export LLHLS_PORT="${LLHLS_PORT:-9092}"
mkdir -p "$HLS_PATH" "$ORIGIN_DIR/tmp"
chown www-data:www-data "$HLS_PATH" "$ORIGIN_DIR/tmp"
packaging=origin-hls.conf.template
[ "${ABR:-0}" = 1 ] && packaging=origin-abr.conf.template
render-conf.sh "/etc/rtmp-live/$packaging" "$ORIGIN_PACKAGING"
render-conf.sh /etc/rtmp-live/origin.conf.template "$ORIGIN_DIR/nginx.conf"
exec nginx -p "$ORIGIN_DIR" -c "$ORIGIN_DIR/nginx.conf" -e stderr
