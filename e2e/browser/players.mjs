// Plays one HLS URL with one web player in Debian's headless chromium
// (through playwright-core) and prints one JSON report: did it play, how
// smoothly, how far behind the publisher. The assertions live in
// e2e/tests/players.rs; scripts/bench-players.sh tabulates the reports.
//
//   node players.mjs '<json options>'
//
// Options:
//   src           playlist URL (media or master playlist)
//   player        "hlsjs" | "shaka" | "videojs" (video.js with its VHS)
//   mode          "default": the player as it comes;
//                 "ll": its low-latency mode
//                   hls.js   { lowLatencyMode: true } (also its default)
//                   shaka    { streaming: { lowLatencyMode: true } }
//                   video.js { html5: { vhs: { experimentalLLHLS: true,
//                            llhls: true } } } (VHS 2 reads the first, VHS 3
//                            the second, which VHS 3 turns on by default)
//   config        replaces the mode's settings (an object, for experiments)
//   seconds (20)  watched after the warm-up
//   warmup (5)    seconds after the first frame that the latency, stall and
//                 media-time figures "after warm-up" leave out
//   startTimeout (30)  seconds to wait for the first frame
//   chromium ("/usr/bin/chromium")  the browser executable
//   trace         adds a timeline (player events, a sample a second) and
//                 the last requests to the report
//   pick          a rendition height to hold from the start (ABR off)
//   switch        { after: s, to: "other" | "lowest" | "highest" | <height> }:
//                 s seconds after the first frame, select that rendition
//                 (ABR off from then on); the report says when a frame of
//                 it was presented
//   clockHeight   height of the publisher's frames (the clock's band is the
//                 top 48 rows of those); by default 720, 360, 1080, 480, 540
//                 and the frame's own height are tried
//   out           also write the report to this file
//
// The report (one JSON line on stdout): plays, failures; first_frame_ms
// (from loading the source); frames (presented, requestVideoFrameCallback's
// presentedFrames), frames_after_warmup, fps_after_warmup; media_time
// (currentTime advanced against wall time, from the first frame and after
// the warm-up); stalls, stall_ms (`waiting` events after the first frame,
// until `playing`), the same after the warm-up, stall_list; longest_freeze_ms
// (largest gap between presented frames, or since the last one at the end);
// seeks; fatal, errors (first 20), error_count; renditions, selections (the
// player's own switch events), switches (changes after the first frame),
// forced_switch; disabled_by_player (renditions the player took out of use
// itself: when, and the decoder's decoded/dropped frames then); latency_ms
// (glass to glass: p50, p95, min, max after the warm-up; null when no
// frame carried a readable clock), clock; player_latency_s (the player's own estimate, after the warm-up); http
// (responses by status, failures); with `trace`, trace, samples (one a
// second) and last_requests.
//
// Glass-to-glass latency: when the publisher burns its wall clock into the
// frames (scripts/clock-frames.py: 32 bits in the top 48 rows, the second
// half inverted), every presented frame (requestVideoFrameCallback) is read
// back through a canvas and compared with the wall clock at presentation,
// as e2e/browser/latency.mjs does.
//
// Exit status: 0 when it played: no fatal error (hls.js fatal ERROR event;
// shaka CRITICAL `error` event or load() rejection; video.js `error` event),
// at least one frame presented, and media time advanced by at least 90 % of
// the wall time after the warm-up. 1 otherwise (the report says why, in
// `failures`), 2 for bad options.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

const LIBS = {
  hlsjs: { pkg: "hls.js", file: "hls.js/dist/hls.min.js" },
  shaka: { pkg: "shaka-player", file: "shaka-player/dist/shaka-player.compiled.js" },
  videojs: { pkg: "video.js", file: "video.js/dist/video.min.js" },
};
const CONFIGS = {
  hlsjs: { default: {}, ll: { lowLatencyMode: true } },
  shaka: { default: {}, ll: { streaming: { lowLatencyMode: true } } },
  videojs: { default: {}, ll: { html5: { vhs: { experimentalLLHLS: true, llhls: true } } } },
};
// Media time must advance by this share of the wall time after the warm-up.
const MIN_ADVANCE = 0.9;

