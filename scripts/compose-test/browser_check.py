"""Judges e2e/browser/play.mjs's report for scripts/compose-test.sh.

    python3 browser_check.py <seconds watched> < report.json

Passes when hls.js played: no fatal error, no page error, currentTime
advanced by at least 80 % of the watch and never froze for 5 samples.
"""

import json
import sys

seconds = float(sys.argv[1])
r = json.load(sys.stdin)
s = r["samples"]
t = [x["current_time"] for x in s]
print(
    "[compose-test] chromium: %s, started after %s ms, currentTime %.1f -> %.1f s, stalls %s, fatal %s"
    % (r["how"], r["started_after_ms"], t[0], t[-1], s[-1]["stalls"], r["fatal"])
)
problems = []
if r["fatal"] or r["page_errors"]:
    problems.append("hls.js errors: %s %s" % (r["fatal"], r["page_errors"]))
if t[-1] - t[0] < 0.8 * seconds:
    problems.append("currentTime advanced %.1f s in %s s" % (t[-1] - t[0], seconds))
if any(w[4] <= w[0] for w in zip(t, t[1:], t[2:], t[3:], t[4:])):
    problems.append("playback froze: %s" % t)
if any(x["paused"] for x in s):
    problems.append("paused")
for p in problems:
    print("[compose-test] chromium: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
