// RTMP Live player page, served by the edge at `/` (and, for signed
// playback links, at `/t/<token>/`). Plain JS over hls.js (installed from
// npm at build time, served as /hls.min.js).
//
// - Lists live stream names from /streams.json when the edge offers it,
//   each with its viewer count when the API reports them, refreshed every
//   5 s while the page is visible; a name can always be typed (default
//   `golive`), or given as the page's #hash.
// - Plays /<name>/master.m3u8 (ABR) when it exists, else /<name>/index.m3u8.
// - Signed playback links: the page opened at /t/<token>/#<name>, or a
//   signed URL or path (/t/<token>/<name>/index.m3u8) pasted into the name
//   field. The token and name are taken from it and played from this edge
//   (never from a pasted host): /t/<token>/<name>/... A 403 (no, expired
//   or bad token) stops playback with a message instead of retrying.
// - Rewind: a seek bar over the stream's DVR window (video.seekable) and a
//   "Live" button back to the live edge; the stream's finished recordings
//   (/recordings.json?stream=<name>, refreshed with the list) under the
//   player, each played as /<name>~<start>/ (a VOD playlist).
// - LL-HLS when the playlist offers it (parts, blocking reloads: the
//   origin's LL component): hls.js's own low-latency mode, 1.5 s behind the
//   newest part. Otherwise settings tuned for plain 2 s segments.
// - State for tests and debugging: window.rtmpLive.
"use strict";

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
// A recording: <name>~<start> (types/src/recording.rs).
const RECORDING = /^([A-Za-z0-9_-]{1,64})~(0|[1-9][0-9]{0,19})$/;
// Below this much of a window there is nothing to rewind: no seek bar.
const MIN_WINDOW_S = 12;
// A playback token (types/src/playback.rs): <exp>.<sig> or <exp>.a.<sig>.
const TOKEN = /^[0-9]{1,12}\.(a\.)?[A-Za-z0-9_-]{43}$/;
// How often the list (and the viewer counts) is refreshed.
const LIST_EVERY_MS = 5000;
// A list request that hangs longer is abandoned (the next one follows).
const LIST_TIMEOUT_MS = 4000;
const NEEDS_LINK = "this stream needs a valid playback link (403)";
// Plain playlists: hold 2.5 s behind the live edge, catch up at up to 1.1x.
// No liveMaxLatencyDuration: hls.js would pull a viewer who rewound the DVR
// window back to the live edge at the next reload (it adjusts the rate only
// near the live edge, so rewound playback runs at 1x).
const HLS_CONFIG = {
  lowLatencyMode: true,
  liveSyncDuration: 2.5,
  maxLiveSyncPlaybackRate: 1.1,
  backBufferLength: 30,
};
// LL-HLS: hold 1.5 s behind the newest part, catch up at up to 1.1x. Not
// the playlist's PART-HOLD-BACK (1.08 s with 1/3 s parts): caught up to
// that, hls.js stalled for about 3 s once a minute here.
const HLS_CONFIG_LL = {
  lowLatencyMode: true,
  liveSyncDuration: 1.5,
  maxLiveSyncPlaybackRate: 1.1,
  backBufferLength: 30,
};

const $ = (id) => document.getElementById(id);
const video = $("video");
const state = (window.rtmpLive = {
  name: null,
  seq: 0,
  url: null,
  hls: null,
  started: false,
  stalls: 0,
  fatal: [],
  errors: [],
  list: null, // names from /streams.json, or null when the edge has none
  counts: null, // viewers per listed name, or null when the API reports none
  viewers: null, // the playing stream's viewer count, or null when unknown
  prefix: "", // the token prefix of the playing URL: "" or "/t/<token>"
  failure: null, // why the page last gave up (a bad link, a 403, a fatal error), else null
  dvr: null, // { start, end, behind } of what plays (seconds), or null
  recordings: [], // the chosen stream's finished recordings (the API's list)
  recordingsOf: null, // the stream they are of
});

// The signed link the page was given ({ token, name }), or null. Its token
// is used for that stream only (a token signs one stream); `name` is null
// while unknown (the page opened at /t/<token>/ without a #name: the first
// stream played).
let signed = null;

