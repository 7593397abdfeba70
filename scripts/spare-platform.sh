# Sourced by the benchmarks that run the whole platform (bench-fanout.sh,
# bench-latency.sh, bench-players.sh). `start_platform <ABR: 0|1>` starts it
# (scripts/up.sh, one origin) on spare loopback ports in a fresh STATE_DIR
# ($state) with one stream key for "golive" ($key), leaves its process in
# $up, and returns once the API is ready (exits with its log otherwise).
# `stop_platform` (the caller's EXIT trap) stops the publisher's process
# group ($pub, if the caller started one) and the platform, and removes
# $state (kept with KEEP=1). SPARE_STREAM_KEYS: more `key=name` pairs.
state= up= pub=
stop_platform() {
  [[ -n $pub ]] && kill -- "-$pub" 2>/dev/null
  [[ -n $up ]] && kill -TERM "$up" 2>/dev/null
  wait 2>/dev/null || true
  [[ -n $state && -z ${KEEP:-} ]] && rm -rf "$state"
  return 0
}
# N distinct ports free on every interface, from 20000-32767: below Linux's
# ephemeral range, which a benchmark's thousands of client connections (and
# their TIME_WAIT) occupy. (Ports picked later cannot repeat these: the
# platform listens on them by then.)
ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
out = []
while len(out) < int(sys.argv[1]):
    p = random.randint(20000, 32767)
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", p))
        if p not in out:
            out.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, out)))
PY
}
port() { ports 1; }
start_platform() {
  state=$(mktemp -d)
  chmod 755 "$state"
  key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  read -r RTMP_PORT ORIGIN_HTTP_PORT API_PORT EDGE_PORT REDIS_PORT RTMP_STAT_PORT DISCOVERY_PORT \
    LLHLS_PORT RTMP_PACKAGING_PORT < <(ports 9)
  export STATE_DIR=$state RTMP_PORT ORIGIN_HTTP_PORT API_PORT EDGE_PORT
  export REDIS_PORT RTMP_STAT_PORT DISCOVERY_PORT LLHLS_PORT RTMP_PACKAGING_PORT
  export ABR=$1 ORIGINS=1 PUBLIC_HOST=127.0.0.1 STREAM_KEYS="$key=golive${SPARE_STREAM_KEYS:+,$SPARE_STREAM_KEYS}"
  "$ROOT/scripts/up.sh" >"$state/up.log" 2>&1 &
  up=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null || { cat "$state/up.log" >&2; echo "the platform did not start" >&2; exit 1; }
}
