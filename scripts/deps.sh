#!/usr/bin/env bash
# Install the Debian packages the platform and its tests need. Idempotent and
# quick when everything is present. As root it installs what is missing;
# otherwise it names what is missing and fails.
set -euo pipefail

# Usage: deps.sh [run|build|all|compose]. `run` (make up) checks what the
# running platform needs; `build` (make build, make up) adds the module's
# build requirements; `all` (default: make test, CI) adds the test and
# benchmark tools; `compose` (make compose-test) adds podman and what makes
# local base images.
run_pkgs=(
  nginx libnginx-mod-rtmp   # origin (nginx-rtmp) and edge (stock nginx)
  redis-server              # the API's store
  ffmpeg                    # ABR ladder, `make stream`
  fonts-dejavu-core         # the test pattern's clock (drawtext)
  curl procps psmisc        # scripts
)
build_pkgs=(
  nginx-dev                 # nginx source + configure flags for the module build
  libclang-dev              # bindgen (ngx crate)
  pkg-config libssl-dev libpcre2-dev zlib1g-dev   # configuring the nginx tree
  npm                       # the player page's hls.js (make player); skipped when npm is on PATH
)
test_pkgs=(
  wrk                       # benchmarks
  docker-compose            # validates docker-compose.yml without an engine (tests)
  chromium                  # the browser end-to-end tests (e2e/tests/browser.rs, players.rs)
  vlc-bin vlc-plugin-base   # VLC's HLS client (cvlc) in the LL-HLS and players end-to-end tests
  mpv                       # mpv's HLS client (e2e/tests/players.rs)
  gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
                            # GStreamer's hlsdemux/hlsdemux2 and decoders (e2e/tests/players.rs)
  dnsmasq-base              # a real DNS server for the edge's origins-by-name tests
  python3-venv              # kubernetes-validate, pinned, from PyPI (make check)
)
compose_pkgs=(
  podman runc               # the container engine (runc: crun refuses hybrid cgroups)
  golang-github-containernetworking-plugin-dnsname
                            # container names on compose networks (Debian 12's podman uses CNI)
  debootstrap               # local base images where no registry answers
  python3-venv              # podman-compose, pinned, from PyPI
  chromium                  # hls.js in a real browser against the stack
  catatonit                 # the pause process of `podman kube play`'s pods (kube-test)
  iptables                  # partitions and packet loss between the lab's nodes (make lab)
)
case ${1:-all} in
  run) pkgs=("${run_pkgs[@]}") ;;
  build) pkgs=("${run_pkgs[@]}" "${build_pkgs[@]}") ;;
  all) pkgs=("${run_pkgs[@]}" "${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  compose) pkgs=("${run_pkgs[@]}" "${build_pkgs[@]}" "${compose_pkgs[@]}") ;;
  *) echo "usage: deps.sh [run|build|all|compose]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # Any npm will do (e.g. one that comes with a Node.js from elsewhere).
  [[ $p == npm ]] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing nginx/redis-server must not leave the distribution's own services
# holding ports 80/6379 on machines with an init system: policy-rc.d says
# "do not start" for the duration of the install.
had_policy=0
[[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
if ((had_policy == 0)); then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
trap '((had_policy == 0)) && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