function status(text) {
  $("status").textContent = text || "";
}

// Gives up on the current stream with `text` in the status line.
function fail(text) {
  status(text);
  state.failure = text;
}

// The viewer count of `name` from the last list, or null.
function countOf(name) {
  const c = state.counts;
  return c && name && Object.prototype.hasOwnProperty.call(c, name) ? c[name] : null;
}

// The playing stream's viewer count, near the player.
function showViewers() {
  const n = countOf(state.name);
  state.viewers = n;
  $("watching").textContent = n === null ? "" : n + " watching";
}

// Viewer counts from /streams.json's `viewers` ({ name: count }), for the
// listed names only; null when the API sends none (an older API).
function parseCounts(viewers, names) {
  if (!viewers || typeof viewers !== "object" || Array.isArray(viewers)) return null;
  const counts = {};
  for (const n of names) {
    const v = Object.prototype.hasOwnProperty.call(viewers, n) ? viewers[n] : null;
    if (Number.isSafeInteger(v) && v >= 0) counts[n] = v;
  }
  return counts;
}

async function loadList() {
  let names = null;
  let counts = null;
  // A hung request is abandoned, so that the next refresh can start.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), LIST_TIMEOUT_MS);
  try {
    const r = await fetch("/streams.json", { cache: "no-store", signal: abort.signal });
    const body = r.ok ? await r.json() : null;
    if (body && Array.isArray(body.streams)) {
      names = body.streams.filter((n) => typeof n === "string" && NAME.test(n));
      counts = parseCounts(body.viewers, names);
    }
  } catch (e) {
    names = null;
  } finally {
    clearTimeout(timer);
  }
  state.list = names;
  state.counts = counts;
  showViewers();
  const ul = $("streams");
  ul.replaceChildren();
  if (names === null) {
    $("streams-note").textContent = "(no list here: type a stream name)";
    return;
  }
  $("streams-note").textContent = names.length ? "" : "nothing is live";
  for (const n of names) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = n;
    b.dataset.name = n;
    b.setAttribute("aria-pressed", String(n === state.name));
    const count = countOf(n);
    if (count !== null) {
      // "golive 3": the count in a span of its own (styled apart).
      const c = document.createElement("span");
      c.className = "count";
      c.textContent = String(count);
      b.append(" ", c);
      b.title = count + " watching";
    }
    b.addEventListener("click", () => play(n));
    li.append(b);
    ul.append(li);
  }
  // Nothing chosen yet (nor refused): play golive if it is live, else the
  // first stream.
  if (!state.name && !state.failure && names.length) {
    play(names.includes("golive") ? "golive" : names[0]);
  }
}

// The HTTP status of `url` (its body read and dropped), 0 when the
// request failed.
async function probe(url) {
  try {
    const r = await fetch(url, { cache: "no-store" });
    await r.text();
    return r.status;
  } catch (e) {
    return 0;
  }
}

// What the name field holds: a stream name, or a playback link (a full URL
// or a path, signed or not):
//   golive
//   https://edge.example/t/<token>/golive/index.m3u8   (or master.m3u8)
//   /t/<token>/golive/index.m3u8
//   /t/<token>/#golive                                 (a page link)
//   /golive/index.m3u8
// Returns { name, token } (token null when unsigned) or { error }. Only
// the token and name are kept: the stream plays from this page's edge,
// whatever host the link names.
function parseInput(text) {
  if (NAME.test(text) || RECORDING.test(text)) return { name: text, token: null };
  if (!text.includes("/")) {
    return { error: "stream names are 1-64 characters of A-Z a-z 0-9 _ -" };
  }
  let u;
  try {
    u = new URL(text, location.href);
  } catch (e) {
    return { error: "not a stream name nor a playback link" };
  }
  // /t/<token>/<name>/ with an optional index.m3u8 or master.m3u8, or
  // /t/<token>/ with the name in the hash; each without /t/<token>.
  let m = /^(?:\/t\/([^/]+))?\/([^/]+)\/(?:(?:index|master)\.m3u8)?$/.exec(u.pathname);
  let token = m ? m[1] : undefined;
  let name = m ? m[2] : undefined;
  if (!m) {
    m = /^\/t\/([^/]+)\/$/.exec(u.pathname);
    if (!m) return { error: "not a playback link: expected /t/<token>/<stream>/index.m3u8" };
    token = m[1];
    name = nameFromHash(u.hash);
  }
  if (token !== undefined && !TOKEN.test(token)) {
    return { error: "this playback link's token is malformed" };
  }
  if (!NAME.test(name || "") && !RECORDING.test(name || "")) {
    return { error: "this playback link names no valid stream" };
  }
  return { name, token: token === undefined ? null : token };
}

