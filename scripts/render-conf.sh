#!/usr/bin/env bash
# render-conf.sh <template> <output>: fills the template's ${UPPER_CASE}
# variables from the environment (every one must be set), leaving nginx's
# own $variables untouched.
set -euo pipefail
tmpl=$1 out=$2
# Derived: the API's host:port from API_URL (for the edge's upstream block).
if [[ -n ${API_URL:-} && -z ${API_HOST:-} ]]; then
  API_HOST=${API_URL#*://}
  export API_HOST=${API_HOST%%/*}
fi
# Derived: the edge's DNS resolver (origins named by host name, e.g. in
# containers) from this host's resolv.conf, and how long nginx may keep an
# answer at most.
if [[ -z ${EDGE_RESOLVER:-} ]]; then
  ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
  [[ $ns == *:* ]] && ns="[$ns]"
  export EDGE_RESOLVER=${ns:-127.0.0.1}
fi
export EDGE_RESOLVER_VALID=${EDGE_RESOLVER_VALID:-10s}
# Derived: where the origin's HTTP server listens: ORIGIN_HTTP_PORT on every
# interface (a container's, on its private network) unless given (`make up`
# gives loopback).
if [[ -n ${ORIGIN_HTTP_PORT:-} && -z ${ORIGIN_HTTP_LISTEN:-} ]]; then
  export ORIGIN_HTTP_LISTEN=$ORIGIN_HTTP_PORT
fi
vars=$(grep -o '\${[A-Z_][A-Z0-9_]*}' "$tmpl" | sort -u || true)
for v in $vars; do
  name=${v:2:-1}
  if [ -z "${!name+x}" ]; then
    echo "render-conf: $name is not set (needed by $tmpl)" >&2
    exit 1
  fi
done
envsubst "$(echo $vars)" < "$tmpl" > "$out"
