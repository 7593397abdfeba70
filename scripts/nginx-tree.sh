#!/usr/bin/env bash
# Prepare a configured nginx source tree that the ngx crate builds against.
#
# Default: Debian's nginx (source and configure flags from the nginx-dev
# package), so the module loads into /usr/sbin/nginx with load_module.
# Override with NGINX_TREE_SRC=<unpacked nginx source> and
# NGINX_CONF_FLAGS="<configure flags>" to target another nginx build (the
# module README shows how).
#
# Usage: scripts/nginx-tree.sh <output dir>
set -euo pipefail
out=${1:?usage: nginx-tree.sh <output dir>}
mkdir -p "$out"; out=$(cd "$out" && pwd)
src=${NGINX_TREE_SRC:-/usr/share/nginx/src}

if [[ -z ${NGINX_CONF_FLAGS:-} ]]; then
  [[ -f $src/conf_flags ]] || { echo "nginx-tree: $src/conf_flags missing (install nginx-dev)" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$src/conf_flags"
  flags=("${NGX_CONF_FLAGS[@]}")
else
  read -r -a flags <<<"$NGINX_CONF_FLAGS"
fi

stamp="$out/.configured"
want="$(cat "$src/src/core/nginx.h" 2>/dev/null | grep NGINX_VERSION | head -1) ${flags[*]}"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f $out/objs/ngx_auto_config.h ]]; then
  exit 0
fi

rm -rf "$out"
mkdir -p "$out"
cp -a "$src/." "$out/"
cd "$out"
echo "nginx-tree: configuring $(grep -m1 NGINX_VERSION src/core/nginx.h | awk '{print $3}') in $out" >&2
# Release tarballs have ./configure; repository snapshots (nginx-src) only
# auto/configure, which is the same script.
configure=./configure
[[ -f $configure ]] || configure=auto/configure
"$configure" "${flags[@]}" >configure.log 2>&1 || { tail -30 configure.log >&2; exit 1; }
echo "$want" >"$stamp"
