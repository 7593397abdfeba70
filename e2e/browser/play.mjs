// Drives a real chromium (Debian's, through playwright-core) on one page
// that plays a live stream with hls.js, and reports what the page saw as
// one JSON object on stdout. The assertions live in e2e/tests/browser.rs.
//
//   node play.mjs '<json options>'
//
// Options: url (page to open), mode ("hls": a page that starts playing by
// itself; "edge-page": the edge's player page, where the stream is picked
// from the list or typed), stream, seconds (to watch once playing),
// startTimeout (seconds), screenshot (path), userDataDir (fresh folder),
// chromium (executable), pick (edge-page: after `pickAfter` seconds of
// playing, choose the rendition whose label starts with this, e.g. "240p").
import { launch, record } from "./chromium.mjs";

const opts = JSON.parse(process.argv[2] || "{}");
const {
  url,
  mode = "hls",
  stream = "golive",
  seconds = 20,
  startTimeout = 30,
  screenshot,
  pick,
  pickAfter = 5,
  userDataDir,
  chromium: executablePath = "/usr/bin/chromium",
} = opts;

const out = {
  how: null,
  mse_h264: null,
  started_after_ms: null,
  samples: [],
  fatal: [],
  errors: [],
  console_errors: [],
  page_errors: [],
  failed_requests: [],
  // byte-range requests that got something else than 206 (a 200 is the
  // whole file: a player takes it for the part it asked for)
  ranges_not_partial: [],
  requests: [],
  list: null,
  text: "",
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const context = await launch(userDataDir, executablePath);
let code = 0;
let page = null;
try {
  page = context.pages()[0] || (await context.newPage());
  record(page, out);
  page.on("response", (r) => {
    const range = r.request().headers().range;
    if (range && r.status() !== 206) out.ranges_not_partial.push(`${r.url()} ${range}: ${r.status()}`);
  });
  page.on("requestfailed", (r) =>
    out.failed_requests.push(r.url() + " " + (r.failure() || {}).errorText),
  );

  await page.goto(url, { waitUntil: "load" });
  out.mse_h264 = await page.evaluate(() =>
    window.MediaSource
      ? MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')
      : false,
  );

  if (mode === "edge-page") {
    // The list arrives from /streams.json when the edge offers it.
    await page
      .waitForFunction(() => window.rtmpLive && window.rtmpLive.list !== null, null, {
        timeout: 8000,
      })
      .catch(() => {});
    out.list = await page.evaluate(() => window.rtmpLive.list);
    const item = page.locator(`#streams button[data-name="${stream}"]`);
    if (out.list && (await item.count()) === 1) {
      await item.click();
      out.how = "list";
    } else {
      await page.fill("#name", stream);
      await page.click("#pick button[type=submit]");
      out.how = "typed";
    }
  } else {
    out.how = "page";
  }

  const t0 = Date.now();
  await page.waitForFunction(
    () => {
      const v = document.querySelector("video");
      return window.rtmpLive && window.rtmpLive.started && v.currentTime > 0;
    },
    null,
    { timeout: startTimeout * 1000 },
  );
  out.started_after_ms = Date.now() - t0;
  if (pick) out.options = await page.$$eval("#level option", (os) => os.map((o) => o.textContent));

  const sample = () =>
    page.evaluate(() => {
      const s = window.rtmpLive;
      const v = document.querySelector("video");
      const hls = s.hls;
      let buffer = 0;
      for (let i = 0; i < v.buffered.length; i++) {
        if (v.buffered.start(i) <= v.currentTime + 0.1 && v.currentTime <= v.buffered.end(i)) {
          buffer = v.buffered.end(i) - v.currentTime;
        }
      }
      const level = hls && hls.levels[hls.currentLevel];
      return {
        wall: Date.now(),
        current_time: v.currentTime,
        paused: v.paused,
        latency: hls && Number.isFinite(hls.latency) ? hls.latency : null,
        buffer,
        rate: v.playbackRate,
        level: level ? { height: level.height || 0, bitrate: level.bitrate || 0 } : null,
        levels: hls ? hls.levels.length : 0,
        auto: hls ? hls.autoLevelEnabled : null,
        stalls: s.stalls,
        url: s.url,
        ll: s.ll === undefined ? null : s.ll,
      };
    });
  const start = Date.now();
  const end = start + seconds * 1000;
  while (Date.now() < end) {
    if (pick && !out.picked && Date.now() - start >= pickAfter * 1000) {
      const value = await page.$$eval(
        "#level option",
        (os, p) => (os.find((o) => o.textContent.startsWith(p)) || {}).value,
        pick,
      );
      if (value === undefined) throw new Error("no rendition " + pick + " in the picker");
      await page.selectOption("#level", value);
      out.picked = { label: pick, at_sample: out.samples.length };
    }
    out.samples.push(await sample());
    // One sample a second, whatever a sample costs.
    await sleep(Math.max(0, start + out.samples.length * 1000 - Date.now()));
  }
  out.samples.push(await sample());
  const final = await page.evaluate(() => ({
    fatal: window.rtmpLive.fatal,
    errors: window.rtmpLive.errors,
    loaded: window.rtmpLive.loaded || null,
    text: document.body.innerText,
  }));
  Object.assign(out, final);
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
  code = 1;
} finally {
  if (page && screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
  await context.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(code);
