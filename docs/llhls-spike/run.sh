#!/usr/bin/env bash
# Spike: run stock nginx-rtmp with the origin's HLS settings on loopback ports,
# publish a test stream with ffmpeg and record the fragment in progress with
# probe.py. Everything lives in a fresh temporary folder (printed at the end).
#
# usage: run.sh steady|latekey|reconnect
set -euo pipefail
scenario=${1:-steady}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
rtmp_port=${RTMP_PORT:-$((20000 + RANDOM % 10000))}
http_port=$((rtmp_port + 1))
module=${RTMP_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
mkdir -p "$work/hls" "$work/logs"
cat > "$work/nginx.conf" <<CONF
load_module $module;
daemon off;
master_process on;
user $(id -un);
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log notice;
events { worker_connections 256; }
rtmp {
    server {
        listen 127.0.0.1:$rtmp_port;
        chunk_size 4096;
        application hls {
            live on;
            allow publish 127.0.0.1;
            deny publish all;
            drop_idle_publisher 10s;
            hls on;
            hls_path $work/hls;
            hls_nested on;
            hls_fragment 2s;
            hls_playlist_length 8s;
            hls_fragment_slicing aligned;
            hls_cleanup on;
        }
    }
}
http {
    access_log $work/logs/access.log;
    client_body_temp_path $work/tmp_cb; proxy_temp_path $work/tmp_p;
    fastcgi_temp_path $work/tmp_f; uwsgi_temp_path $work/tmp_u; scgi_temp_path $work/tmp_s;
    server { listen 127.0.0.1:$http_port; root $work/hls; }
}
CONF
nginx -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" &
ngx=$!
trap 'kill $ngx 2>/dev/null || true; wait $ngx 2>/dev/null || true' EXIT
sleep 0.5

publish() { # seconds extra-args...
  local secs=$1; shift
  ffmpeg -hide_banner -loglevel error -re \
    -f lavfi -i "testsrc2=size=320x180:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" \
    -t "$secs" -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -b:v 500k \
    "$@" -c:a aac -b:a 64k -ar 44100 \
    -f flv "rtmp://127.0.0.1:$rtmp_port/hls/spike" >>"$work/logs/ffmpeg.log" 2>&1 &
  echo $!
}

case $scenario in
steady|reconnect)
  t0=$(date +%s.%N)
  python3 "$here/probe.py" "$work/hls/spike" 32 "$work/probe.jsonl" "$t0" &
  probe=$!
  ff=$(publish 16 -g 60 -keyint_min 60 -sc_threshold 0)
  sleep 6
  # exact write() sizes of the nginx worker for 3 s (strace only, low cost)
  worker=$(pgrep -P $ngx | head -1)
  timeout 3 strace -f -tt -e trace=write,openat,close,rename,recvfrom,readv,read -p "$worker" -o "$work/strace.txt" 2>/dev/null || true
  if [ "$scenario" = reconnect ]; then
    sleep 2; kill -KILL "$ff" || true; echo "killed publisher at $(date +%s.%N)" > "$work/events.txt"
    sleep 3
    echo "republish at $(date +%s.%N)" >> "$work/events.txt"
    ff=$(publish 8 -g 60 -keyint_min 60 -sc_threshold 0)
  fi
  while kill -0 "$ff" 2>/dev/null; do sleep 0.2; done
  wait "$probe"
  ;;
latekey)
  t0=$(date +%s.%N)
  python3 "$here/probe.py" "$work/hls/spike" 20 "$work/probe.jsonl" "$t0" &
  probe=$!
  ff=$(publish 17 -g 1000 -keyint_min 1000 -sc_threshold 0 -force_key_frames 0,2,4,6.7,8,10,12.5,13.2,16)
  sleep 6
  worker=$(pgrep -P $ngx | head -1)
  timeout 3 strace -f -tt -e trace=write,openat,close,rename,recvfrom,readv,read -p "$worker" -o "$work/strace.txt" 2>/dev/null || true
  while kill -0 "$ff" 2>/dev/null; do sleep 0.2; done
  wait "$probe"
  ;;
esac
cp "$work/hls/spike/index.m3u8" "$work/final-index.m3u8" 2>/dev/null || true
echo "$work"
