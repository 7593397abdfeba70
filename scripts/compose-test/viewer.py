"""A viewer of one HLS stream through the edge, for scripts/compose-test.sh.

    python3 viewer.py <playlist url> <seconds>

Once a second it fetches the playlist (for a master playlist: the master and
its first rendition's playlist) and the newest segment it lists, for
<seconds>. Prints one JSON summary line: requests made, the failures (any
answer but 200, or an empty segment), the newest segment's media sequence
number at the start and at the end (the oldest stays listed for the DVR
window). Exits 1 if any request failed or the playlist never advanced.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # connection refused, timeout: a viewer error too
        return str(e), b""


def uris(text):
    return [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]


def sequence(text):
    for l in text.splitlines():
        if l.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            return int(l.split(":", 1)[1])
    return None


def main():
    url, seconds = sys.argv[1], float(sys.argv[2])
    out = {"requests": 0, "failures": [], "first_sequence": None, "last_sequence": None}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        playlist = url
        status, body = get(url)
        out["requests"] += 1
        ok = status == 200
        if ok and b"#EXT-X-STREAM-INF" in body:
            playlist = urllib.parse.urljoin(url, uris(body.decode())[0])
            status, body = get(playlist)
            out["requests"] += 1
            ok = status == 200
        if ok:
            text = body.decode()
            segs = uris(text)
            seq = sequence(text)
            if seq is not None:
                seq += max(len(segs) - 1, 0)
            if out["first_sequence"] is None:
                out["first_sequence"] = seq
            out["last_sequence"] = seq
            if segs:
                seg = urllib.parse.urljoin(playlist, segs[-1])
                s, data = get(seg)
                out["requests"] += 1
                if s != 200 or not data:
                    out["failures"].append([round(seconds - (end - t), 1), seg, s])
        else:
            out["failures"].append([round(seconds - (end - t), 1), playlist, status])
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    print(json.dumps(out))
    advanced = (out["last_sequence"] or 0) > (out["first_sequence"] or 0)
    sys.exit(0 if not out["failures"] and advanced else 1)


if __name__ == "__main__":
    main()
