// Rewinds a live stream on the edge's player page, as a viewer does, and
// prints what happened on one line, `DVR_STATE <json>`. Used by
// e2e/tests/dvr_page.rs and scripts/bench-dvr.sh.
//
//   node dvr.mjs '<json options>'
//
// Options: url (the page, /#<name>), chromium, userDataDir, screenshot,
// window (seconds of DVR window to wait for), windowTimeout (seconds), back
// (seconds to rewind), hold (seconds to watch rewound), recording (true:
// afterwards, wait for the stream's first recording in the page's list,
// up to recordingTimeout seconds, play it and watch it for hold seconds).
//
// Reports: window (seconds), behind_at_live, seek_start_ms (from the seek
// bar's change to the picture moving again at the new position), behind
// and rate while rewound (media seconds per second), live_after_ms (the
// Live button to within 4 s of the live edge), stalls, fatal (before the
// stream ends, and while the recording plays), and with `recording`:
// recording_url, recording_duration (the page's seekable span),
// recording_rate, fatal_after_end (between the two: the ended live
// stream's).
import { launch, record } from "./chromium.mjs";

const o = JSON.parse(process.argv[2]);
const out = { requests: [], page_errors: [], console_errors: [] };
const context = await launch(o.userDataDir, o.chromium);
let code = 0;
let page = null;

const state = () =>
  page.evaluate(() => {
    const s = window.rtmpLive;
    const v = document.querySelector("video");
    return {
      name: s.name,
      url: s.url,
      dvr: s.dvr,
      time: v.currentTime,
      paused: v.paused,
      started: s.started,
      stalls: s.stalls,
      fatal: s.fatal,
      failure: s.failure,
      recordings: s.recordings,
      live_hidden: document.getElementById("live").hidden,
      behind_text: document.getElementById("behind").textContent,
    };
  });

// Watches `secs` seconds: media seconds per wall second, and the largest
// distance behind live seen.
async function watch(secs) {
  const a = await state();
  const t0 = Date.now();
  // (the page's dvr readout is refreshed every 500 ms: sampled after that)
  let behind = null;
  while (Date.now() - t0 < secs * 1000) {
    await page.waitForTimeout(600);
    const s = await state();
    if (s.dvr) behind = Math.min(behind === null ? Infinity : behind, s.dvr.behind);
  }
  const b = await state();
  return { rate: (b.time - a.time) / ((Date.now() - t0) / 1000), min_behind: behind, end: b };
}

try {
  page = context.pages()[0] || (await context.newPage());
  record(page, out);
  await page.goto(o.url, { waitUntil: "load" });
  await page.waitForFunction(
    (w) => {
      const s = window.rtmpLive;
      return s && s.started && s.dvr && s.dvr.end - s.dvr.start >= w;
    },
    o.window,
    { timeout: o.windowTimeout * 1000, polling: 250 },
  );
  let s = await state();
  out.window = s.dvr.end - s.dvr.start;
  out.behind_at_live = s.dvr.behind;
  out.live_button_hidden_at_live = s.live_hidden;

  // Rewind with the seek bar.
  const target = s.dvr.end - o.back;
  const t0 = Date.now();
  await page.evaluate((t) => {
    const seek = document.getElementById("seek");
    seek.value = String(t);
    seek.dispatchEvent(new Event("input"));
    seek.dispatchEvent(new Event("change"));
  }, target);
  await page.waitForFunction(
    (t) => {
      const v = document.querySelector("video");
      return !v.seeking && v.readyState >= 3 && v.currentTime > t + 0.3 && v.currentTime < t + 10;
    },
    target,
    { timeout: 20000, polling: 50 },
  );
  out.seek_start_ms = Date.now() - t0;
  const rewound = await watch(o.hold);
  out.rewound_rate = rewound.rate;
  out.rewound_min_behind = rewound.min_behind;
  out.rewound_text = rewound.end.behind_text;
  out.live_button_shown_rewound = !rewound.end.live_hidden;

  // Back to live.
  const t1 = Date.now();
  await page.click("#live");
  await page.waitForFunction(() => window.rtmpLive.dvr && window.rtmpLive.dvr.behind < 4, null, {
    timeout: 20000,
    polling: 100,
  });
  out.live_after_ms = Date.now() - t1;
  s = await state();
  out.behind_after_live = s.dvr.behind;
  // Fatal errors before the stream ends, and after the recording is
  // chosen. In between the live stream ends while the page still plays it:
  // its playlist goes (404) and hls.js may give up on it (levelLoadError)
  // before the recording is listed, as a player of an ended stream does.
  const fatalBeforeEnd = s.fatal.length;
  let fatalAtSwitch = fatalBeforeEnd;

  if (o.recording) {
    await page.waitForFunction(() => window.rtmpLive.recordings.length > 0, null, {
      timeout: o.recordingTimeout * 1000,
      polling: 500,
    });
    fatalAtSwitch = (await state()).fatal.length;
    await page.click("#recordings button");
    await page.waitForFunction(
      () => {
        const s = window.rtmpLive;
        const v = document.querySelector("video");
        return s.name.includes("~") && s.started && v.currentTime > 1;
      },
      null,
      { timeout: 20000, polling: 100 },
    );
    s = await state();
    out.recording_url = s.url;
    out.recording_duration = s.dvr ? s.dvr.end - s.dvr.start : null;
    out.recording_start_time = s.time;
    const played = await watch(o.hold);
    out.recording_rate = played.rate;
  }
  s = await state();
  out.stalls = s.stalls;
  out.fatal = s.fatal.slice(0, fatalBeforeEnd).concat(s.fatal.slice(fatalAtSwitch));
  out.fatal_after_end = s.fatal.slice(fatalBeforeEnd, fatalAtSwitch);
  out.failure = s.failure;
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
  try {
    out.last_state = await state();
  } catch (_) {}
  code = 1;
} finally {
  if (page && o.screenshot) await page.screenshot({ path: o.screenshot }).catch(() => {});
  await context.close().catch(() => {});
}
process.stdout.write("DVR_STATE " + JSON.stringify(out) + "\n");
process.exit(code);