function bad(msg) {
  process.stderr.write(`players.mjs: ${msg}\n(see the options at the top of e2e/browser/players.mjs)\n`);
  process.exit(2);
}
let opts;
try {
  opts = JSON.parse(process.argv[2] || "{}");
} catch (e) {
  bad(`options are not JSON: ${e.message}`);
}
const {
  src,
  player = "hlsjs",
  mode = "default",
  seconds = 20,
  warmup = 5,
  startTimeout = 30,
  chromium: executablePath = "/usr/bin/chromium",
  trace = false,
  pick = null,
  switch: switchTo = null,
  clockHeight = null,
  out: outFile = null,
} = opts;
if (!src) bad("src (the playlist URL) is required");
if (!LIBS[player]) bad(`player must be one of ${Object.keys(LIBS).join(", ")}`);
if (!CONFIGS[player][mode]) bad('mode must be "default" or "ll"');
if (pick !== null && !Number.isInteger(pick)) bad("pick is a rendition height (a number)");
if (switchTo !== null && (typeof switchTo !== "object" || !("to" in switchTo))) bad("switch is { after, to }");
const config = opts.config ?? CONFIGS[player][mode];

const report = {
  src,
  player,
  mode,
  config,
  versions: {
    [LIBS[player].pkg]: require(`${LIBS[player].pkg}/package.json`).version,
    ...(player === "videojs"
      ? { "@videojs/http-streaming": require("@videojs/http-streaming/package.json").version }
      : {}),
  },
  plays: false,
  failures: [],
};
let browser = null;
let code = 1;

function finish() {
  if (!report.plays && !report.failures.length) report.failures.push("did not finish");
  const line = JSON.stringify(report);
  if (outFile) {
    try {
      writeFileSync(outFile, JSON.stringify(report, null, 1) + "\n");
    } catch (e) {
      process.stderr.write(`players.mjs: cannot write ${outFile}: ${e}\n`);
    }
  }
  process.stdout.write(line + "\n");
}

// A hung browser must not hang the caller.
const watchdog = setTimeout(
  async () => {
    report.failures.push("watchdog: the run took too long");
    finish();
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  },
  (startTimeout + warmup + seconds + 60) * 1000,
);

