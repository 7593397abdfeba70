#!/usr/bin/env bash
# stream.sh: publish the test pattern (colour bars, a tone and a clock) to
# the platform, like OBS would. Stops with Ctrl-C.
#   RTMP_URL     default rtmp://127.0.0.1:${RTMP_PORT:-1935}/stream
#   STREAM_KEY   default: the key `make up` generated ($STATE_DIR/stream-key)
#   STREAM_SIZE  default 1280x720, STREAM_FPS default 30
#   STREAM_PATTERN  default smptehdbars (static bars); testsrc2 moves (harder to encode)
# ffmpeg only encodes (FLV to a pipe); rtmp-live-publish publishes it over
# RTMP with the key from its environment or the key file, so that the key is
# on no command line (`ps` shows every process's arguments to every user).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
publish=${BIN_DIR:-$root/target/release}/rtmp-live-publish
[[ -x $publish ]] || { echo "stream.sh: $publish not built: run 'make build'" >&2; exit 1; }
url=${RTMP_URL:-rtmp://127.0.0.1:${RTMP_PORT:-1935}/stream}
size=${STREAM_SIZE:-1280x720}
fps=${STREAM_FPS:-30}
pattern=${STREAM_PATTERN:-smptehdbars}
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
clock="drawtext=fontfile=$font:text='%{localtime\:%T}':fontcolor=white:fontsize=48:box=1:boxcolor=black@0.6:x=(w-tw)/2:y=h-th-40"
[[ -r $font ]] || clock=null
echo "publishing the test pattern to $url ($size@$fps)"
exec "$publish" --url "$url" -- ffmpeg -hide_banner -nostdin -loglevel "${FFMPEG_LOGLEVEL:-warning}" -re \
  -f lavfi -i "$pattern=size=$size:rate=$fps" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
  -vf "$clock" \
  -c:v libx264 -preset veryfast -tune zerolatency -g $((fps * 2)) -keyint_min $((fps * 2)) -sc_threshold 0 \
  -b:v 2500k -maxrate 2500k -bufsize 5000k -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ar 48000 \
  -f flv -
