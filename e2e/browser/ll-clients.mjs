// N LL-HLS viewers without a browser, for counting requests: each does what
// hls.js does in low-latency mode at the live edge — a blocking playlist
// reload for the next part (_HLS_msn/_HLS_part), then that part — for
// `seconds`. Prints one JSON report (requests made, parts fetched, errors).
//
//   node ll-clients.mjs '{"src": "<playlist URL>", "viewers": 50, "seconds": 30}'
const { src, viewers = 50, seconds = 30 } = JSON.parse(process.argv[2] || "{}");
const base = src.slice(0, src.lastIndexOf("/") + 1);
const end = Date.now() + seconds * 1000;

// The segment in progress: its MSN and the URIs of its parts so far.
function parse(text) {
  let msn = 0;
  let current = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) msn = Number(line.slice(22));
    else if (line.startsWith("#EXT-X-PART:")) current.push(line.match(/URI="([^"]+)"/)[1]);
    else if (line && !line.startsWith("#")) {
      msn++;
      current = [];
    }
  }
  return { msn, current };
}

const totals = { playlist_requests: 0, part_requests: 0, part_bytes: 0, errors: 0, parts_seen: new Set() };

async function viewer() {
  let pl = parse(await (await fetch(src)).text());
  totals.playlist_requests++;
  let have = pl.current.length;
  while (Date.now() < end) {
    const url = `${src}?_HLS_msn=${pl.msn}&_HLS_part=${have}`;
    let next;
    try {
      const r = await fetch(url);
      totals.playlist_requests++;
      if (r.status !== 200) {
        totals.errors++;
        continue;
      }
      next = parse(await r.text());
    } catch {
      totals.errors++;
      continue;
    }
    const fresh = next.msn === pl.msn ? next.current.slice(have) : next.current;
    for (const uri of fresh) {
      const r = await fetch(base + uri);
      const b = await r.arrayBuffer();
      totals.part_requests++;
      totals.part_bytes += b.byteLength;
      if (r.status !== 200 || b.byteLength === 0) totals.errors++;
      totals.parts_seen.add(uri);
    }
    pl = next;
    have = next.current.length;
  }
}

await Promise.all(Array.from({ length: viewers }, viewer));
const out = { ...totals, parts_seen: totals.parts_seen.size, viewers, seconds };
process.stdout.write(JSON.stringify(out) + "\n");
