// RTMP Live player page, served by the edge at `/`. Plain JS over hls.js
// (installed from npm at build time, served as /hls.min.js).
//
// - Lists live stream names from /streams.json (names only) when the edge
//   offers it; a name can always be typed (default `golive`), or given as
//   the page's #hash.
// - Plays /<name>/master.m3u8 (ABR) when it exists, else /<name>/index.m3u8.
// - LL-HLS when the playlist offers it (parts, blocking reloads: the
//   origin's LL component): hls.js's own low-latency mode, 1.5 s behind the
//   newest part. Otherwise settings tuned for plain 2 s segments.
// - State for tests and debugging: window.rtmpLive.
"use strict";

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
// Plain playlists: hold 2.5 s behind the live edge, catch up at up to 1.1x.
const HLS_CONFIG = {
  lowLatencyMode: true,
  liveSyncDuration: 2.5,
  liveMaxLatencyDuration: 8,
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
});

function status(text) {
  $("status").textContent = text || "";
}

async function loadList() {
  let names = null;
  try {
    const r = await fetch("/streams.json", { cache: "no-store" });
    const body = r.ok ? await r.json() : null;
    if (body && Array.isArray(body.streams)) {
      names = body.streams.filter((n) => typeof n === "string" && NAME.test(n));
    }
  } catch (e) {
    names = null;
  }
  state.list = names;
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
    b.addEventListener("click", () => play(n));
    li.append(b);
    ul.append(li);
  }
  // Nothing chosen yet: play golive if it is live, else the first stream.
  if (!state.name && names.length) {
    play(names.includes("golive") ? "golive" : names[0]);
  }
}

async function exists(url) {
  try {
    const r = await fetch(url, { cache: "no-store" });
    await r.text();
    return r.ok;
  } catch (e) {
    return false;
  }
}

async function play(name) {
  if (!NAME.test(name)) {
    status("stream names are 1-64 characters of A-Z a-z 0-9 _ -");
    return;
  }
  if (name === state.name && state.hls) return;
  const seq = ++state.seq;
  stop();
  state.name = name;
  $("name").value = name;
  history.replaceState(null, "", "#" + name);
  for (const b of document.querySelectorAll("#streams button")) {
    b.setAttribute("aria-pressed", String(b.dataset.name === name));
  }
  const master = "/" + name + "/master.m3u8";
  const url = (await exists(master)) ? master : "/" + name + "/index.m3u8";
  if (seq !== state.seq) return; // another choice meanwhile
  state.url = url;
  status("");
  if (!window.Hls || !Hls.isSupported()) {
    // Safari and iOS play HLS natively (no rendition picker, no latency).
    video.src = url;
    video.play().catch(() => status("press play"));
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
    video.play().catch(() => status("press play"));
  });
  hls.on(Hls.Events.FRAG_LOADED, () => {
    retries = 0;
  });
  hls.on(Hls.Events.ERROR, (_e, d) => {
    const what = d.type + ":" + d.details;
    if (!d.fatal) {
      state.errors.push(what);
      return;
    }
    state.fatal.push(what);
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && retries++ < 10) {
      status("stream unavailable, retrying… (" + d.details + ")");
      setTimeout(() => state.hls === hls && hls.startLoad(), 1000);
    } else if (d.type === Hls.ErrorTypes.MEDIA_ERROR && retries++ < 10) {
      hls.recoverMediaError();
    } else {
      status("playback failed: " + what);
      stop();
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

function readout() {
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
  play($("name").value.trim());
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

const fromHash = nameFromHash(location.hash);
if (NAME.test(fromHash)) play(fromHash);
loadList();
setInterval(loadList, 5000);
setInterval(readout, 500);
