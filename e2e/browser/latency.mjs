// Glass-to-glass latency in a real browser: Debian's chromium (headless,
// through playwright-core) plays an HLS URL with hls.js; every frame it
// displays is read back (requestVideoFrameCallback + canvas) and the wall
// clock the publisher burned into it (scripts/clock-frames.py) is compared
// with the clock at display. Prints one JSON report.
//
//   node latency.mjs '<json options>'
//
// Options: src (playlist URL), seconds (to measure once playing), warmup
// (seconds after the first frame not counted), config ("defaults": hls.js
// as it comes, lowLatencyMode on; "player": the player page's settings from
// player/player.js; or an object), hlsJs (path of hls.min.js), chromium,
// startTimeout (seconds).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const opts = JSON.parse(process.argv[2] || "{}");
const {
  src,
  seconds = 60,
  warmup = 10,
  config = "defaults",
  hlsJs = "../../player/hls.min.js",
  chromium: executablePath = "/usr/bin/chromium",
  startTimeout = 40,
} = opts;

// player/player.js's settings (HLS_CONFIG for plain playlists, HLS_CONFIG_LL
// when parts are offered), read from the file so the two never drift.
function playerConfig(name) {
  const js = readFileSync(new URL("../../player/player.js", import.meta.url), "utf8");
  const m = js.match(new RegExp(`const ${name} = (\\{[\\s\\S]*?\\});`));
  if (!m) throw new Error(`${name} not found in player/player.js`);
  return Function(`return (${m[1]});`)();
}
const hlsConfig =
  config === "defaults"
    ? {}
    : config === "player"
      ? playerConfig("HLS_CONFIG")
      : config === "player-ll"
        ? playerConfig("HLS_CONFIG_LL")
        : config;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
});
const out = { src, config: hlsConfig };
let code = 0;
try {
  const page = await browser.newPage();
  await page.setContent(
    '<video id="v" muted autoplay playsinline width="640" height="360"></video>' +
      '<canvas id="c" width="640" height="48"></canvas>',
  );
  await page.addScriptTag({ content: readFileSync(hlsJs, "utf8") });
  await page.evaluate(
    ({ src, hlsConfig }) => {
      const v = document.getElementById("v");
      const ctx = document.getElementById("c").getContext("2d", { willReadFrequently: true });
      const s = (window.m = {
        t0: Date.now(),
        first: null,
        lat: [],
        bad: 0,
        stalls: 0,
        stallMs: 0,
        waitingSince: null,
        parts: 0,
        segments: 0,
        fatal: [],
        hlsLatency: [],
      });
      const hls = new Hls(hlsConfig);
      window.hls = hls;
      s.errors = [];
      hls.on(Hls.Events.ERROR, (_e, d) => !d.fatal && s.errors.length < 20 && s.errors.push(d.details + ":" + (d.reason || "")));
      hls.on(Hls.Events.ERROR, (_e, d) => d.fatal && s.fatal.push(d.type + ":" + d.details + ":" + (d.reason || (d.error && d.error.message) || "") + ":" + ((d.context && d.context.url) || "")));
      hls.on(Hls.Events.FRAG_LOADED, (_e, d) => (d.part ? s.parts++ : s.segments++));
      s.trace = [];
      const tr = (what) => {
        if (s.trace.length >= 200) return;
        const b = [];
        for (let i = 0; i < v.buffered.length; i++) b.push([+v.buffered.start(i).toFixed(2), +v.buffered.end(i).toFixed(2)]);
        s.trace.push([Date.now() - s.t0, what, +v.currentTime.toFixed(2), JSON.stringify(b)]);
      };
      for (const ev of ["seeking", "seeked", "waiting", "playing"]) v.addEventListener(ev, () => tr(ev));
      v.addEventListener("waiting", () => {
        if (s.first !== null) {
          s.stalls++;
          s.waitingSince = Date.now();
        }
      });
      v.addEventListener("playing", () => {
        if (s.waitingSince !== null) s.stallMs += Date.now() - s.waitingSince;
        s.waitingSince = null;
      });
      const W = 640, BITS = 32, BW = W / BITS;
      const onFrame = () => {
        const now = Date.now();
        ctx.drawImage(v, 0, 0, v.videoWidth, 48 * (v.videoHeight / 360), 0, 0, W, 48);
        const px = ctx.getImageData(0, 0, W, 48).data;
        let val = 0;
        let ok = true;
        for (let i = 0; i < BITS; i++) {
          const x = i * BW + (BW >> 1);
          const a = px[(12 * W + x) * 4] > 128;
          const b = px[(36 * W + x) * 4] > 128;
          if (a === b) ok = false;
          val = val * 2 + (a ? 1 : 0);
        }
        if (ok) {
          let d = (now % 2 ** 32) - val;
          if (d < -(2 ** 31)) d += 2 ** 32;
          if (s.first === null) s.first = now;
          s.lat.push([now, d]);
        } else {
          s.bad++;
        }
        v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
      setInterval(() => {
        if (Number.isFinite(hls.latency)) s.hlsLatency.push(hls.latency);
        const d = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details;
        if (d) tr(`edge ${d.edge?.toFixed(2)} age ${d.age?.toFixed(2)} sync ${hls.liveSyncPosition?.toFixed(2)} frags ${d.fragments.length} first ${d.fragments[0]?.start.toFixed(2)} sn ${d.startSN}-${d.endSN} parts ${d.partList?.length}`);
      }, 1000);
      hls.loadSource(src);
      hls.attachMedia(v);
    },
    { src, hlsConfig },
  );
  await page.waitForFunction(() => window.m.first !== null, null, { timeout: startTimeout * 1000 });
  out.first_frame_ms = await page.evaluate(() => window.m.first - window.m.t0);
  await page.waitForTimeout((warmup + seconds) * 1000);
  const m = await page.evaluate(() => window.m);
  const from = m.first + warmup * 1000;
  const lat = m.lat.filter(([t]) => t >= from).map(([, d]) => d).sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.round((lat.length - 1) * p))] : null);
  // stalls over the whole run from the first frame (warm-up included)
  Object.assign(out, {
    frames: lat.length,
    unreadable_frames: m.bad,
    latency_ms: { min: lat[0], p50: q(0.5), p95: q(0.95), max: lat[lat.length - 1] },
    stalls: m.stalls,
    stall_ms: m.stallMs,
    parts_loaded: m.parts,
    segments_loaded: m.segments,
    hls_latency_median: m.hlsLatency.sort((a, b) => a - b)[m.hlsLatency.length >> 1] ?? null,
    fatal: m.fatal,
    errors: m.errors,
    ...(opts.trace ? { trace: m.trace } : {}),
  });
  if (!lat.length) code = 1;
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
  code = 1;
} finally {
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(code);
