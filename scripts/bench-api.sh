#!/usr/bin/env bash
# bench-api.sh: GET /streams/{name} throughput and p99 at 64 connections,
# against GET /healthz of the same API process (no Redis) as the reference,
# in the same run. Needs `make build`. Usage: scripts/bench-api.sh [seconds]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
tmp=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port) aport=$(port)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
API_INSECURE_NO_AUTH=1 API_LISTEN=127.0.0.1:$aport REDIS_URL=redis://127.0.0.1:$rport RUST_LOG=warn \
  "$ROOT/target/release/rtmp-live-api" >"$tmp/api.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && break; sleep 0.1; done
for i in 1 2; do
  curl -sf -X POST "http://127.0.0.1:$aport/streams" -H 'content-type: application/json' \
    -d "{\"name\":\"golive\",\"manifest\":\"index.m3u8\",\"host\":\"10.0.0.$i:8080\"}"
done
run() { # run <label> <url>
  local out rps p99
  out=$(wrk -t2 -c64 -d"${secs}s" --latency "$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  echo "$rps $p99 ${errs:-none}"
}
read -r ref_rps ref_p99 _ < <(run "http://127.0.0.1:$aport/healthz")
read -r rps p99 errs < <(run "http://127.0.0.1:$aport/streams/golive")
echo "cores: $(nproc), wrk -t2 -c64 -d${secs}s, wrk on the same machine"
printf '%-32s %12s %10s\n' endpoint req/s p99
printf '%-32s %12s %10s\n' "GET /healthz (reference)" "$ref_rps" "$ref_p99"
printf '%-32s %12s %10s\n' "GET /streams/golive (Redis)" "$rps" "$p99"
awk -v a="$rps" -v b="$ref_rps" 'BEGIN { printf "ratio lookup/reference: %.2f\n", a / b }'
echo "errors: $errs"
