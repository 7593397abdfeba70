#!/bin/sh
# Renders the origin config from the shared templates, then runs nginx in
# the foreground.
set -eu
# Workers (and the ffmpeg ladder they start) run as www-data, not root.
export RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so NGINX_USER=www-data
export ORIGIN_DIR=/var/lib/rtmp-live/origin ORIGIN_PACKAGING=/var/lib/rtmp-live/origin/packaging.conf
export ABR_LADDER_SCRIPT=/usr/local/bin/abr-ladder.sh
mkdir -p "$HLS_PATH" "$ORIGIN_DIR/tmp"
chown www-data:www-data "$HLS_PATH" "$ORIGIN_DIR/tmp"
packaging=origin-hls.conf.template
[ "${ABR:-0}" = 1 ] && packaging=origin-abr.conf.template
render-conf.sh "/etc/rtmp-live/$packaging" "$ORIGIN_PACKAGING"
render-conf.sh /etc/rtmp-live/origin.conf.template "$ORIGIN_DIR/nginx.conf"
exec nginx -p "$ORIGIN_DIR" -c "$ORIGIN_DIR/nginx.conf" -e stderr
