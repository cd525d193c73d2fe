// What the browser tests share: Chromium launched as this machine allows
// (Debian's, headless, no background networking), checks that print a line
// each and stop at the first failure, and a watch on every page for console
// errors and failed requests.
import { chromium } from "playwright-core";
import fs from "node:fs";

export function check(ok, what) {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

export function screenshots() {
  const dir = process.env.SCREENSHOTS;
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// Every page opened through `watch` must log no console error and fail no request.
export const problems = [];
export function watch(page, who) {
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${who}: console error on ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${who}: script error on ${page.url()}: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`${who}: request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`${who}: ${r.status()} for ${r.url()}`);
  });
}
export function noProblems(what) {
  check(problems.length === 0, `${what}: no console error and no failed request${problems.length ? "\n  " + problems.join("\n  ") : ""}`);
}

export async function noHorizontalScroll(page, what) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= width, `${what}: no horizontal scroll at ${width} px (page is ${scroll} px wide)`);
}
