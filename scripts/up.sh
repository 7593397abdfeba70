#!/usr/bin/env bash
# up.sh: the whole platform in the foreground, for scripts that call it
# (`make up` runs the binary directly). Everything it does - processes,
# ports, configs, credentials - is `rtmp-live-up` (platform/); see
# `rtmp-live-up --help` for every variable and the README for defaults.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "${BIN_DIR:-$ROOT/target/release}/rtmp-live-up" "$@"
