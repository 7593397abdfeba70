// Opens the edge's player page, optionally types into its name field and
// presses Play, waits until the page plays (or gives up: rtmpLive.failure),
// then until it shows a viewer count, and prints what the page ended with
// on one line, `PAGE_STATE <json>`. Used by e2e/tests/browser.rs
// (`play_in_page`).
//
//   node page-state.mjs '<json options>'
//
// Options: url, typed (or null), chromium, userDataDir, startTimeout,
// viewersTimeout (seconds), screenshot (path).
import { launch, record } from "./chromium.mjs";

const o = JSON.parse(process.argv[2]);
const out = { requests: [], page_errors: [], console_errors: [], timed_out: false };
const context = await launch(o.userDataDir, o.chromium);
let code = 0;
let page = null;
try {
  page = context.pages()[0] || (await context.newPage());
  record(page, out);
  await page.goto(o.url, { waitUntil: "load" });
  if (o.typed !== null) {
    // After the list's first answer (its own pick of a stream, if any).
    await page
      .waitForFunction(() => window.rtmpLive && window.rtmpLive.list !== null, null, {
        timeout: 8000,
      })
      .catch(() => {});
    await page.fill("#name", o.typed);
    await page.click("#pick button[type=submit]");
  }
  const t0 = Date.now();
  const ended = await page
    .waitForFunction(
      () => {
        const s = window.rtmpLive;
        const v = document.querySelector("video");
        if (!s || !v) return false;
        if (s.failure !== null) return "failure";
        return s.started && v.currentTime > 0 ? "playing" : false;
      },
      null,
      { timeout: o.startTimeout * 1000 },
    )
    .then((h) => h.jsonValue())
    .catch(() => null);
  out.ended = ended;
  out.timed_out = ended === null;
  out.started_after_ms = Date.now() - t0;
  const time = () =>
    page.evaluate(() => {
      const v = document.querySelector("video");
      return v ? v.currentTime : null;
    });
  out.time_at_start = await time();
  if (ended === "playing") {
    // The count arrives with a refresh of the list (every 5 s) once the
    // edge has counted this viewer; at least 3 s of playing in any case.
    await page
      .waitForFunction(() => window.rtmpLive.viewers > 0, null, {
        timeout: o.viewersTimeout * 1000,
      })
      .catch(() => {});
    await page.waitForTimeout(Math.max(0, t0 + out.started_after_ms + 3000 - Date.now()));
  } else {
    // Given up: a moment more shows whether the page keeps retrying.
    await page.waitForTimeout(3000);
  }
  out.time_at_end = await time();
  Object.assign(
    out,
    await page.evaluate(() => {
      const s = window.rtmpLive;
      if (!s) return { not_the_player: document.body ? document.body.innerText : "" };
      const text = (id) => document.getElementById(id).textContent;
      return {
        name: s.name,
        url: s.url,
        prefix: s.prefix,
        viewers: s.viewers,
        counts: s.counts,
        list: s.list,
        started: s.started,
        playing: !!s.hls,
        stalls: s.stalls,
        ll: s.ll === undefined ? null : s.ll,
        fatal: s.fatal,
        errors: s.errors,
        failure: s.failure,
        status_line: text("status"),
        watching: text("watching"),
        list_text: text("streams"),
        name_field: document.getElementById("name").value,
        location: location.pathname + location.hash,
      };
    }),
  );
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
  code = 1;
} finally {
  if (page && o.screenshot) await page.screenshot({ path: o.screenshot }).catch(() => {});
  await context.close().catch(() => {});
}
process.stdout.write("PAGE_STATE " + JSON.stringify(out) + "\n");
process.exit(code);