// Plays what the name field holds (see parseInput).
function playInput(text) {
  const p = parseInput(text);
  if (p.error) {
    // Nothing is requested; what plays (if anything) goes on playing.
    fail(p.error);
    return;
  }
  if (p.token) signed = { token: p.token, name: p.name };
  play(p.name);
}

// The token prefix for `name`: the signed link's, for its stream only.
function prefixFor(name) {
  if (!signed) return "";
  if (signed.name === null) signed.name = name; // the page's own token
  return signed.name === name ? "/t/" + signed.token : "";
}

// The live stream a name belongs to (a recording's stream, or itself).
function streamOf(name) {
  const m = RECORDING.exec(name);
  return m ? m[1] : name;
}

async function play(name) {
  if (!NAME.test(name) && !RECORDING.test(name)) {
    fail("stream names are 1-64 characters of A-Z a-z 0-9 _ -");
    return;
  }
  const prefix = prefixFor(name);
  if (name === state.name && prefix === state.prefix && state.hls) return;
  const seq = ++state.seq;
  stop();
  state.name = name;
  state.prefix = prefix;
  state.url = null; // until the probe below finds what to play
  state.failure = null;
  status("");
  showViewers();
  $("name").value = name;
  // The address bar links to what plays: /#golive, or /t/<token>/#golive
  // (the edge serves this page there too).
  history.replaceState(null, "", prefix + "/#" + name);
  for (const b of document.querySelectorAll("#streams button, #recordings button")) {
    b.setAttribute("aria-pressed", String(b.dataset.name === name));
  }
  if (streamOf(name) !== (state.recordingsOf || null)) loadRecordings(streamOf(name));
  const base = prefix + "/" + name + "/";
  const master = base + "master.m3u8";
  const found = await probe(master);
  if (seq !== state.seq) return; // another choice meanwhile
  if (found === 403) {
    fail(NEEDS_LINK);
    return;
  }
  const url = found >= 200 && found < 300 ? master : base + "index.m3u8";
  state.url = url;
  if (!window.Hls || !Hls.isSupported()) {
    // Safari and iOS play HLS natively (no rendition picker, no latency).
    video.src = url;
    video.play().catch(() => seq === state.seq && !state.failure && status("press play"));
    return;
  }
  const ll = await offersParts(url);
  if (seq !== state.seq) return;
  state.ll = ll;
  const hls = new Hls(ll ? HLS_CONFIG_LL : HLS_CONFIG);
  state.hls = hls;
  let retries = 0;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    retries = 0;
    const sel = $("level");
    sel.replaceChildren(new Option("auto", "-1"));
    hls.levels.forEach((l, i) => sel.append(new Option(describe(l, i), String(i))));
    sel.value = "-1";
    // Refused (autoplay) or aborted (stopped meanwhile: a 403, another
    // stream): only the former is worth a word.
    video.play().catch(() => state.hls === hls && !state.failure && status("press play"));
  });
  hls.on(Hls.Events.FRAG_LOADED, () => {
    retries = 0;
  });
  hls.on(Hls.Events.ERROR, (_e, d) => {
    const what = d.type + ":" + d.details;
    // 403: no, an expired or a bad token. Retrying cannot help.
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && d.response && d.response.code === 403) {
      state.fatal.push(what + " 403");
      stop();
      fail(NEEDS_LINK);
      return;
    }
    if (!d.fatal) {
      state.errors.push(what);
      return;
    }
    state.fatal.push(what);
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && retries++ < 10) {
      status("stream unavailable, retrying… (" + d.details + ")");
      // a playlist that could not be loaded at all (the stream not live
      // yet, an edge restarting) is asked for again; else loading resumes
      setTimeout(() => {
        if (state.hls !== hls) return;
        if (d.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR) hls.loadSource(url);
        else hls.startLoad();
      }, 1000);
    } else if (d.type === Hls.ErrorTypes.MEDIA_ERROR && retries++ < 10) {
      hls.recoverMediaError();
    } else {
      stop();
      fail("playback failed: " + what);
    }
  });
  hls.loadSource(url);
  hls.attachMedia(video);
}

