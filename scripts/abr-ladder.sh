#!/usr/bin/env bash
# The ABR transcoding ladder, in one place. nginx-rtmp starts it with
# `exec_push` for every stream published into the HLS application (ABR on):
#
#   abr-ladder.sh <input url> <output folder> <renditions app url>
#
# It reads the local stream, encodes each rendition and publishes it back
# into nginx-rtmp's loopback-only renditions application (<renditions app
# url>, e.g. rtmp://127.0.0.1:1935/abr) as `<name>/<rendition>`, <name>
# being the output folder's. nginx-rtmp packages each rendition as it does a
# single-rendition stream (same fragments, same naming, the fragment in
# progress growing under its final name, so the LL-HLS component can cut
# parts from it), under <output folder> (= <HLS_PATH>/<name>):
#   <rendition>/index.m3u8    one media playlist per rendition
#   <rendition>/<ms>.ts       2 s fragments; keyframes forced every 2 s and
#                             nginx-rtmp's aligned slicing keep the
#                             renditions' fragments aligned (same sequence
#                             numbers, same durations)
#   master.m3u8               written here once every rendition has its
#                             first fragment of this ladder: BANDWIDTH from
#                             the ladder's rates, RESOLUTION and CODECS from
#                             ffprobe on that fragment (not on an earlier
#                             session's, still listed after a reconnect);
#                             lowest rate first
# (ffmpeg's own HLS muxer writes each segment out whole when it closes:
# nothing to cut parts from; docs/abr-ll-spike.md.)
#
# nginx-rtmp stops this script (SIGTERM) when the publisher leaves: it stops
# ffmpeg (whose RTMP outputs then close, and nginx-rtmp closes each
# rendition's last fragment) and the master's keeper. As a second guard
# (nginx-rtmp does not always stop exec_push children when the publish was
# relayed in), ffmpeg gives up when its input stalls for ABR_STALL_SECS
# (default 4), and this script ends with it.
#
# The ladder: name:height:video kbit/s:audio kbit/s (override with ABR_LADDER).
# A rung is never taller than the source: upscaling would cost a larger
# encode for no detail. The shortest rung taller than the source is encoded
# at the source's height, and the ones above it (which would be copies of
# it at a higher rate) as stubs of 16 pixels that the master does not list:
# a 360p publisher gets 480p at 640x360 and 240p at 426x240. (Only ffmpeg
# knows the source's size, once it has started: the ladder's outputs are
# fixed before that.) After a reconnect, rungs the last session's master
# listed are copies, not stubs, for the players still holding that master.
set -euo pipefail
in=${1:?usage: abr-ladder.sh <input url> <output folder> <renditions app url>}
out=${2:?usage: abr-ladder.sh <input url> <output folder> <renditions app url>}
app_url=${3:?usage: abr-ladder.sh <input url> <output folder> <renditions app url>}
ladder=${ABR_LADDER:-"720p:720:2500:128 480p:480:1000:96 240p:240:400:64"}
fragment=${ABR_FRAGMENT_SECS:-2}
preset=${ABR_PRESET:-superfast}
ffmpeg_bin=${FFMPEG:-ffmpeg}
ffprobe_bin=${FFPROBE:-ffprobe}
name=$(basename "$out")
# nginx-rtmp starts the ladder on every publish into the packaging
# application, before its own access rules refuse a publisher that is not
# this host (SECURITY.md): the name is whatever that client sent. Only a
# stream name the API could have given (rtmp_live_types::is_valid_name),
# exactly the input's and the output folder's last part, gets a ladder.
if [[ ! $name =~ ^[A-Za-z0-9_-]{1,64}$ || $in != */hls/"$name" || $out != */"$name" ]]; then
  echo "abr-ladder.sh: refusing stream name '${in##*/hls/}'" >&2
  exit 2
