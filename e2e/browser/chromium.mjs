// What the page drivers (play.mjs, page-state.mjs) share: Debian's
// chromium through playwright-core, headless, with the flags they all run
// it with, and the page's errors and requests recorded into their report.
import { chromium } from "playwright-core";

// A fresh profile in `userDataDir`; `executablePath`: /usr/bin/chromium.
export function launch(userDataDir, executablePath) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
    viewport: { width: 1000, height: 760 },
  });
}

// Console errors, uncaught page errors and every requested URL, into
// `out.console_errors`, `out.page_errors`, `out.requests`.
export function record(page, out) {
  page.on("console", (m) => m.type() === "error" && out.console_errors.push(m.text()));
  page.on("pageerror", (e) => out.page_errors.push(String(e)));
  page.on("request", (r) => out.requests.push(r.url()));
}
