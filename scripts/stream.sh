#!/usr/bin/env bash
# stream.sh: publish the test pattern (colour bars, a tone and a clock) to
# the platform, like OBS would. Stops with Ctrl-C.
#   RTMP_URL     default rtmp://127.0.0.1:${RTMP_PORT:-1935}/stream
#   STREAM_KEY   default: the key `make up` generated ($STATE_DIR/stream-key)
#   STREAM_SIZE  default 1280x720, STREAM_FPS default 30
#   STREAM_PATTERN  default smptehdbars (static bars); testsrc2 moves (harder to encode)
set -euo pipefail
url=${RTMP_URL:-rtmp://127.0.0.1:${RTMP_PORT:-1935}/stream}
state=${STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/rtmp-live}
key=${STREAM_KEY:-$(cat "$state/stream-key" 2>/dev/null || true)}
[[ -n $key ]] || { echo "stream.sh: set STREAM_KEY (no $state/stream-key: start 'make up' first)" >&2; exit 1; }
size=${STREAM_SIZE:-1280x720}
fps=${STREAM_FPS:-30}
pattern=${STREAM_PATTERN:-smptehdbars}
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
clock="drawtext=fontfile=$font:text='%{localtime\:%T}':fontcolor=white:fontsize=48:box=1:boxcolor=black@0.6:x=(w-tw)/2:y=h-th-40"
[[ -r $font ]] || clock=null
echo "publishing the test pattern to $url/<key> ($size@$fps)"
exec ffmpeg -hide_banner -loglevel "${FFMPEG_LOGLEVEL:-warning}" -re \
  -f lavfi -i "$pattern=size=$size:rate=$fps" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
  -vf "$clock" \
  -c:v libx264 -preset veryfast -tune zerolatency -g $((fps * 2)) -keyint_min $((fps * 2)) -sc_threshold 0 \
  -b:v 2500k -maxrate 2500k -bufsize 5000k -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ar 48000 \
  -f flv "$url/$key"
