#!/usr/bin/env bash
# The ABR transcoding ladder, in one place. nginx-rtmp starts it with
# `exec_push` for every stream published into the HLS application (ABR on):
#
#   abr-ladder.sh <input url> <output folder>
#
# It reads the local stream and writes, under <output folder> (= <HLS_PATH>/<name>):
#   master.m3u8                    master playlist (BANDWIDTH, RESOLUTION, CODECS)
#   <rendition>/index.m3u8         one media playlist per rendition
#   <rendition>/<session>-<n>.ts   2 s segments, keyframes aligned across renditions;
#                                  <session> (ms since the epoch at start) makes
#                                  names unique per publish session, so a
#                                  reconnecting publisher never reuses a name
#
# `exec` replaces this shell with ffmpeg, so the process nginx-rtmp kills when
# the publisher stops is ffmpeg itself. As a second guard (nginx-rtmp does not
# always stop exec_push children when the publish was relayed in), ffmpeg
# gives up when its input stalls for ABR_STALL_SECS (default 4): either way
# it ends its playlists with #EXT-X-ENDLIST and no transcoder is left behind.
#
# The ladder: name:height:video kbit/s:audio kbit/s (override with ABR_LADDER).
set -euo pipefail
in=${1:?usage: abr-ladder.sh <input url> <output folder>}
out=${2:?usage: abr-ladder.sh <input url> <output folder>}
ladder=${ABR_LADDER:-"720p:720:2500:128 480p:480:1000:96 240p:240:400:64"}
fragment=${ABR_FRAGMENT_SECS:-2}
preset=${ABR_PRESET:-superfast}
ffmpeg_bin=${FFMPEG:-ffmpeg}

read -r -a rungs <<<"$ladder"
n=${#rungs[@]}
split="[0:v]split=$n"
scales=""
maps=()
codec_args=()
varmap=""
for i in "${!rungs[@]}"; do
  IFS=: read -r name height vkbps akbps <<<"${rungs[$i]}"
  split+="[s$i]"
  scales+=";[s$i]scale=-2:$height[v$i]"
  maps+=(-map "[v$i]" -map "0:a:0?")
  codec_args+=(
    "-b:v:$i" "${vkbps}k" "-maxrate:v:$i" "$((vkbps * 107 / 100))k" "-bufsize:v:$i" "$((vkbps * 3 / 2))k"
    "-b:a:$i" "${akbps}k"
  )
  varmap+="${varmap:+ }v:$i,a:$i,name:$name"
done

mkdir -p "$out"
session=$(date +%s%3N)
exec "$ffmpeg_bin" -hide_banner -nostdin -loglevel "${ABR_LOGLEVEL:-warning}" \
  -rw_timeout "$(( ${ABR_STALL_SECS:-4} * 1000000 ))" -i "$in" \
  -filter_complex "$split$scales" \
  "${maps[@]}" \
  -c:v libx264 -preset "$preset" -tune zerolatency -profile:v main -pix_fmt yuv420p \
  -force_key_frames "expr:gte(t,n_forced*$fragment)" -sc_threshold 0 \
  -c:a aac -ac 2 -ar 44100 \
  "${codec_args[@]}" \
  -f hls -hls_time "$fragment" -hls_list_size 6 \
  -hls_flags delete_segments+independent_segments+temp_file \
  -master_pl_name master.m3u8 \
  -var_stream_map "$varmap" \
  -hls_segment_filename "$out/%v/$session-%d.ts" \
  "$out/%v/index.m3u8"
