#!/usr/bin/env bash
# kube-test.sh (`make kube-test`): the platform's images as Kubernetes runs
# them (deploy/kubernetes/: non-root users, read-only root file systems, no
# capabilities), played for real by `podman kube play` from
# deploy/podman/rtmp-live-pod.yaml (podman plays Pods, not StatefulSets or
# Services: one pod holds Redis, the API, an origin and an edge):
#   1. the images are built (as compose-test builds them; cached layers);
#   2. the pod starts with this run's own ports, folders and credentials;
#   3. ffmpeg publishes into its RTMP port; the stream plays through its
#      edge (ffprobe of the edge's playlist URL);
#   4. no process of the four containers runs as root, and their root file
#      systems are read-only;
#   5. `podman kube down` leaves nothing behind.
# Needs root (podman's default storage, as CI runs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${CONTAINER_WORK:-$ROOT/target/containers}/kube
start=$SECONDS
say() { echo "[kube-test +$((SECONDS - start))s] $*"; }
fail() { echo "[kube-test +$((SECONDS - start))s] FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "run as root (podman's default storage)"
scripts/deps.sh compose
rm -rf "$WORK" && mkdir -p "$WORK/state/redis" "$WORK/state/origin" "$WORK/state/edge"
# shellcheck source=scripts/containers-conf.sh
. "$ROOT/scripts/containers-conf.sh"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
rtmp=$(free_port) edge=$(free_port) key=$(secret)
pod=$WORK/pod.yaml
pub=

cleanup() {
  local code=$?
  [[ -n $pub ]] && kill "$pub" 2>/dev/null || true
  if ((code != 0)); then
    for c in redis api origin edge; do
      echo "--- rtmp-live-$c (last lines)" >&2
      podman logs --tail 25 "rtmp-live-$c" >&2 2>&1 || true
    done
  fi
  [[ -f $pod ]] && podman kube down "$pod" >/dev/null 2>&1 || true
  rm -rf "$WORK/state"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "base images"
scripts/container-images.sh
say "building the images"
t=$SECONDS
for target in api origin edge; do
  podman build --target "$target" -f docker/Dockerfile -t "rtmp-live-$target" . >>"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log" >&2; fail "image build ($target)"; }
done
say "images built in $((SECONDS - t)) s"

# This run's ports, folders (owned by each container's user) and secrets.
sed -e "s|hostPort: 1935|hostPort: $rtmp|" -e "s|hostPort: 8081|hostPort: $edge|" \
  -e "s|/var/lib/rtmp-live-pod/|$WORK/state/|" \
  -e "s|change-me-redis-password-0000000|$(secret)|g" \
  -e "s|change-me-report-token-00000000|$(secret)|g" \
  -e "s|change-me-edge-token-000000000000|$(secret)|g" \
  -e "s|change-me-stream-key-0000000|$key|g" \
  deploy/podman/rtmp-live-pod.yaml >"$pod"
chmod 600 "$pod"
chown 999:999 "$WORK/state/redis"
chown 33:33 "$WORK/state/origin" "$WORK/state/edge"

say "podman kube play"
podman kube play --replace "$pod" >"$WORK/play.log" 2>&1 || { cat "$WORK/play.log" >&2; fail "kube play"; }
until curl -fs -o /dev/null "http://127.0.0.1:$edge/"; do
  ((SECONDS - start < 600)) || fail "the edge did not answer"
  for c in redis api origin edge; do
    [[ $(podman inspect -f '{{.State.Status}}' "rtmp-live-$c") == running ]] || fail "rtmp-live-$c is not running"
  done
  sleep 1
done
until (exec 3<>"/dev/tcp/127.0.0.1/$rtmp") 2>/dev/null; do
  ((SECONDS - start < 600)) || fail "the origin's RTMP port did not answer"
  [[ $(podman inspect -f '{{.State.Status}}' rtmp-live-origin) == running ]] || fail "rtmp-live-origin is not running"
  sleep 1
done
say "the pod is up (edge on $edge, RTMP on $rtmp)"

ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc2=size=640x360:rate=25" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 60 \
  -c:v libx264 -preset veryfast -tune zerolatency -g 50 -pix_fmt yuv420p -c:a aac -b:a 64k \
  -f flv "rtmp://127.0.0.1:$rtmp/stream/$key" >"$WORK/publish.log" 2>&1 &
pub=$!
url=http://127.0.0.1:$edge/golive/index.m3u8
until curl -fsS "$url" 2>/dev/null | grep -q '^#EXTINF'; do
  ((SECONDS - start < 600)) || fail "the stream did not play through the edge ($url)"
  kill -0 "$pub" 2>/dev/null || { cat "$WORK/publish.log" >&2; fail "the publisher ended"; }
  sleep 1
done
read -r frames < <(ffprobe -v error -rw_timeout 10000000 -read_intervals "%+4" -select_streams v:0 \
  -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$url")
((frames >= 25)) || fail "ffprobe read $frames frames through the edge"
say "published into the pod, played through its edge: $frames frames in 4 s (ffprobe)"

for c in redis api origin edge; do
  users=$(podman top "rtmp-live-$c" user | tail -n +2 | sort -u | tr '\n' ' ')
  [[ $users != *root* ]] || fail "rtmp-live-$c runs a process as root: $users"
  [[ $(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "rtmp-live-$c") == true ]] ||
    fail "rtmp-live-$c has a writable root file system"
  say "rtmp-live-$c: processes as $users; read-only root"
done

kill "$pub" 2>/dev/null || true
pub=
podman kube down "$pod" >/dev/null
[[ -z $(podman ps -aq --filter "pod=rtmp-live") ]] || fail "containers left after kube down"
say "passed"
