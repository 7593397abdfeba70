#!/usr/bin/env bash
# bench-fanout-floor.sh: the fan-out floor of this machine. A plain nginx
# (Debian's, 2 workers like the edge, no module, no proxying) serves a
# playlist-sized file (1 KB) and a part-sized one (32 KB); for each N in
# FLOOR_STEPS, N kept-alive connections (20 per loopback source address,
# as in bench-fanout.sh) each ask for the file at the same instant, and
# the time from that instant to each answer is recorded, FLOOR_ROUNDS
# rounds (conform's `rtmp-live-fanout --burst`). A fan-out viewer waits
# for two such waves per part (its blocking reload's answer, then the
# part's), so no server on this machine can hand a part to every viewer
# faster than two of these waves. FLOOR_URL measures another server
# instead (the edge of `make up`, say). Needs `make build`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
steps=${FLOOR_STEPS:-100 1000 2500 5000}
rounds=${FLOOR_ROUNDS:-20}
ulimit -n "$(ulimit -Hn)" # a socket per connection
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap '[[ -s $dir/nginx.pid ]] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
chmod 755 "$dir" # the workers (nobody, under root) read the files
mkdir -p "$dir/html" "$dir/tmp"
head -c 1024 /dev/urandom >"$dir/html/playlist"
head -c 32768 /dev/urandom >"$dir/html/part"
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$port reuseport;
        root $dir/html;
    }
}
CONF
if [[ -z ${FLOOR_URL:-} ]]; then
  /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf"
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/playlist" -o /dev/null && break; sleep 0.1; done
  urls="http://127.0.0.1:$port/playlist http://127.0.0.1:$port/part"
else
  urls=$FLOOR_URL
fi
echo "cores: $(nproc), $rounds rounds per step"
printf '%-44s %7s %9s %9s %9s %9s %11s %s\n' url viewers p50-ms p90-ms p99-ms max-ms wave-ms errors
for url in $urls; do
  for n in $steps; do
    "$ROOT/target/release/rtmp-live-fanout" --burst "$url" --viewers "$n" --rounds "$rounds" >"$dir/r.json"
    python3 - "$url" "$dir/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(f'{sys.argv[1]:44s} {r["viewers"]:7d} {r["ms_p50"]:9.1f} {r["ms_p90"]:9.1f} {r["ms_p99"]:9.1f} '
      f'{r["ms_max"]:9.1f} {r["wave_ms_median"]:11.1f} {r["errors"]}')
PY
  done
done
