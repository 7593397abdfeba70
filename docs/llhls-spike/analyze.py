#!/usr/bin/env python3
"""Summarise a probe.py log (see run.sh): write granularity as seen by the
reader, lag of bytes on disk behind the publisher's clock, audio hold-back,
fragment close vs. playlist rename, fragment durations, simulated 0.5 s parts.

usage: analyze.py <probe.jsonl> [publish-start-epoch ...]
Each extra argument starts a publish session (default: the probe's t0)."""
import json, re, statistics, sys

ev = [json.loads(l) for l in open(sys.argv[1])]
starts = [float(x) for x in sys.argv[2:]] or [ev[0]["t0"]]
DELAY = 63000  # nginx-rtmp adds 700 ms to PTS/DTS in the TS (NGX_RTMP_HLS_DELAY)
VPID, APID = 0x100, 0x101

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None

def fmt(xs, unit="ms", k=1000):
    if not xs:
        return "n/a"
    return "n=%d min %.1f p50 %.1f p95 %.1f max %.1f %s" % (
        len(xs), min(xs) * k, pct(xs, 50) * k, pct(xs, 95) * k, max(xs) * k, unit)

def session_of(t):
    s = 0
    for i, st in enumerate(starts):
        if t >= st:
            s = i
    return s

# --- growth as seen by the reader
sizes = {}
for e in ev:
    if e["ev"] == "size":
        sizes.setdefault(e["f"], []).append((e["t"], e["size"]))
deltas, gaps = [], []
for f, xs in sizes.items():
    for (t1, s1), (t2, s2) in zip(xs, xs[1:]):
        if s2 > s1:
            deltas.append(s2 - s1)
            gaps.append(t2 - t1)
print("reader saw growth events: %d; bytes per growth: %s" % (len(deltas), fmt(deltas, "B", 1)))
print("interval between growth events: %s" % fmt(gaps))
print("all growth multiples of 188: %s" % all(d % 188 == 0 for d in deltas))

# --- lag of PES starts on disk vs. publisher clock (t0 + media time)
lag = {VPID: {}, APID: {}}
for e in ev:
    if e["ev"] == "pes" and e["pid"] in lag and e["dts"] is not None:
        s = session_of(e["t"])
        media = (e["dts"] - DELAY) / 90000
        lag[e["pid"]].setdefault(s, []).append(e["t"] - (starts[s] + media))
for pid, name in ((VPID, "video"), (APID, "audio")):
    for s, xs in lag[pid].items():
        base = min(lag[VPID].get(s, xs))
        print("%s PES start on disk, session %d, lag vs publish clock: %s" % (name, s, fmt(xs)))
        print("   relative to the session's minimum video lag: %s" % fmt([x - base for x in xs]))

# --- audio PES sizes (frames per PES) and audio-behind-video at write time
last_v = None
behind, apts = [], []
for e in ev:
    if e["ev"] != "pes":
        continue
    if e["pid"] == VPID:
        last_v = e["dts"]
    elif e["pid"] == APID:
        apts.append(e["pts"])
        if last_v is not None and abs(last_v - e["pts"]) < 90000 * 5:
            behind.append((last_v - e["pts"]) / 90000)
span = [(b - a) / 90000 for a, b in zip(apts, apts[1:]) if 0 < b - a < 90000]
print("audio PES spacing (PTS of consecutive audio PES = audio held per PES): %s" % fmt(span))
print("audio PES written when the latest video DTS is ahead of its PTS by: %s" % fmt(behind))

# --- fragments: create, first/last write, close, playlist listing it
frag = {}
for e in ev:
    f = e.get("f")
    if f:
        d = frag.setdefault(f, {})
        if e["ev"] == "create":
            d["create"] = e["t"]
        if e["ev"] == "size":
            d.setdefault("first", e["t"])
            if e["size"] > d.get("size", 0):
                d["last_growth"] = e["t"]
                d["size"] = e["size"]
        if e["ev"] == "close_write":
            d["close"] = e["t"]
            d["identical"] = e["identical"]
        if e["ev"] == "final_check":
            d["final_identical"] = e["identical"]
        if e["ev"] == "pes" and e["pid"] == VPID:
            d.setdefault("vdts", []).append(e["dts"])
            if e["rai"]:
                d.setdefault("keys", []).append(e["dts"])
listed = {}
for e in ev:
    if e["ev"] == "playlist" and e["text"]:
        for m in re.finditer(r"#EXTINF:([\d.]+),?\n(\d+\.ts)", e["text"]):
            listed.setdefault(m.group(2), (e["t"], float(m.group(1))))
print("\nfrag      size  close-write identical  vdur  EXTINF  listed-after-last-growth  keyframes")
for f in sorted(frag, key=lambda x: int(x.split(".")[0])):
    d = frag[f]
    v = d.get("vdts", [])
    vdur = (v[-1] - v[0]) / 90000 + 1 / 30 if v else 0
    l = listed.get(f)
    print("%-8s %7s %6s %s/%s %6.3f %7s %10s  %d" % (
        f, d.get("size"), "yes" if "close" in d else "no", d.get("identical"), d.get("final_identical"),
        vdur, "%.3f" % l[1] if l else "-",
        "%.1f ms" % ((l[0] - d["last_growth"]) * 1000) if l and "last_growth" in d else "-",
        len(d.get("keys", []))))

# --- simulated parts: cut at a video PES start once >= 0.5 s of video since the last cut
cuts = []
cur = None
for e in ev:
    if e["ev"] == "pes" and e["pid"] == VPID:
        if cur is None or cur[0] != e["f"] or (e["dts"] - cur[1]) >= 45000:
            if cur is not None and cur[0] == e["f"]:
                s = session_of(e["t"])
                cuts.append((e["t"] - (starts[s] + (e["dts"] - DELAY) / 90000), (e["dts"] - cur[1]) / 90000))
            cur = (e["f"], e["dts"])
print("\nsimulated parts (cut at first video PES >= 0.5 s after the previous cut): %d parts" % len(cuts))
print("   part duration: %s" % fmt([c[1] for c in cuts], "s", 1))
print("   part bytes complete on disk, behind the publisher's clock at the part's end: %s" % fmt([c[0] for c in cuts]))
for e in ev:
    if e["ev"] in ("delete",):
        print("delete %s at +%.2fs" % (e["f"], e["t"] - starts[0]))
pl = [e for e in ev if e["ev"] == "playlist"]
print("\nplaylist renames: %d; last one at +%.2fs:\n%s" % (len(pl), pl[-1]["t"] - starts[0], pl[-1]["text"]) if pl else "no playlist")
