#!/usr/bin/env bash
# lab.sh (`make lab`): the multi-node lab (lab/, docs/lab.md). Builds the
# platform's images as compose-test does (local stand-ins for base images
# no registry serves), then runs `rtmp-live-lab` with the arguments given
# (default: chaos). Needs root: podman's default storage, and iptables in
# the containers' network namespaces.
# Environment: LAB_HOLD_SECS, LAB_LOSS_PERCENT, LAB_FAULTS, LAB_NET (see
# `rtmp-live-lab --help`), CONTAINER_WORK (default target/containers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${CONTAINER_WORK:-$ROOT/target/containers}
[[ $(id -u) -eq 0 ]] || { echo "lab: run as root" >&2; exit 1; }
scripts/deps.sh compose
mkdir -p "$WORK"
# shellcheck source=scripts/containers-conf.sh
. "$ROOT/scripts/containers-conf.sh"
scripts/container-images.sh
echo "[lab] building the images" >&2
podman build -q --target build -f docker/Dockerfile -t rtmp-live-build . >/dev/null
for t in api origin edge; do
  podman build -q --target "$t" -f docker/Dockerfile -t "rtmp-live-$t" . >/dev/null
done
cargo build -q --release -p rtmp-live-lab
exec target/release/rtmp-live-lab "${@:-chaos}"