// Whether the media playlist at `url` (the first rendition's, for a
// master) offers LL-HLS parts.
async function offersParts(url) {
  try {
    let r = await fetch(url, { cache: "no-store" });
    if (!r.ok) return false;
    let text = await r.text();
    if (text.includes("#EXT-X-STREAM-INF")) {
      const variant = text.split("\n").find((l) => l.trim() && !l.startsWith("#"));
      if (!variant) return false;
      r = await fetch(new URL(variant.trim(), new URL(url, location.href)), { cache: "no-store" });
      if (!r.ok) return false;
      text = await r.text();
    }
    return text.includes("#EXT-X-PART-INF");
  } catch (e) {
    return false;
  }
}

function stop() {
  if (state.hls) state.hls.destroy();
  state.hls = null;
  state.started = false;
  video.removeAttribute("src");
  video.load();
}

// "720p 2628 kbit/s": from the master playlist, else (one rendition, no
// master) from the picture and the bytes loaded so far.
function describe(l, i) {
  const height = l.height || (i === undefined ? video.videoHeight : 0);
  const kbps = Math.round((l.bitrate || l.realBitrate || 0) / 1000);
  const text = (height ? height + "p " : "") + (kbps ? kbps + " kbit/s" : "");
  return text.trim() || "rendition " + ((i || 0) + 1);
}

function bufferAhead() {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i)) {
      return b.end(i) - video.currentTime;
    }
  }
  return 0;
}

// The seek bar: the seekable range (the DVR window of a live stream, the
// whole of a recording), where playback is, how far behind live.
function seekRange() {
  const s = video.seekable;
  if (!s || !s.length) return null;
  const start = s.start(0);
  const live = state.hls && Number.isFinite(state.hls.liveSyncPosition) ? state.hls.liveSyncPosition : null;
  const end = live !== null ? Math.min(live, s.end(s.length - 1)) : s.end(s.length - 1);
  return end - start >= MIN_WINDOW_S ? { start, end } : null;
}

function clock(secs) {
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(s % 60).padStart(2, "0");
}

let seeking = false; // the viewer is dragging the seek bar
function showSeek() {
  const r = seekRange();
  const bar = $("dvr");
  const recording = RECORDING.test(state.name || "");
  if (!r) {
    bar.hidden = true;
    state.dvr = null;
    return;
  }
  bar.hidden = false;
  const seek = $("seek");
  seek.min = String(r.start);
  seek.max = String(r.end);
  if (!seeking) seek.value = String(video.currentTime);
  const behind = Math.max(0, r.end - video.currentTime);
  state.dvr = { start: r.start, end: r.end, behind };
  $("behind").textContent = recording
    ? clock(video.currentTime - r.start) + " / " + clock(r.end - r.start)
    : behind < 4
      ? "live"
      : "−" + clock(behind) + " (window " + clock(r.end - r.start) + ")";
  $("live").hidden = !recording && behind < 4;
}

$("seek").addEventListener("input", () => {
  seeking = true;
});
$("seek").addEventListener("change", (e) => {
  seeking = false;
  video.currentTime = Number(e.target.value);
});
// Back to the live edge (from a recording: its live stream).
$("live").addEventListener("click", () => {
  if (RECORDING.test(state.name || "")) {
    play(streamOf(state.name));
    return;
  }
  const live = state.hls && state.hls.liveSyncPosition;
  const s = video.seekable;
  if (Number.isFinite(live)) video.currentTime = live;
  else if (s && s.length) video.currentTime = s.end(s.length - 1) - 2.5;
});

