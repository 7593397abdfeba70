#!/usr/bin/env python3
"""Spike probe: watch one nginx-rtmp HLS stream folder with inotify and record
how the fragment in progress grows on disk.

usage: probe.py <stream-dir> <seconds> <out.jsonl> [t0-epoch]

For every .ts it logs when the file is created, every growth (time, size),
every PES start seen (pid, PTS, random-access flag, offset, time first seen),
close-write, and every rename of index.m3u8 (with its text). At close-write it
checks that the bytes read incrementally while the file grew equal the final
file (nginx-rtmp never rewrites earlier bytes). Standard library only."""
import ctypes, ctypes.util, json, os, select, struct, sys, time

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x80, 0x100, 0x200
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

def now():
    return time.time()

def pes_pts(payload):
    if len(payload) < 14 or payload[0:3] != b"\x00\x00\x01":
        return None, None
    flags = payload[7]
    def ts(b):
        return (((b[0] >> 1) & 7) << 30) | (b[1] << 22) | ((b[2] >> 1) << 15) | (b[3] << 7) | (b[4] >> 1)
    pts = ts(payload[9:14]) if flags & 0x80 else None
    dts = ts(payload[14:19]) if flags & 0x40 and len(payload) >= 19 else pts
    return pts, dts

class Frag:
    def __init__(self, path):
        self.path = path
        self.fd = None
        self.data = bytearray()
        self.parsed = 0

def main():
    d, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    t0 = float(sys.argv[4]) if len(sys.argv) > 4 else None
    while not os.path.isdir(d):
        time.sleep(0.005)
    ifd = libc.inotify_init1(0)
    wd = libc.inotify_add_watch(ifd, d.encode(), IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE)
    assert wd >= 0
    log = open(out, "w")
    def emit(**kw):
        kw["t"] = now()
        log.write(json.dumps(kw) + "\n")
    emit(ev="start", t0=t0)
    frags = {}
    def pump(name):
        f = frags.get(name)
        if f is None:
            f = frags[name] = Frag(os.path.join(d, name))
        if f.fd is None:
            try:
                f.fd = os.open(f.path, os.O_RDONLY)
            except FileNotFoundError:
                return f
        while True:
            b = os.read(f.fd, 1 << 20)
            if not b:
                break
            f.data += b
        emit(ev="size", f=name, size=len(f.data))
        while f.parsed + 188 <= len(f.data):
            p = f.data[f.parsed:f.parsed + 188]
            off = f.parsed
            f.parsed += 188
            if p[0] != 0x47:
                emit(ev="desync", f=name, off=off)
                continue
            pusi = bool(p[1] & 0x40)
            pid = ((p[1] & 0x1f) << 8) | p[2]
            afc = (p[3] >> 4) & 3
            i = 4
            rai = False
            if afc & 2:
                alen = p[4]
                if alen > 0:
                    rai = bool(p[5] & 0x40)
                i = 5 + alen
            if pusi and pid not in (0, 0x1000, 0x1001) and afc & 1:
                pts, dts = pes_pts(bytes(p[i:]))
                emit(ev="pes", f=name, off=off, pid=pid, pts=pts, dts=dts, rai=rai)
            elif pusi:
                emit(ev="psi", f=name, off=off, pid=pid)
            else:
                emit(ev="pkt", f=name, off=off, pid=pid) if False else None
        return f
    end = now() + secs
    buf = ctypes.create_string_buffer(1 << 16)
    while now() < end:
        r, _, _ = select.select([ifd], [], [], 0.2)
        if not r:
            continue
        n = os.read(ifd, 1 << 16)
        t = now()
        i = 0
        while i < len(n):
            _wd, mask, _cookie, ln = struct.unpack_from("iIII", n, i)
            name = n[i + 16:i + 16 + ln].rstrip(b"\0").decode()
            i += 16 + ln
            if name.endswith(".ts"):
                if mask & IN_CREATE:
                    emit(ev="create", f=name)
                    pump(name)
                if mask & IN_MODIFY:
                    pump(name)
                if mask & IN_CLOSE_WRITE:
                    f = pump(name)
                    final = open(f.path, "rb").read()
                    emit(ev="close_write", f=name, size=len(final), identical=bytes(f.data) == final)
                    if f.fd is not None:
                        os.close(f.fd)
                        f.fd = None
                if mask & IN_DELETE:
                    emit(ev="delete", f=name)
            elif name == "index.m3u8" and mask & IN_MOVED_TO:
                try:
                    txt = open(os.path.join(d, name)).read()
                except FileNotFoundError:
                    txt = None
                emit(ev="playlist", text=txt)
    # late check: the fragments still on disk equal what was read while they grew
    for name, f in frags.items():
        try:
            final = open(f.path, "rb").read()
        except FileNotFoundError:
            continue
        emit(ev="final_check", f=name, size=len(final), seen=len(f.data), identical=bytes(f.data) == final[:len(f.data)] and len(final) == len(f.data))
    log.close()

main()