// Runs in the page: sets up the player and every measurement on window.m.
async function setup({ src, player, config, warmupMs, pick, switchTo, clockHeight }) {
  let v = document.getElementById("v");
  const ctx = document.getElementById("c").getContext("2d", { willReadFrequently: true });
  const m = (window.m = {
    t0: Date.now(),
    engine: null,
    first: null,
    ctFirst: null,
    warmAt: null,
    ctWarm: null,
    callbacks: 0,
    presented0: null,
    presented: 0,
    presentedAtWarm: null,
    lastFrame: null,
    lastMediaTime: null,
    maxGap: 0,
    maxGapAfterWarmup: 0,
    freezes: [],
    lat: [],
    clockOk: 0,
    clockBad: 0,
    clockBand: null,
    clockGaveUp: false,
    stalls: [],
    waitingSince: null,
    seeks: [],
    fatal: [],
    errors: [],
    errorCount: 0,
    renditions: [],
    selections: [],
    forced: null,
    bans: [],
    est: [],
    samples: [],
    trace: [],
  });
  const since = () => (m.first === null ? Date.now() - m.t0 : Date.now() - m.first);
  // What the player hands the SourceBuffer: appends that carry an init
  // segment (moov) together with media (moof). A player re-appending the
  // init before a part that does not start with a keyframe makes Chromium
  // drop that GOP's frames (docs/players.md); the test tells that defect
  // apart from a stream problem by this count.
  m.appends = { total: 0, init: 0, init_with_media: 0, init_with_media_after_warmup: 0, first_at_ms: [] };
  const boxes = (data) => {
    const u8 = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const seen = new Set();
    for (let off = 0, n = 0; off + 8 <= u8.length && n < 64; n++) {
      const size = ((u8[off] << 24) | (u8[off + 1] << 16) | (u8[off + 2] << 8) | u8[off + 3]) >>> 0;
      seen.add(String.fromCharCode(u8[off + 4], u8[off + 5], u8[off + 6], u8[off + 7]));
      if (size < 8) break;
      off += size;
    }
    return seen;
  };
  const append = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (data) {
    try {
      const b = boxes(data);
      const a = m.appends;
      a.total++;
      if (b.has("moov")) {
        a.init++;
        if (b.has("moof")) {
          a.init_with_media++;
          if (m.warmAt !== null) a.init_with_media_after_warmup++;
          if (a.first_at_ms.length < 20) a.first_at_ms.push(since());
        }
      }
    } catch (_) {
      // a view we cannot read is not ours to judge
    }
    return append.call(this, data);
  };
  const buffered = () => {
    const b = [];
    for (let i = 0; i < v.buffered.length; i++) b.push(`${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
    return b.join(",");
  };
  const tr = (what) => {
    if (m.trace.length < 600) m.trace.push([Date.now() - m.t0, what, +v.currentTime.toFixed(3), buffered()]);
  };
  const fatal = (s) => {
    m.fatal.push(s.slice(0, 500));
    tr("FATAL " + s.slice(0, 200));
  };
  const nonFatal = (s) => {
    m.errorCount++;
    if (m.errors.length < 20) m.errors.push(`${Date.now() - m.t0} ms: ${s.slice(0, 400)}`);
    tr("error " + s.slice(0, 200));
  };
  // The rendition the player selected (its own idea, from its events).
  const select = (l, why) => {
    if (!l) return;
    const s = { at_ms: since(), before_first_frame: m.first === null, width: l.width || 0, height: l.height || 0, bitrate: l.bitrate || 0 };
    const last = m.selections[m.selections.length - 1];
    if (last && last.width === s.width && last.height === s.height && last.bitrate === s.bitrate) return;
    m.selections.push(s);
    tr(`${why} ${s.width}x${s.height} ${s.bitrate}`);
  };
  const uniq = (ls) => {
    const seen = new Set();
    return ls.filter((l) => {
      const k = `${l.width}x${l.height}@${l.bitrate}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  };
  const sortByHeight = (ls) => [...ls].sort((a, b) => a.height - b.height || a.bitrate - b.bitrate);
  let estimate = () => NaN;
  let forceTo = null; // (rendition) => void
  // renditions the player itself has taken out of use (shaka disables a
  // variant for a while after a failed request or too many dropped frames)
  let banned = () => [];

  // ---- the player ----
  const attach = (el) => {
    v = el;
    for (const ev of ["loadedmetadata", "playing", "waiting", "seeking", "seeked", "pause", "ended", "error", "resize", "ratechange"]) {
      v.addEventListener(ev, () => tr(ev === "resize" ? `resize ${v.videoWidth}x${v.videoHeight}` : ev));
    }
    v.addEventListener("waiting", () => {
      if (m.first !== null && m.waitingSince === null) m.waitingSince = Date.now();
    });
    v.addEventListener("playing", () => {
      if (m.waitingSince !== null) {
        m.stalls.push({ at_ms: m.waitingSince - m.first, ms: Date.now() - m.waitingSince, current_time: +v.currentTime.toFixed(3) });
        m.waitingSince = null;
      }
    });
    v.addEventListener("seeking", () => {
      if (m.first !== null && m.seeks.length < 50) {
        m.seeks.push({ at_ms: since(), from: m.lastMediaTime === null ? null : +m.lastMediaTime.toFixed(3), to: +v.currentTime.toFixed(3) });
      }
    });
  };
  if (player === "hlsjs") {
    attach(v);
    const hls = (window.player = new Hls(config));
    m.engine = `hls.js ${Hls.version}`;
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const url = (d.context && d.context.url) || (d.frag && d.frag.url) || "";
      const s = `${d.type}:${d.details}${d.reason ? ":" + d.reason : ""}${d.error && d.error.message ? ":" + d.error.message : ""}${url ? " " + url : ""}`;
      d.fatal ? fatal(s) : nonFatal(s);
    });
    const level = (l) => l && { width: l.width, height: l.height, bitrate: l.bitrate };
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      m.renditions = uniq(hls.levels.map(level));
      tr(`manifest: ${hls.levels.length} levels`);
      if (pick !== null) {
        const i = hls.levels.findIndex((l) => l.height === pick);
        if (i < 0) fatal(`pick: no rendition of height ${pick}`);
        else hls.currentLevel = i;
      }
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => select(level(hls.levels[d.level]), "level"));
    estimate = () => hls.latency;
    forceTo = (r) => {
      hls.nextLevel = hls.levels.findIndex((l) => l.width === r.width && l.height === r.height && l.bitrate === r.bitrate);
    };
    hls.loadSource(src);
    hls.attachMedia(v);
  } else if (player === "shaka") {
    attach(v);
    shaka.polyfill.installAll();
    m.engine = `shaka-player ${shaka.Player.version}`;
    if (!shaka.Player.isBrowserSupported()) fatal("shaka: browser not supported");
    const p = (window.player = new shaka.Player());
    await p.attach(v);
    const codeName = (c) => (Object.entries(shaka.util.Error.Code).find(([, n]) => n === c) || ["?"])[0];
    const describe = (d) => `${d.category}/${d.code} ${codeName(d.code)} ${JSON.stringify(d.data || []).slice(0, 300)}`;
    p.addEventListener("error", (e) => {
      const d = e.detail;
      d.severity === shaka.util.Error.Severity.CRITICAL ? fatal(describe(d)) : nonFatal(describe(d));
    });
    p.addEventListener("buffering", (e) => tr(`shaka buffering ${e.buffering}`));
    const active = () => {
      const t = p.getVariantTracks().find((x) => x.active);
      return t && { width: t.width, height: t.height, bitrate: t.bandwidth };
    };
    for (const ev of ["adaptation", "variantchanged"]) p.addEventListener(ev, () => select(active(), ev));
    if (Object.keys(config).length) p.configure(config);
    if (pick !== null) p.configure({ restrictions: { minHeight: pick, maxHeight: pick } });
    estimate = () => p.getStats().liveLatency;
    banned = () =>
      ((p.getManifest() || {}).variants || [])
        .filter((x) => x.disabledUntilTime && x.video)
        .map((x) => ({ width: x.video.width, height: x.video.height }));
    forceTo = (r) => {
      // by picture size: shaka may revise a track's bandwidth after load
      const t = p.getVariantTracks().find((x) => x.width === r.width && x.height === r.height);
      if (!t) throw new Error(`no variant track ${r.width}x${r.height}`);
      p.configure({ abr: { enabled: false } });
      p.selectVariantTrack(t, false);
    };
    p.load(src).then(
      () => {
        m.renditions = uniq(p.getVariantTracks().map((t) => ({ width: t.width, height: t.height, bitrate: t.bandwidth })));
        tr(`loaded: ${p.getVariantTracks().length} variants, live ${p.isLive()}`);
        select(active(), "loaded");
      },
      (d) => fatal(`load() rejected: ${d && d.code ? describe(d) : String(d)}`),
    );
  } else {
    const p = (window.player = videojs(v, config));
    attach(p.tech({ IWillNotUseThisInPlugins: true }).el());
    // VHS reports what it drops or retries through videojs.log.
    for (const lvl of ["warn", "error"]) {
      const orig = videojs.log[lvl];
      videojs.log[lvl] = (...a) => {
        nonFatal(`log.${lvl}: ${a.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" ")}`);
        return orig(...a);
      };
    }
    p.on("error", () => fatal(`error ${JSON.stringify(p.error())}`));
    const ql = p.qualityLevels();
    const level = (l) => l && { width: l.width || 0, height: l.height || 0, bitrate: l.bitrate || 0 };
    ql.on("addqualitylevel", (e) => {
      m.renditions = uniq([...m.renditions, level(e.qualityLevel)]);
      if (pick !== null) e.qualityLevel.enabled = e.qualityLevel.height === pick;
    });
    ql.on("change", () => select(level(ql[ql.selectedIndex]), "quality"));
    const vhs = () => p.tech({ IWillNotUseThisInPlugins: true }).vhs;
    // VHS's own distance from the live edge: seekable end (the edge less
    // its hold-back) plus that hold-back, less the playhead.
    estimate = () => {
      const h = vhs();
      const media = h && h.playlists && h.playlists.media();
      const s = p.seekable();
      if (!media || !s.length) return NaN;
      return s.end(s.length - 1) + videojs.Vhs.Playlist.liveEdgeDelay(h.playlists.main, media) - p.currentTime();
    };
    forceTo = (r) => {
      for (let i = 0; i < ql.length; i++) {
        ql[i].enabled = ql[i].width === r.width && ql[i].height === r.height && ql[i].bitrate === r.bitrate;
      }
    };
    p.on("loadstart", () => {
      m.engine = `video.js ${videojs.VERSION} ${vhs() ? "VHS (MSE)" : "native playback"}`;
    });
    p.src({ src, type: "application/x-mpegURL" });
  }
  v.muted = true;
  v.play().catch(() => {});
  v.addEventListener("canplay", () => v.paused && v.play().catch((e) => tr("play() " + e)));

  // ---- every presented frame ----
  const W = 640;
  const BITS = 32;
  const BW = W / BITS;
  const heights = clockHeight ? [clockHeight] : [720, 360, 1080, 480, 540];
  // The clock's 32 bits, reading the band as if the publisher's frames were
  // `h` rows tall, or null when they do not read as a clock there. The
  // bits are floor(width / 32) pixels wide each, from the left edge
  // (clock-frames.py): all the width at 1280 or 640, 832 of 854 pixels.
  const readClock = (h) => {
    const band = (48 * v.videoHeight) / h;
    if (!(band > 0 && band <= v.videoHeight)) return null;
    const srcW = Math.round((v.videoWidth * h) / v.videoHeight);
    const span = (BITS * Math.floor(srcW / BITS)) / srcW;
    ctx.drawImage(v, 0, 0, v.videoWidth * span, band, 0, 0, W, 48);
    const px = ctx.getImageData(0, 0, W, 48).data;
    let val = 0;
    for (let i = 0; i < BITS; i++) {
      const x = i * BW + (BW >> 1);
      const a = px[(12 * W + x) * 4] > 128;
      const b = px[(36 * W + x) * 4] > 128;
      if (a === b) return null;
      val = val * 2 + (a ? 1 : 0);
    }
    return val;
  };
  const onFrame = (_now, md) => {
    const now = Date.now();
    m.callbacks++;
    if (m.first === null) {
      m.first = now;
      m.ctFirst = v.currentTime;
      m.presented0 = md.presentedFrames;
      tr(`first frame ${v.videoWidth}x${v.videoHeight}`);
      setTimeout(() => {
        m.warmAt = Date.now();
        m.ctWarm = v.currentTime;
        m.presentedAtWarm = m.presented;
      }, warmupMs);
      if (switchTo) setTimeout(forceSwitch, (switchTo.after ?? 5) * 1000);
    }
    m.presented = md.presentedFrames - m.presented0 + 1;
    if (m.lastFrame !== null) {
      const gap = now - m.lastFrame;
      if (gap > m.maxGap) m.maxGap = gap;
      if (m.warmAt !== null && gap > m.maxGapAfterWarmup) m.maxGapAfterWarmup = gap;
      // where the picture froze (ends here), to tell a switch's from others
      if (m.warmAt !== null && gap > 300 && m.freezes.length < 50) m.freezes.push({ at_ms: m.lastFrame - m.first, ms: gap });
    }
    m.lastFrame = now;
    m.lastMediaTime = md.mediaTime;
    if (m.forced && m.forced.presented_at_ms === null && v.videoHeight === m.forced.to.height) {
      m.forced.presented_at_ms = now - m.first;
      tr("forced rendition presented");
    }
    if (!m.clockGaveUp) {
      const order = m.clockBand ? [m.clockBand, ...heights.filter((h) => h !== m.clockBand)] : heights;
      if (!order.includes(v.videoHeight)) order.push(v.videoHeight);
      let val = null;
      for (const h of order) {
        try {
          val = readClock(h);
        } catch (e) {
          val = null;
        }
        if (val !== null) {
          m.clockBand = h;
          break;
        }
      }
      let d = null;
      if (val !== null) {
        d = (now % 2 ** 32) - val;
        if (d < -(2 ** 31)) d += 2 ** 32;
        if (d < -5000 || d > 600000) d = null; // not a clock after all
      }
      if (d !== null) {
        m.clockOk++;
        m.lat.push([now, d]);
      } else {
        m.clockBad++;
        // A stream without the clock: stop paying for the canvas.
        if (m.clockOk === 0 && m.clockBad >= 90) {
          m.clockGaveUp = true;
          tr("no clock in the frames");
        }
      }
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);

  // ---- forced switch ----
  const forceSwitch = () => {
    const rs = sortByHeight(m.renditions);
    const cur = m.selections[m.selections.length - 1] || null;
    let to = null;
    if (switchTo.to === "lowest") to = rs[0];
    else if (switchTo.to === "highest") to = rs[rs.length - 1];
    else if (switchTo.to === "other") to = rs.find((r) => !cur || r.height !== cur.height) || null;
    else to = rs.find((r) => r.height === switchTo.to) || null;
    m.forced = { at_ms: since(), from: cur, to, presented_at_ms: null };
    if (!to || !forceTo) {
      m.forced.error = `no rendition "${switchTo.to}" among ${JSON.stringify(rs)}`;
      return;
    }
    tr(`force ${to.width}x${to.height} ${to.bitrate}`);
    try {
      forceTo(to);
    } catch (e) {
      m.forced.error = String(e);
    }
  };

  // ---- a sample a second ----
  setInterval(() => {
    try {
      for (const b of banned()) {
        if (m.bans.some((x) => x.height === b.height && x.width === b.width)) continue;
        const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
        m.bans.push({ at_ms: since(), ...b, decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames });
        tr(`player disabled ${b.width}x${b.height}`);
      }
    } catch (err) {
      /* the player is not loaded yet */
    }
    let e = NaN;
    try {
      e = +estimate();
    } catch (err) {
      e = NaN;
    }
    if (m.first !== null && m.warmAt !== null && Number.isFinite(e)) m.est.push(e);
    let ahead = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime + 0.1 && v.currentTime <= v.buffered.end(i)) ahead = v.buffered.end(i) - v.currentTime;
    }
    if (m.samples.length < 1200) {
      m.samples.push({
        t_ms: since(),
        current_time: +v.currentTime.toFixed(3),
        frames: m.presented,
        stalls: m.stalls.length + (m.waitingSince !== null ? 1 : 0),
        buffer_s: +ahead.toFixed(3),
        rate: v.playbackRate,
        size: `${v.videoWidth}x${v.videoHeight}`,
        dropped: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().droppedVideoFrames : null,
        player_latency_s: Number.isFinite(e) ? +e.toFixed(3) : null,
        glass_ms: m.lat.length ? m.lat[m.lat.length - 1][1] : null,
      });
    }
  }, 1000);

  // ---- the figures at the end ----
  window.finishRun = () => {
    const now = Date.now();
    if (m.waitingSince !== null) {
      m.stalls.push({ at_ms: m.waitingSince - m.first, ms: now - m.waitingSince, current_time: +v.currentTime.toFixed(3), open: true });
      m.waitingSince = null;
    }
    const sinceLast = m.lastFrame === null ? 0 : now - m.lastFrame;
    return {
      ...m,
      end: now,
      ctEnd: v.currentTime,
      freezeAtEnd: sinceLast,
      size: `${v.videoWidth}x${v.videoHeight}`,
      paused: v.paused,
      quality: v.getVideoPlaybackQuality ? (({ totalVideoFrames, droppedVideoFrames }) => ({ decoded: totalVideoFrames, dropped: droppedVideoFrames }))(v.getVideoPlaybackQuality()) : null,
    };
  };
}

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--autoplay-policy=no-user-gesture-required",
      "--disable-background-networking",
      "--disable-background-timer-throttling",
      "--disable-backgrounding-occluded-windows",
      "--disable-renderer-backgrounding",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
  report.versions.chromium = browser.version();
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // max_in_flight: the most requests the player had open at once (what
  // an edge's per-client limit on held requests must allow)
  // parts / segments: media requests by kind (CMAF parts <E>-<n>.m4s,
  // whole segments; byte ranges count as parts): does the player use the
  // low-latency parts?
  const http = {
    requests: 0, by_status: {}, failed: 0, aborted: 0, problems: [], max_in_flight: 0,
    parts: 0, segments: 0, playlists: 0,
  };
  const recent = [];
  const t0 = Date.now();
  const open = new Set();
  page.on("request", (r) => {
    if (!r.url().startsWith("http")) return;
    open.add(r);
    if (open.size > http.max_in_flight) http.max_in_flight = open.size;
  });
  page.on("requestfinished", (r) => open.delete(r));
  page.on("requestfailed", (r) => open.delete(r));
  page.on("response", (r) => {
    http.requests++;
    const u = r.url().split("?")[0];
    if (/\/[0-9]+-[0-9]+\.m4s$/.test(u) || r.request().headers().range) http.parts++;
    else if (/\.(m4s|ts)$/.test(u)) http.segments++;
    else if (/\.m3u8$/.test(u)) http.playlists++;
    http.by_status[r.status()] = (http.by_status[r.status()] || 0) + 1;
    const range = r.request().headers().range;
    const line = `${Date.now() - t0} ms ${r.status()} ${r.url()}${range ? " " + range : ""}`;
    if (r.status() >= 400 && http.problems.length < 20) http.problems.push(line);
    if (trace) {
      recent.push(line);
      if (recent.length > 80) recent.shift();
    }
  });
  page.on("requestfailed", (r) => {
    const why = (r.failure() || {}).errorText || "";
    // players abort requests they no longer need (switches, seeks)
    if (why.includes("ERR_ABORTED")) http.aborted++;
    else {
      http.failed++;
      if (http.problems.length < 20) http.problems.push(`${Date.now() - t0} ms failed ${r.url()} ${why}`);
    }
  });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.length < 10 && pageErrors.push(String(e).slice(0, 300)));
  await page.setContent(
    '<!doctype html><body style="margin:0;background:#000">' +
      '<video id="v" class="video-js" muted autoplay playsinline width="640" height="360"></video>' +
      '<canvas id="c" width="640" height="48"></canvas></body>',
  );
  await page.addScriptTag({ content: readFileSync(require.resolve(LIBS[player].file), "utf8") });
  await page.evaluate(setup, { src, player, config, warmupMs: warmup * 1000, pick, switchTo, clockHeight });

  const started = await page
    .waitForFunction(() => window.m.first !== null || window.m.fatal.length > 0, null, {
      timeout: startTimeout * 1000,
    })
    .then(() => true)
    .catch(() => false);
  let first = await page.evaluate(() => window.m.first);
  if (first !== null) {
    const until = first + (warmup + seconds) * 1000;
    // Until the end of the watch, or the first fatal error (the player is
    // dead then).
    while (Date.now() < until) {
      await page.waitForTimeout(Math.min(500, Math.max(0, until - Date.now())));
      if (await page.evaluate(() => window.m.fatal.length > 0)) break;
    }
  }
  const m = await page.evaluate(() => window.finishRun());
  first = m.first;
  report.engine = m.engine;
  report.first_frame_ms = first === null ? null : first - m.t0;
  report.seconds = seconds;
  report.warmup = warmup;
  const after = (t) => first !== null && m.warmAt !== null && t >= m.warmAt;
  const wall = first === null ? 0 : (m.end - first) / 1000;
  const wallWarm = m.warmAt === null ? 0 : (m.end - m.warmAt) / 1000;
  report.watched_s = +wall.toFixed(3);
  report.frames = first === null ? 0 : m.presented;
  report.frames_after_warmup = m.presentedAtWarm === null ? 0 : m.presented - m.presentedAtWarm;
  report.fps_after_warmup = wallWarm > 0 ? +(report.frames_after_warmup / wallWarm).toFixed(2) : null;
  report.rvfc_callbacks = m.callbacks;
  // the element's own count: frames decoded, and dropped (late or lost)
  report.playback_quality = m.quality;
  report.size = m.size;
  report.paused_at_end = m.paused;
  const adv = first === null ? 0 : m.ctEnd - m.ctFirst;
  const advWarm = m.warmAt === null ? 0 : m.ctEnd - m.ctWarm;
  report.media_time = {
    advanced_s: +adv.toFixed(3),
    wall_s: +wall.toFixed(3),
    ratio: wall > 0 ? +(adv / wall).toFixed(3) : null,
    advanced_after_warmup_s: +advWarm.toFixed(3),
    wall_after_warmup_s: +wallWarm.toFixed(3),
    ratio_after_warmup: wallWarm > 0 ? +(advWarm / wallWarm).toFixed(3) : null,
  };
  const stallsWarm = m.stalls.filter((s) => m.warmAt !== null && first + s.at_ms + s.ms > m.warmAt);
  report.stalls = m.stalls.length;
  report.stall_ms = m.stalls.reduce((a, s) => a + s.ms, 0);
  report.stalls_after_warmup = stallsWarm.length;
  report.stall_ms_after_warmup = stallsWarm.reduce((a, s) => a + s.ms, 0);
  report.stall_list = m.stalls.slice(0, 20);
  report.longest_freeze_ms = Math.max(m.maxGap, m.freezeAtEnd && first !== null ? m.freezeAtEnd : 0);
  report.longest_freeze_after_warmup_ms = Math.max(m.maxGapAfterWarmup, m.warmAt !== null ? m.freezeAtEnd : 0);
  // freezes after the warm-up over 300 ms: from (ms after the first frame), how long
  report.freezes_after_warmup = m.freezes.concat(m.warmAt !== null && m.freezeAtEnd > 300 && first !== null ? [{ at_ms: m.end - first - m.freezeAtEnd, ms: m.freezeAtEnd, open: true }] : []);
  report.seeks = m.seeks;
  report.fatal = m.fatal;
  report.errors = m.errors;
  report.error_count = m.errorCount;
  report.page_errors = pageErrors;
  report.renditions = [...m.renditions].sort((a, b) => a.height - b.height || a.bitrate - b.bitrate);
  report.selections = m.selections;
  // changes of the selected rendition once the first frame was presented
  report.switches = m.selections.filter((s, i) => i > 0 && !s.before_first_frame).length;
  report.forced_switch = m.forced;
  report.disabled_by_player = m.bans;
  const lat = m.lat.filter(([t]) => after(t)).map(([, d]) => d).sort((a, b) => a - b);
  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.round((xs.length - 1) * p))];
  report.latency_ms = lat.length
    ? { p50: q(lat, 0.5), p95: q(lat, 0.95), min: lat[0], max: lat[lat.length - 1], frames: lat.length }
    : null;
  report.clock = { decoded: m.clockOk, unreadable: m.clockBad, source_height: m.clockBand, gave_up: m.clockGaveUp };
  const est = [...m.est].sort((a, b) => a - b);
  report.player_latency_s = {
    source: {
      hlsjs: "hls.latency",
      shaka: "getStats().liveLatency",
      videojs: "seekable end + VHS liveEdgeDelay - currentTime",
    }[player],
    p50: est.length ? +q(est, 0.5).toFixed(3) : null,
    p95: est.length ? +q(est, 0.95).toFixed(3) : null,
    samples: est.length,
  };
  report.appends = m.appends;
  report.http = http;
  if (trace) {
    report.trace = m.trace;
    report.samples = m.samples;
    report.last_requests = recent;
  }

  if (!started && first === null && !m.fatal.length) report.failures.push(`no frame within ${startTimeout} s`);
  if (m.fatal.length) report.failures.push(`fatal error: ${m.fatal[0]}`);
  if (first === null) {
    if (started || m.fatal.length) report.failures.push("no frame presented");
  } else if (!(report.media_time.ratio_after_warmup >= MIN_ADVANCE)) {
    report.failures.push(
      `media time advanced ${advWarm.toFixed(2)} s in ${wallWarm.toFixed(2)} s after the warm-up (< ${MIN_ADVANCE * 100} %)`,
    );
  }
  report.plays = report.failures.length === 0;
  code = report.plays ? 0 : 1;
} catch (e) {
  report.failures.push(`harness: ${String(e && e.stack ? e.stack : e).slice(0, 1000)}`);
  code = 1;
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
}
finish();
process.exit(code);