// The finished recordings of `stream`, under the player.
async function loadRecordings(stream) {
  state.recordingsOf = stream;
  let list = [];
  try {
    const r = await fetch("/recordings.json?stream=" + encodeURIComponent(stream), { cache: "no-store" });
    const body = r.ok ? await r.json() : null;
    if (body && Array.isArray(body.recordings)) {
      list = body.recordings.filter(
        (x) => x && Number.isSafeInteger(x.start) && Number.isFinite(x.duration) && typeof x.url === "string",
      );
    }
  } catch (e) {
    list = [];
  }
  if (state.recordingsOf !== stream) return; // another stream meanwhile
  state.recordings = list;
  const ul = $("recordings");
  ul.replaceChildren();
  $("recordings-note").textContent = list.length ? "" : "none";
  for (const x of list) {
    const name = stream + "~" + x.start;
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.name = name;
    b.textContent = new Date(x.start).toLocaleString() + " · " + clock(x.duration);
    b.setAttribute("aria-pressed", String(name === state.name));
    b.addEventListener("click", () => play(name));
    li.append(b);
    ul.append(li);
  }
}

function readout() {
  showSeek();
  const hls = state.hls;
  const lat = hls && Number.isFinite(hls.latency) && hls.latency > 0 ? hls.latency : null;
  $("latency").textContent = lat === null ? "–" : lat.toFixed(1) + " s";
  const level = hls && hls.levels[hls.currentLevel];
  $("rendition").textContent = level
    ? describe(level) + (hls.autoLevelEnabled ? " (auto)" : "")
    : "–";
  $("buffer").textContent = bufferAhead().toFixed(1) + " s";
  $("stalls").textContent = String(state.stalls);
}

video.addEventListener("playing", () => {
  state.started = true;
});
video.addEventListener("waiting", () => {
  if (state.started) state.stalls++;
});
// A picked rendition (or auto, -1) applies from the next fragment loaded:
// no buffer flush, so no stall; it shows within the ~2.5 s buffered.
$("level").addEventListener("change", (e) => {
  if (state.hls) state.hls.loadLevel = Number(e.target.value);
});
$("pick").addEventListener("submit", (e) => {
  e.preventDefault();
  playInput($("name").value.trim());
});

// The name from the page's #hash (a link to a stream). A hash that is not
// valid percent-encoding (a bad link) is ignored: decodeURIComponent throws
// on it, which would stop this whole script.
function nameFromHash(hash) {
  try {
    return decodeURIComponent(hash.slice(1));
  } catch (e) {
    return "";
  }
}

// The list, now and then every LIST_EVERY_MS while the page is visible:
// one request at a time (the next is scheduled when one ends); a hidden
// page stops asking and asks again as soon as it shows.
let listBusy = false;
let listTimer = 0;
async function refreshList() {
  clearTimeout(listTimer);
  listTimer = 0;
  if (listBusy || document.hidden) return;
  listBusy = true;
  try {
    await loadList();
    if (state.name) await loadRecordings(streamOf(state.name));
  } finally {
    listBusy = false;
  }
  if (!document.hidden) listTimer = setTimeout(refreshList, LIST_EVERY_MS);
}
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !listTimer) refreshList();
});

// The page opened at /t/<token>/ (a signed playback link): its token plays
// the stream named by the hash (or, without one, the first one played).
// A malformed one plays nothing (and the list picks nothing either).
const pagePath = /^\/t\/([^/]+)\/$/.exec(location.pathname);
if (pagePath && TOKEN.test(pagePath[1])) {
  signed = { token: pagePath[1], name: null };
} else if (pagePath) {
  fail("this playback link's token is malformed");
}
const fromHash = nameFromHash(location.hash);
if (!state.failure && (NAME.test(fromHash) || RECORDING.test(fromHash))) play(fromHash);
refreshList();
setInterval(readout, 500);
