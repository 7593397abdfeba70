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
vars=$(grep -o '\${[A-Z_][A-Z0-9_]*}' "$tmpl" | sort -u || true)
for v in $vars; do
  name=${v:2:-1}
  if [ -z "${!name+x}" ]; then
    echo "render-conf: $name is not set (needed by $tmpl)" >&2
    exit 1
  fi
done
envsubst "$(echo $vars)" < "$tmpl" > "$out"
