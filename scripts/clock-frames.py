#!/usr/bin/env python3
"""clock-frames.py [fps] [width] [height]: raw gray video frames on stdout,
in real time, each carrying the wall clock at which it was made.

The top 48 rows hold the clock (milliseconds since the epoch, modulo 2^32)
as 32 blocks of width/32 pixels: white = 1, most significant bit first; rows
24-47 repeat the bits inverted, so a reader can tell a clean frame from a
damaged one. Below, a moving bar keeps the encoder honest. Feed it to
ffmpeg as `-f rawvideo -pix_fmt gray -s WxH -framerate FPS -i -`
(scripts/bench-latency.sh). The reader is e2e/browser/latency.mjs.
"""
import sys
import time

fps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
w = int(sys.argv[2]) if len(sys.argv) > 2 else 640
h = int(sys.argv[3]) if len(sys.argv) > 3 else 360
BITS = 32
bw = w // BITS
band = 48


def frame(ms, n):
    bits = [(ms >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    row = bytearray()
    inv = bytearray()
    for b in bits:
        row += (b"\xff" if b else b"\x10") * bw
        inv += (b"\x10" if b else b"\xff") * bw
    pad = b"\x10" * (w - len(row))
    top = (bytes(row) + pad) * (band // 2) + (bytes(inv) + pad) * (band // 2)
    x = (n * 8) % w
    line = bytearray(b"\x50" * w)
    line[x : x + 40] = b"\xc0" * len(line[x : x + 40])
    return top + bytes(line) * (h - band)


out = sys.stdout.buffer
# The clock starts when ffmpeg reads the first frame (a frame is larger than
# a pipe's buffer): frames made before, while ffmpeg started up, would be
# sent in a burst with timestamps ahead of its other inputs.
start = None
n = 0
try:
    while True:
        if start is None:
            out.write(frame(int(time.time() * 1000) & 0xFFFFFFFF, n))
            out.flush()
            start = time.time()
            n = 1
            continue
        due = start + n / fps
        now = time.time()
        if due > now:
            time.sleep(due - now)
        ms = int(time.time() * 1000) & 0xFFFFFFFF
        out.write(frame(ms, n))
        out.flush()
        n += 1
except (BrokenPipeError, KeyboardInterrupt):
    pass
