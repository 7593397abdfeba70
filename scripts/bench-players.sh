#!/usr/bin/env bash
# bench-players.sh: glass-to-glass latency, stalls and frames of every major
# web player, each with its default settings and in its low-latency mode,
# playing live through the edge in Debian's headless chromium:
#   hls.js      defaults (lowLatencyMode on) | { lowLatencyMode: true }
#   shaka       defaults | { streaming: { lowLatencyMode: true } }
#   video.js    defaults | { html5: { vhs: { experimentalLLHLS: true, llhls: true } } }
#
# Starts the platform (scripts/up.sh, one origin, spare ports), publishes
# frames that carry the publisher's wall clock (scripts/clock-frames.py ->
# ffmpeg x264 veryfast/zerolatency, BENCH_SIZE 1280x720 at BENCH_FPS 30,
# keyframes every 2 s, AAC), then runs e2e/browser/players.mjs once per
# player and mode, one after another, on the edge URL: BENCH_SECS (60)
# measured after BENCH_WARMUP (10) s of playing. Prints one Markdown table
# per player (for BENCHMARKS.md) and keeps every JSON report in BENCH_OUT
# (default target/bench/players-<date>/).
#
#   BENCH_PLAYERS="hlsjs shaka videojs"  BENCH_MODES="default ll"
#   BENCH_ABR=1       ABR on, the players read the master playlist
#   BENCH_SRC=<url>   measure that playlist instead (no platform, no
#                     publisher; latency only if its frames carry the clock)
#   BENCH_TABLES=<dir> only print the tables of the reports in <dir>
# Needs `make build browser-deps`, Debian's chromium, ffmpeg, python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECS:-60}
warmup=${BENCH_WARMUP:-10}
players=${BENCH_PLAYERS:-hlsjs shaka videojs}
modes=${BENCH_MODES:-default ll}
size=${BENCH_SIZE:-1280x720}
fps=${BENCH_FPS:-30}
abr=${BENCH_ABR:-0}
out=${BENCH_OUT:-$ROOT/target/bench/players-$(date -u +%Y%m%dT%H%M%SZ)}
w=${size%x*} h=${size#*x}

# One table per player from the reports players-<player>-<mode>.json in $1.
tables() {
  node - "$1" <<'EOF'
const fs = require("fs");
const path = require("path");
const dir = process.argv[2];
const names = { hlsjs: "hls.js", shaka: "shaka-player", videojs: "video.js (VHS)" };
const reports = fs.readdirSync(dir).filter((f) => /^players-.*\.json$/.test(f)).sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
const s = (ms) => (ms === null || ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`);
for (const player of ["hlsjs", "shaka", "videojs"]) {
  const rs = reports.filter((r) => r.player === player);
  if (!rs.length) continue;
  const v = Object.entries(rs[0].versions || {}).map(([k, x]) => `${k} ${x}`).join(", ");
  console.log(`\n#### ${names[player]} (${v}; ${rs[0].seconds} s after ${rs[0].warmup} s of warm-up)\n`);
  console.log("| mode | plays | first frame | glass-to-glass p50 | p95 | min | max | player's own latency p50 | stalls after warm-up (in all) | stall time after warm-up | longest freeze after warm-up | frames after warm-up (fps) | media time / wall time | renditions, switches | errors (fatal) | requests/s (parts, segments) |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rs.sort((a, b) => (a.mode === b.mode ? 0 : a.mode === "default" ? -1 : 1))) {
    const l = r.latency_ms || {};
    const h = r.http || {};
    const fatal = (r.fatal || []).length ? ` (${r.fatal[0].slice(0, 60)})` : "";
    console.log(
      `| ${r.mode} | ${r.plays ? "yes" : "**no**"} | ${s(r.first_frame_ms)} | ${s(l.p50)} | ${s(l.p95)} | ${s(l.min)} | ${s(l.max)} | ` +
        `${r.player_latency_s && r.player_latency_s.p50 !== null ? r.player_latency_s.p50.toFixed(2) + " s" : "-"} | ` +
        `${r.stalls_after_warmup ?? "-"} (${r.stalls ?? "-"}) | ${s(r.stall_ms_after_warmup)} | ${s(r.longest_freeze_after_warmup_ms)} | ` +
        `${r.frames_after_warmup} (${r.fps_after_warmup ?? "-"}) | ${r.media_time && r.media_time.ratio_after_warmup !== null ? r.media_time.ratio_after_warmup : "-"} | ` +
        `${(r.renditions || []).length}, ${r.switches ?? "-"} | ${r.error_count ?? 0}${fatal} | ` +
        `${h.requests && r.watched_s ? (h.requests / r.watched_s).toFixed(1) : "-"} (${h.parts ?? "-"}, ${h.segments ?? "-"}) |`,
    );
  }
  const failed = rs.filter((r) => !r.plays);
  for (const r of failed) console.log(`\n${r.mode}: ${(r.failures || []).join("; ").slice(0, 400)}`);
}
EOF
}

if [[ -n ${BENCH_TABLES:-} ]]; then
  tables "$BENCH_TABLES"
  exit 0
fi
mkdir -p "$out"

source "$ROOT/scripts/spare-platform.sh"
trap stop_platform EXIT

if [[ -n ${BENCH_SRC:-} ]]; then
  src=$BENCH_SRC
  what="$src"
else
  start_platform "$abr"

  # The publisher in its own process group (generator | ffmpeg).
  set -m
  (python3 "$ROOT/scripts/clock-frames.py" "$fps" "$w" "$h" |
    ffmpeg -hide_banner -nostdin -loglevel error \
      -f rawvideo -pix_fmt gray -s "$size" -framerate "$fps" -i - \
      -re -f lavfi -i sine=frequency=440:sample_rate=44100 \
      -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p \
      -b:v "$((w * h * fps / 11000))k" -maxrate "$((w * h * fps / 11000))k" -bufsize "$((w * h * fps / 5500))k" \
      -g $((fps * 2)) -keyint_min $((fps * 2)) -sc_threshold 0 -c:a aac -b:a 64k \
      -f flv "rtmp://127.0.0.1:$RTMP_PORT/stream/$key") >"$state/publisher.log" 2>&1 &
  pub=$!
  set +m
  src="http://127.0.0.1:$EDGE_PORT/golive/index.m3u8"
  media=$src
  if [[ $abr == 1 ]]; then
    src="http://127.0.0.1:$EDGE_PORT/golive/master.m3u8"
    media="http://127.0.0.1:$EDGE_PORT/golive/240p/index.m3u8"
  fi
  ready=0
  for _ in $(seq 600); do
    if curl -sf "$src" >/dev/null && curl -sf "$media" | grep -q '#EXT-X-PART:'; then ready=1; break; fi
    sleep 0.1
  done
  ((ready)) || { tail -n 20 "$state/up.log" "$state/publisher.log" >&2; echo "no LL-HLS stream at $media" >&2; exit 1; }
  sleep 4
  what="the edge, ${size}@${fps} clock publisher, ABR=$abr"
fi

echo "cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg); $what; $secs s measured per run after $warmup s; reports in $out"
cd "$ROOT/e2e/browser"
for player in $players; do
  for mode in $modes; do
    f="$out/players-$player-$mode.json"
    node players.mjs "{\"src\":\"$src\",\"player\":\"$player\",\"mode\":\"$mode\",\"seconds\":$secs,\"warmup\":$warmup,\"clockHeight\":$h,\"out\":\"$f\"}" >/dev/null || true
    if [[ -s $f ]]; then
      node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const l = r.latency_ms || {};
    const h = r.http || {};
        console.log(`${r.player} ${r.mode}: ${r.plays ? "plays" : "DOES NOT PLAY"}; ` +
          (r.latency_ms ? `latency p50 ${l.p50} ms, p95 ${l.p95} ms; ` : "no latency (clock not read); ") +
          `stalls ${r.stalls_after_warmup} after warm-up (${r.stalls} in all); frames ${r.frames_after_warmup} (${r.fps_after_warmup} fps)` +
          (r.failures.length ? `; ${r.failures.join("; ").slice(0, 300)}` : ""));
      ' "$f"
    else
      echo "$player $mode: no report"
    fi
  done
done
tables "$out"
