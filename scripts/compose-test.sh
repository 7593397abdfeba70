#!/usr/bin/env bash
# compose-test.sh (`make compose-test`): docker-compose.yml, run for real
# with podman and podman-compose, used as a user would:
#   1. the base images (pulled, or local stand-ins: scripts/container-images.sh)
#      and every image of the platform are built;
#   2. the stack starts (a project of its own, its RTMP and edge ports on
#      free loopback ports); every container's health check passes;
#   3. ffmpeg publishes from the host to the published RTMP port with a
#      valid key; the master playlist and a rendition play through the
#      published edge port (ffprobe); the API container is stopped for
#      COMPOSE_TEST_OUTAGE_SECS (60) while a viewer polls the playlist and
#      its newest segment through the edge: not one error, and the stream
#      keeps advancing; a registration forged with the registry token,
#      naming the API, Redis or an origin's other port, is refused by the
#      edge (502, never contacted: its allowlist is exactly the origins);
#   4. the stream ends: its recording is listed and plays through the edge;
#      `down -v`, then again with ABR=0 and `--scale origin=2`: two streams
#      published to the two origins register under each origin's own
#      address; while the API is stopped, the one the edge never saw plays
#      through the edge's probe of its exact origins; both play (index.m3u8)
#      through the edge (ffprobe; hls.js in headless chromium on the edge's
#      own player page);
#   5. `down -v` leaves no container, network or volume of the project.
# Whatever happens, the project is taken down on exit.
#
# Needs root (podman's default storage, as CI runs). The container settings
# live in this run's own CONTAINERS_CONF (runtime runc, container ulimits
# nofile=20000 nproc=32768, which hosts with hybrid cgroups or a low hard
# nofile limit need); nothing host-wide is changed.
# Environment: COMPOSE_TEST_OUTAGE_SECS (60), COMPOSE_TEST_BROWSER (1: the
# chromium check), CONTAINER_WORK (scratch folder, default target/containers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${CONTAINER_WORK:-$ROOT/target/containers}
OUTAGE=${COMPOSE_TEST_OUTAGE_SECS:-60}
BROWSER=${COMPOSE_TEST_BROWSER:-1}
PODMAN_COMPOSE_VERSION=1.6.0
start=$SECONDS
say() { echo "[compose-test +$((SECONDS - start))s] $*"; }
fail() { echo "[compose-test +$((SECONDS - start))s] FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "run as root (podman's default storage)"
scripts/deps.sh compose
mkdir -p "$WORK"

# podman-compose, pinned, in a virtualenv of its own.
venv=$WORK/podman-compose-$PODMAN_COMPOSE_VERSION
if [[ ! -x $venv/bin/podman-compose ]]; then
  say "installing podman-compose $PODMAN_COMPOSE_VERSION"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" "PyYAML==6.0.4" "python-dotenv==1.2.4"
fi

# shellcheck source=scripts/containers-conf.sh
. "$ROOT/scripts/containers-conf.sh"

project=rtlct$$
compose() { "$venv/bin/podman-compose" --no-ansi --in-pod false -p "$project" -f "$ROOT/docker-compose.yml" "$@"; }
by_project() { echo "--filter=label=io.podman.compose.project=$project"; }
container_of() { # service [index]: its container's id
  podman ps -aq "$(by_project)" --filter "label=com.docker.compose.service=$1" | sed -n "${2:-1}p"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

pids=()
forged=0
logs=$WORK/$project
mkdir -p "$logs"
cleanup() {
  local code=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if ((code != 0)) && [[ -n $(podman ps -aq "$(by_project)") ]]; then
    echo "--- container logs (last lines) ---" >&2
    for c in $(podman ps -aq "$(by_project)"); do
      echo "--- $(podman inspect -f '{{.Name}}' "$c")" >&2
      podman logs --tail 25 "$c" >&2 2>&1 || true
    done
  fi
  compose down -v -t 5 >/dev/null 2>&1 || true
  # Whatever down missed (e.g. scaled replicas), newest first (dependencies).
  for c in $(podman ps -aq "$(by_project)"); do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  podman network rm "${project}_live" >/dev/null 2>&1 || true
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export API_REPORT_TOKEN REDIS_PASSWORD API_EDGE_TOKEN API_OPERATOR_TOKEN PLAYBACK_SECRET
API_REPORT_TOKEN=$(secret) REDIS_PASSWORD=$(secret) API_EDGE_TOKEN=$(secret)
API_OPERATOR_TOKEN=$(secret) PLAYBACK_SECRET=$(secret)
key1=$(secret) key2=$(secret)
export STREAM_KEYS="$key1=golive,$key2=second"

say "base images"
scripts/container-images.sh
say "building the images"
t=$SECONDS
# The Rust stage first, once: podman-compose builds the services in
# parallel, and three concurrent builds of that stage would each compile
# every crate. The services' builds then find it in the layer cache.
podman build --target build -f docker/Dockerfile -t rtmp-live-build . >"$logs/build.log" 2>&1 &&
  compose build >>"$logs/build.log" 2>&1 || { tail -n 40 "$logs/build.log" >&2; fail "image build"; }
say "images built in $((SECONDS - t)) s"

# wait_healthy <seconds>: every container of the project is running and
# passes its health check (podman runs them here: no systemd timers needed).
wait_healthy() {
  local until=$((SECONDS + $1)) c bad
  while true; do
    bad=""
    for c in $(podman ps -aq "$(by_project)"); do
      if [[ $(podman inspect -f '{{.State.Status}}' "$c") != running ]]; then
        bad+=" $(podman inspect -f '{{.Name}}' "$c")(not running)"
      elif [[ -n $(podman inspect -f '{{if .Config.Healthcheck}}x{{end}}' "$c") ]] &&
        ! podman healthcheck run "$c" >/dev/null 2>&1; then
        bad+=" $(podman inspect -f '{{.Name}}' "$c")(unhealthy)"
      fi
    done
    [[ -z $bad ]] && return 0
    ((SECONDS < until)) || fail "containers not healthy after $1 s:$bad"
    sleep 1
  done
}

# publish <rtmp port> <key> <log>: the test pattern, like OBS, in the background.
publish() {
  ffmpeg -hide_banner -loglevel warning -nostdin -re \
    -f lavfi -i "testsrc=size=640x360:rate=30" -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
    -c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
    -b:v 1000k -c:a aac -b:a 96k -ar 48000 -f flv "rtmp://127.0.0.1:$1/stream/$2" >"$3" 2>&1 &
  pids+=($!)
}

# wait_playable <url> <seconds>
wait_playable() {
  local until=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    ((SECONDS < until)) || fail "$1 not playable after $2 s"
    sleep 1
  done
}

# probe <url>: ffprobe finds video and audio.
probe() {
  local streams
  streams=$(ffprobe -v error -rw_timeout 10000000 -show_entries stream=codec_type -of csv=p=0 "$1" | sort -u | tr '\n' ' ')
  [[ $streams == *audio* && $streams == *video* ]] || fail "ffprobe $1: streams '$streams'"
  say "ffprobe $1: $streams"
}

# api_origins <name>: the hosts the API lists for a stream.
api_origins() {
  podman exec "$(container_of api)" curl -fsS "http://127.0.0.1:9090/streams/$1" |
    python3 -c 'import json,sys; print(" ".join(o["host"] for o in json.load(sys.stdin)["origins"]))'
}

volumes_before=$(podman volume ls -q | sort)
assert_gone() {
  local left
  left="$(podman ps -aq "$(by_project)")$(podman network ls -q "$(by_project)")$(podman volume ls -q "$(by_project)")"
  left+=$(podman network ls --format '{{.Name}}' | grep "^${project}_" || true)
  # Anonymous volumes (an image's VOLUME) carry no project label.
  left+=$(comm -13 <(echo "$volumes_before") <(podman volume ls -q | sort))
  [[ -z $left ]] || fail "left behind after down -v: $left"
  say "down -v: no container, network or volume of the project left"
}

# --- one origin, ABR ---------------------------------------------------------
rtmp=$(free_port) edge=$(free_port)
export RTMP_PUBLISH=127.0.0.1:$rtmp:1935 EDGE_PUBLISH=127.0.0.1:$edge:8081 ABR=1
say "up: project $project, RTMP on 127.0.0.1:$rtmp, edge on 127.0.0.1:$edge"
compose up -d >"$logs/up.log" 2>&1 || { tail -n 30 "$logs/up.log" >&2; fail "compose up"; }
wait_healthy 60
say "all containers healthy"
curl -fsS "http://127.0.0.1:$edge/" | grep -qi "<html" || fail "the edge's player page"

publish "$rtmp" "$key1" "$logs/publish1.log"
wait_playable "http://127.0.0.1:$edge/golive/master.m3u8" 60
say "golive live through the edge (advertised as $(api_origins golive))"
probe "http://127.0.0.1:$edge/golive/master.m3u8"
rendition=$(curl -fsS "http://127.0.0.1:$edge/golive/master.m3u8" | grep -v '^#' | head -n1)
probe "http://127.0.0.1:$edge/golive/$rendition"

# A signed playback link issued by the API plays through the edge (the
# containers share PLAYBACK_SECRET), a forged one is refused, and the edge's
# viewer reports reach the API (API_EDGE_TOKEN).
path=$(podman exec "$(container_of api)" curl -fsS -X POST -H "Authorization: Bearer $API_OPERATOR_TOKEN" \
  http://127.0.0.1:9090/streams/golive/playback-tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])') ||
  fail "issuing a playback token"
probe "http://127.0.0.1:$edge${path%index.m3u8}master.m3u8"
fake=$(secret)$(secret)
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$edge/t/4102444800.${fake:0:43}/golive/master.m3u8")
[[ $code == 403 ]] || fail "a forged playback token: the edge answered $code, not 403"
until=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$edge/streams.json" | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin).get("viewers",{}).get("golive",0) < 1)'; do
  ((SECONDS < until)) || fail "no viewer of golive counted by the API after 30 s"
  curl -fsS -o /dev/null "http://127.0.0.1:$edge/golive/master.m3u8"
  sleep 1
done
say "signed link plays, a forged one is refused (403), viewers counted"

# Who runs what: as root only the origin's and the edge's supervisors (the
# origin's entrypoint; the edge's `rtmp-live-render edge`, which its
# entrypoint execs) and each nginx master; the ABR ladder (ffmpeg),
# discovery and nginx workers as www-data, the API as nobody.
check_users() { # service  allowed-root-commands...  (comm names)
  local svc=$1 c procs
  shift
  c=$(container_of "$svc")
  procs=$(podman top "$c" user comm | tail -n +2)
  echo "$procs" | awk -v ok="$*" -v svc="$svc" '
    BEGIN { n = split(ok, a, " "); for (i = 1; i <= n; i++) allowed[a[i]] = 1 }
    $1 == "root" && !($2 in allowed) { print svc ": " $2 " runs as root"; bad = 1 }
    $1 == "root" && $2 == "nginx" { masters++ }
    END { if (masters > 1) { print svc ": " masters " nginx processes as root"; bad = 1 } exit bad }' >&2 ||
    fail "$svc runs processes as root: $(echo "$procs" | tr '\n' ';')"
  echo "$procs"
}
origin_procs=$(check_users origin origin-entrypoi nginx)
grep -Eq '^www-data +ffmpeg' <<<"$origin_procs" || fail "no ffmpeg ladder as www-data in the origin: $origin_procs"
grep -Eq '^www-data +rtmp-live-disc' <<<"$origin_procs" || fail "no discovery as www-data in the origin: $origin_procs"
check_users edge rtmp-live-rende nginx >/dev/null
check_users api >/dev/null
say "users: origin $(echo "$origin_procs" | awk '{print $2 "=" $1}' | sort -u | tr '\n' ' '), edge workers and API not root"


# A registration forged with the registry token (a stolen token, or written
# straight into Redis) names something that is no origin: the edge refuses
# it (502) without contacting it, whatever the address or name.
api_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container_of api)")
origin_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container_of origin)")
for host in "api:9090" "$api_ip:9090" "redis:6379" "$origin_ip:9091" "$origin_ip:1935"; do
  name=forged$((++forged))
  podman exec "$(container_of api)" curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $API_REPORT_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"name\":\"$name\",\"manifest\":\"index.m3u8\",\"host\":\"$host\"}" \
    http://127.0.0.1:9090/streams || fail "forged registration of $host not stored"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$edge/$name/index.m3u8")
  [[ $code == 502 ]] || fail "a registration naming $host: the edge answered $code, not 502"
done
edge_log=$(podman logs "$(container_of edge)" 2>&1)
grep -q 'not allowed by "edge_router_origins"' <<<"$edge_log" ||
  fail "the edge did not log the refused origins"
say "forged registrations (API, Redis, other ports) refused by the edge: 502"

say "API outage: the api container stopped for $OUTAGE s while a viewer plays"
python3 scripts/compose-test/viewer.py "http://127.0.0.1:$edge/golive/master.m3u8" $((OUTAGE + 10)) >"$logs/viewer.json" &
viewer=$!
pids+=($viewer)
sleep 5
podman stop -t 5 "$(container_of api)" >/dev/null
sleep "$OUTAGE"
podman start "$(container_of api)" >/dev/null
wait "$viewer" || fail "the viewer saw errors during the API outage: $(cat "$logs/viewer.json")"
say "viewer through the outage: $(cat "$logs/viewer.json")"
wait_healthy 30

# The streamer stops: the session is a recording (the ABR ladder's master
# and its renditions), listed by the API and played through the edge.
kill "${pids[0]}" 2>/dev/null || true
until=$((SECONDS + 60))
until rec=$(curl -fsS "http://127.0.0.1:$edge/recordings.json?stream=golive" |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["recordings"]; print(r[0]["url"]) if r else sys.exit(1)'); do
  ((SECONDS < until)) || fail "no recording of golive listed 60 s after the stream ended"
  sleep 1
done
probe "http://127.0.0.1:$edge$rec"
say "the ended session plays as a recording: $rec"

compose down -v -t 5 >"$logs/down.log" 2>&1 || fail "compose down"
assert_gone

# --- two origins, one rendition each ---------------------------------------
edge=$(free_port)
export RTMP_PUBLISH=127.0.0.1::1935 EDGE_PUBLISH=127.0.0.1:$edge:8081 ABR=0
say "up --scale origin=2 (ABR=0), edge on 127.0.0.1:$edge"
compose up -d --scale origin=2 >"$logs/up2.log" 2>&1 || { tail -n 30 "$logs/up2.log" >&2; fail "compose up --scale origin=2"; }
wait_healthy 60
o1=$(container_of origin 1) o2=$(container_of origin 2)
[[ -n $o1 && -n $o2 ]] || fail "two origin containers expected"
p1=$(podman port "$o1" 1935/tcp | head -n1) p2=$(podman port "$o2" 1935/tcp | head -n1)
publish "${p1##*:}" "$key1" "$logs/publish2a.log"
publish "${p2##*:}" "$key2" "$logs/publish2b.log"
wait_playable "http://127.0.0.1:$edge/golive/index.m3u8" 60
# `second` is registered (by origin 2) but the edge never saw it: with the
# API down, the edge probes its exact origins and finds it there.
until=$((SECONDS + 60))
until [[ -n $(api_origins second 2>/dev/null) ]]; do
  ((SECONDS < until)) || fail "second not registered"
  sleep 1
done
podman stop -t 5 "$(container_of api)" >/dev/null
wait_playable "http://127.0.0.1:$edge/second/index.m3u8" 30
say "second, never seen by the edge, plays while the API is down (origin probes)"
podman start "$(container_of api)" >/dev/null
wait_healthy 30
probe "http://127.0.0.1:$edge/golive/index.m3u8"
probe "http://127.0.0.1:$edge/second/index.m3u8"
if ((BROWSER)); then
  make -s player browser-deps >/dev/null
  # Here, where the origins package without transcoding: the ABR ladder's
  # three live x264 encodes beside chromium overload a 2-core machine.
  say "hls.js in headless chromium (the edge's player page)"
  profile=$(mktemp -d)
  node e2e/browser/play.mjs "{\"url\":\"http://127.0.0.1:$edge/\",\"mode\":\"edge-page\",\"stream\":\"golive\",\"seconds\":15,\"userDataDir\":\"$profile\"}" \
    >"$logs/browser.log" 2>&1 || { rm -rf "$profile"; tail -n 20 "$logs/browser.log" >&2; fail "browser run"; }
  rm -rf "$profile"
  grep '^{"how"' "$logs/browser.log" | tail -n1 | python3 scripts/compose-test/browser_check.py 15 ||
    fail "hls.js did not play"
fi
ip_of() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
h1=$(ip_of "$o1"):8080 h2=$(ip_of "$o2"):8080
a1=$(api_origins golive) a2=$(api_origins second)
say "API: golive on $a1, second on $a2 (origin containers: $h1, $h2)"
[[ $a1 == "$h1" && $a2 == "$h2" ]] || fail "each stream must be registered by its own origin's address"

# podman-compose 1.6's `down` knows only the compose file's replica count
# (docker compose removes every replica): the extra origin goes first.
podman rm -f -t 5 "$o2" >/dev/null
compose down -v -t 5 >"$logs/down2.log" 2>&1 || fail "compose down"
assert_gone
rm -rf "$logs"
say "passed in $((SECONDS - start)) s"
