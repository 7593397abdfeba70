#!/usr/bin/env bash
# Build a current nginx and the edge module against it, so the module is
# tested against a newer nginx than Debian 12's 1.22.1 as well.
#
# The source is nginx.org's, as vendored by the `nginx-src` crate on
# crates.io (pinned in ngx-edge-router/nginx-current/Cargo.lock; cargo
# fetches it). pcre2, zlib and OpenSSL come from Debian's -dev packages
# (scripts/deps.sh build).
# Results, under <dir>:
#   tree/objs/nginx                        the nginx binary
#   cargo/release/libngx_edge_router.so    the module, built against tree/
# Both come from the same configured tree (--with-compat), so the module is
# binary-compatible with that binary.
#
# Usage: scripts/nginx-current.sh <dir>
set -euo pipefail
dir=${1:?usage: nginx-current.sh <dir>}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cargo=${CARGO:-cargo}

# The http modules the edge configuration and the tests use are all built by
# default; ssl, v2 and realip are what an operator's nginx usually has, the
# others let nginx's own test suite cover more of what passes through the
# module's body filter (sub, addition, gunzip, slice, auth_request).
flags=(
  --with-compat --with-threads
  --with-http_ssl_module --with-http_v2_module --with-http_realip_module
  --with-http_stub_status_module --with-http_sub_module --with-http_addition_module
  --with-http_gunzip_module --with-http_gzip_static_module --with-http_slice_module
  --with-http_auth_request_module
)

host=$(rustc -vV | sed -n 's/^host: //p')
manifest=$("$cargo" metadata --locked --format-version 1 --filter-platform "$host" \
  --manifest-path "$root/ngx-edge-router/nginx-current/Cargo.toml" |
  grep -o '"manifest_path":"[^"]*/nginx-src-[^"/]*/Cargo.toml"' | head -1 | cut -d'"' -f4)
[[ -n $manifest ]] || { echo "nginx-current: nginx-src not found in cargo metadata" >&2; exit 1; }
src=$(dirname "$manifest")/nginx

NGINX_TREE_SRC=$src NGINX_CONF_FLAGS="${flags[*]}" "$root/scripts/nginx-tree.sh" "$dir/tree"
echo "nginx-current: building nginx in $dir/tree" >&2
make -C "$dir/tree" -j"$(nproc)" build >"$dir/make.log" 2>&1 || { tail -30 "$dir/make.log" >&2; exit 1; }
"$dir/tree/objs/nginx" -v

NGINX_SOURCE_DIR=$dir/tree NGINX_BUILD_DIR=$dir/tree/objs CARGO_TARGET_DIR=$dir/cargo \
  "$cargo" build --release --manifest-path "$root/Cargo.toml" -p ngx-edge-router