fi
# the application's name and the server's address, for ffmpeg's RTMP options
app=${app_url##*/}
server=${app_url%/*}

read -r -a rungs <<<"$ladder"
# the height of a rung that would only copy a shorter one (see below)
stub=16
n=${#rungs[@]}
split="[0:v]split=$n"
scales=""
outputs=()
for i in "${!rungs[@]}"; do
  IFS=: read -r rname height vkbps akbps <<<"${rungs[$i]}"
  split+="[s$i]"
  # the next shorter rung's height (0 below the shortest): a source no
  # taller than that gets nothing from this rung but a copy of that one,
  # so this rung encodes a stub instead, which the master does not list
  below=0
  for other in "${rungs[@]}"; do
    IFS=: read -r _ h _ _ <<<"$other"
    if ((h < height && h > below)); then below=$h; fi
  done
  # ...unless the last session's master (a publisher reconnecting) lists
  # it: players that loaded that master go on playing this rendition, and
  # get a picture, not a stub (the new master lists only one of the copies)
  if grep -qxF "$rname/index.m3u8" "$out/master.m3u8" 2>/dev/null; then below=0; fi
  scales+=";[s$i]scale=w=-2:h=if(gt(ih\\,$below)\\,min(ih\\,$height)\\,$stub)[v$i]"
  outputs+=(
    -map "[v$i]" -map "0:a:0?"
    -c:v libx264 -preset "$preset" -tune zerolatency -profile:v main -pix_fmt yuv420p
    -force_key_frames "expr:gte(t,n_forced*$fragment)" -sc_threshold 0
    -b:v "${vkbps}k" -maxrate:v "$((vkbps * 107 / 100))k" -bufsize:v "$((vkbps * 3 / 2))k"
    -c:a aac -ac 2 -ar 44100 -b:a "${akbps}k"
    -f flv -rtmp_app "$app" -rtmp_playpath "$name/$rname" "$server"
  )
done

# Each rendition's playlist file before this ladder's first fragment (its
# inode, or none): after a publisher reconnects, the last session's
# playlists still list its fragments, encoded from the last source (maybe
# at another size). nginx-rtmp renames a new file over a playlist whenever a
# fragment closes, so a playlist that is no longer that file lists one of
# this ladder's fragments, last.
declare -A before=()
for rung in "${rungs[@]}"; do
  IFS=: read -r rname _ <<<"$rung"
  before[$rname]=$(stat -c %i "$out/$rname/index.m3u8" 2>/dev/null || echo none)
done

# One rendition's master entry, once its playlist lists a fragment of this
# ladder's: the newest one tells its size and level.
variant() {
  local rname=$1 vkbps=$2 akbps=$3 seg probe w h level codecs audio inode cc
  inode=$(stat -c %i "$out/$rname/index.m3u8" 2>/dev/null) || return 1
  [ "$inode" != "${before[$rname]}" ] || return 1
  seg=$(grep -v '^#' "$out/$rname/index.m3u8" 2>/dev/null | grep '\.ts$' | tail -n1)
  [ -n "$seg" ] || return 1
  probe=$("$ffprobe_bin" -v error -show_entries stream=codec_type,codec_name,width,height,level,closed_captions \
    -of compact=p=0:nk=0 "$out/$rname/$seg") || return 1
  w=$(sed -n 's/.*codec_type=video.*width=\([0-9]*\).*/\1/p' <<<"$probe" | head -1)
  h=$(sed -n 's/.*codec_type=video.*height=\([0-9]*\).*/\1/p' <<<"$probe" | head -1)
  level=$(sed -n 's/.*codec_type=video.*level=\([0-9]*\).*/\1/p' <<<"$probe" | head -1)
  [ -n "$w" ] && [ -n "$h" ] && [ -n "$level" ] || return 1
  # H.264 Main profile (profile_idc 77, constraint_set1), the ladder's level
  codecs=$(printf 'avc1.4d40%02x' "$level")
  audio=0
  if grep -q 'codec_type=audio' <<<"$probe"; then
    codecs+=",mp4a.40.2"
    audio=$akbps
  fi
  # BANDWIDTH is a peak (the encoder's maxrate and some overhead); no
  # AVERAGE-BANDWIDTH: the ladder does not know the average (a still
  # picture costs a fraction of the target rate)
  # CEA-608/708 captions in the video (the encoder carries the source's
  # along): the master declares them, or that there are none (CC below)
  cc=NONE
  if grep -q 'codec_type=video.*closed_captions=1' <<<"$probe"; then cc='"cc"'; fi
  printf '#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS="%s",CLOSED-CAPTIONS=%s\n%s/index.m3u8\n' \
    "$(( (vkbps * 107 / 100 + audio) * 1000 ))" "$w" "$h" "$codecs" "$cc" "$rname"
}

# Closed captions, per RFC 8216bis 4.4.6.2: CLOSED-CAPTIONS=NONE on every
# variant when ffprobe saw none in any rendition's fragment; otherwise one
# group, "cc" (CC1, the first 608 channel), on every variant. A player that
# is not told either way looks for captions in the segments itself: shaka
# 5.2 then fetches the in-progress segment's parts-only entry as if it were
# a segment, and fails to load (undefined URI) while the playlist lists
# fewer than 3 whole segments: the first 4-6 s of every stream.
captions() {
  local body=$1
  if [[ $body == *'CLOSED-CAPTIONS="cc"'* ]]; then
    body=${body//CLOSED-CAPTIONS=NONE/CLOSED-CAPTIONS=\"cc\"}
    body=${body/\#EXT-X-STREAM-INF:/\#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\",DEFAULT=YES,AUTOSELECT=YES$'\n'\#EXT-X-STREAM-INF:}
  fi
  printf '%s' "$body"
}

# Writes master.m3u8 (temporary file + rename) once every rendition has a
# fragment, then keeps its modification time fresh while the ladder runs:
# nginx-rtmp's hls_cleanup deletes any *.m3u8 under hls_path that is older
# than hls_playlist_length. When the ladder stops, the master ages out with
# the renditions' files.
keep_master() {
  local ffmpeg_pid=$1 body rname height vkbps akbps entry i j
  # each rendition's entry, probed once, when it has this ladder's fragment
  local -a entries=() sizes=() rates=()
  while kill -0 "$ffmpeg_pid" 2>/dev/null; do
    body=$'#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n'
    for i in "${!rungs[@]}"; do
      [ -z "${entries[$i]:-}" ] || continue
      IFS=: read -r rname height vkbps akbps <<<"${rungs[$i]}"
      entry=$(variant "$rname" "$vkbps" "$akbps") || { body=; continue; }
      [[ $entry =~ RESOLUTION=([0-9x]+) ]] && sizes[i]=${BASH_REMATCH[1]}
      [[ $entry =~ BANDWIDTH=([0-9]+) ]] && rates[i]=${BASH_REMATCH[1]}
      entries[i]=$entry
    done
    # Not listed: stubs (rungs that would copy a shorter one), and of
    # renditions of one size (copies kept for a reconnect, two rungs of one
    # height), all but the one at the lowest rate.
    # Listed from the lowest rate up: players start with the first entry
    # (hls.js with its defaults does), and one that starts above what it
    # can assume of the network switches down before it plays, which costs
    # that time in latency (0.4-0.7 s measured), for good; switching up
    # once it plays costs none.
    if [ -n "$body" ]; then
      for i in $(for k in "${!entries[@]}"; do echo "${rates[$k]} $k"; done | sort -n -k1,1 -k2,2 | cut -d' ' -f2); do
        if [[ ${sizes[$i]##*x} == "$stub" ]]; then continue; fi
        for j in "${!entries[@]}"; do
          if [[ $i != "$j" && ${sizes[$j]} == "${sizes[$i]}" ]] &&
            (( rates[j] < rates[i] || (rates[j] == rates[i] && j < i) )); then
            continue 2
          fi
        done
        body+="${entries[$i]}"$'\n'
      done
      captions "$body" >"$out/.master.m3u8.tmp"
      mv -f "$out/.master.m3u8.tmp" "$out/master.m3u8"
      break
    fi
    sleep 0.2
  done
  while kill -0 "$ffmpeg_pid" 2>/dev/null; do
    touch "$out/master.m3u8"
    sleep 2
  done
}

# nginx-rtmp creates only the last folder of `<name>/<rendition>`
mkdir -p "$out"
"$ffmpeg_bin" -hide_banner -nostdin -loglevel "${ABR_LOGLEVEL:-warning}" \
  -rw_timeout "$(( ${ABR_STALL_SECS:-4} * 1000000 ))" -i "$in" \
  -filter_complex "$split$scales" \
  "${outputs[@]}" &
ffmpeg_pid=$!
trap 'kill -TERM "$ffmpeg_pid" 2>/dev/null' TERM INT HUP
keep_master "$ffmpeg_pid" </dev/null >/dev/null 2>&1 &
keeper=$!
status=0
# `wait` returns early when a trapped signal arrives: wait until ffmpeg is gone
while kill -0 "$ffmpeg_pid" 2>/dev/null; do
  wait "$ffmpeg_pid" || status=$?
done
kill "$keeper" 2>/dev/null || true
exit "$status"
