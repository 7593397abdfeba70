#!/usr/bin/env bash
# container-images.sh: makes sure the base images that docker/*.Dockerfile and
# docker-compose.yml name are in podman's local store. Each one is pulled
# from its registry; where no registry answers (an offline or firewalled
# machine), a local stand-in is built under the same name from Debian's
# packages:
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm, imported
#   rust:1-bookworm       that base + Debian's build packages + this host's
#                         Rust toolchain (rustc --print sysroot)
#   node:20-bookworm-slim that base + Debian's nodejs and npm
#   redis:7-bookworm      that base + Debian's redis-server
# The builder stand-ins trust this host's CA bundle, so that cargo and npm
# reach their registries through a TLS-inspecting proxy as the host does (the
# bundle is copied into the local image at build time, never into the
# repository). Stand-ins carry the label rtmp-live.stand-in=1.
#
# Usage: container-images.sh [--stand-ins]   (--stand-ins: skip the pulls)
# Environment: CONTAINER_WORK (scratch folder, default target/containers),
#   DEBIAN_MIRROR (default: the first Debian mirror in apt's sources),
#   PULL_TIMEOUT (seconds per pull attempt, default 60).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${CONTAINER_WORK:-$ROOT/target/containers}
PULL_TIMEOUT=${PULL_TIMEOUT:-60}
pull=1
[[ ${1:-} == --stand-ins ]] && pull=0
say() { echo "[images] $*" >&2; }

# The Debian mirror apt uses on this host (one-line or deb822 sources).
debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE '(https?://[^ ]*/debian)/?( |$)' | grep -v security | head -n1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian}"
}

present() { podman image exists "docker.io/library/$1"; }

try_pull() {
  ((pull)) || return 1
  say "pulling $1"
  timeout "$PULL_TIMEOUT" podman pull -q "docker.io/library/$1" >/dev/null 2>&1
}

# stand_in <name> <containerfile> [podman build args...]
stand_in() {
  local name=$1 file=$2
  shift 2
  say "building the stand-in $name"
  podman build -q --pull=never --label rtmp-live.stand-in=1 -t "docker.io/library/$name" -f "$file" "$@" "$WORK" >/dev/null
}

mkdir -p "$WORK"

if ! present debian:bookworm-slim && ! try_pull debian:bookworm-slim; then
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  rootfs=$WORK/bookworm-rootfs
  rm -rf "$rootfs"
  mirror=$(debian_mirror)
  say "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
SOURCES
  # Like the official slim image: no documentation, no package lists.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  say "importing debian:bookworm-slim"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' -q - docker.io/library/debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
fi

ca=/etc/ssl/certs/ca-certificates.crt

if ! present rust:1-bookworm && ! try_pull rust:1-bookworm; then
  sysroot=$(rustc --print sysroot)
  cat >"$WORK/rust.Containerfile" <<'CF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential ca-certificates curl git pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cp -a /host-toolchain /usr/local/rust && rm -rf /usr/local/rust/share/doc \
    && cp /host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CF
  stand_in rust:1-bookworm "$WORK/rust.Containerfile" -v "$sysroot:/host-toolchain:ro" -v "$ca:/host-ca.crt:ro"
fi

if ! present node:20-bookworm-slim && ! try_pull node:20-bookworm-slim; then
  cat >"$WORK/node.Containerfile" <<'CF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/* && cp /host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
CF
  stand_in node:20-bookworm-slim "$WORK/node.Containerfile" -v "$ca:/host-ca.crt:ro"
fi

if ! present redis:7-bookworm && ! try_pull redis:7-bookworm; then
  cat >"$WORK/redis.Containerfile" <<'CF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
CF
  stand_in redis:7-bookworm "$WORK/redis.Containerfile"
fi
say "base images present"
