#!/usr/bin/env python3
"""Check finished fragments: (1) no PES of one PID is interrupted by a video
PES start (every video PES start is a clean cut point), (2) cutting the file
at video PES starts every >= 0.5 s and concatenating the pieces gives the file
back, (3) writes <frag>.kf<N>.ts = PAT+PMT + bytes from the N-th keyframe PES
start (for an ffprobe check of a mid-fragment start).

usage: checkfrag.py <frag.ts>..."""
import sys

def packets(d):
    for off in range(0, len(d) - 187, 188):
        p = d[off:off + 188]
        pid = ((p[1] & 0x1f) << 8) | p[2]
        pusi = bool(p[1] & 0x40)
        afc = (p[3] >> 4) & 3
        i, rai = 4, False
        if afc & 2:
            if p[4]:
                rai = bool(p[5] & 0x40)
            i = 5 + p[4]
        pts = None
        pl = p[i:]
        if pusi and pl[:3] == b"\0\0\1" and pl[7] & 0x80:
            b = pl[9:14]
            pts = (((b[0] >> 1) & 7) << 30) | (b[1] << 22) | ((b[2] >> 1) << 15) | (b[3] << 7) | (b[4] >> 1)
        yield off, pid, pusi, rai, pts

for path in sys.argv[1:]:
    d = open(path, "rb").read()
    pk = list(packets(d))
    open_pes = set()  # PIDs whose PES has started and whose packets are still coming
    straddle = 0
    vstarts = [(o, pts, rai) for o, pid, pusi, rai, pts in pk if pid == 0x100 and pusi]
    # a PES of pid X is "in progress" at offset o if X has a non-PUSI packet after o
    # before its next PUSI; check for every video PES start
    last_pid = None
    for idx, (o, pid, pusi, rai, pts) in enumerate(pk):
        if pid == 0x100 and pusi:
            for (o2, pid2, pusi2, _, _) in pk[idx + 1:]:
                if pid2 == 0x101:
                    if not pusi2:
                        straddle += 1
                    break
    cuts, last = [0], None
    for o, pts, rai in vstarts:
        if last is None:
            last = pts
        elif pts - last >= 45000:
            cuts.append(o)
            last = pts
    cuts.append(len(d))
    parts = [d[a:b] for a, b in zip(cuts, cuts[1:])]
    print("%s: %d bytes, %d packets, %d video PES, %d keyframes, video PES starts with an audio PES in progress: %d, "
          "parts %d, concat identical: %s, part sizes %s" % (
        path, len(d), len(pk), len(vstarts), sum(1 for v in vstarts if v[2]), straddle, len(parts),
        b"".join(parts) == d, [len(p) for p in parts]))
    for n, (o, pts, rai) in enumerate([v for v in vstarts if v[2]]):
        open(path + ".kf%d.ts" % n, "wb").write(d[:376] + d[o:])
