// The dashboard in a real browser: Debian's Chromium, driven by playwright-core.
// Started by crates/cli/tests/it/dashboard.rs against `sluice serve` on the
// flights example, with these variables:
//
//   SLUICE_URL        the server (http://127.0.0.1:PORT)
//   OPERATOR_KEY      a key with the operator role
//   READER_KEY        a key with the reader role
//   SCREENSHOTS       the folder the screenshots go to
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   ASSETS            the project's assets, comma-separated, in dependency order
//
// It prints one line per check and exits 1 at the first that fails.
import path from "node:path";
import { check, launch, noHorizontalScroll, noProblems, screenshots, watch } from "./lib.mjs";

const base = process.env.SLUICE_URL;
const shots = screenshots();
const assets = (process.env.ASSETS || "").split(",").filter(Boolean);
const browser = await launch();

async function signIn(page, key) {
  await page.goto(`${base}/`);
  check(page.url().startsWith(`${base}/sign-in`), "a page without a session sends to the sign-in page");
  await page.fill("#key", key);
  await Promise.all([page.waitForURL(`${base}/`), page.click("form.signin button[type=submit]")]);
}

// ---- An operator on a desktop ----
const desk = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await desk.newPage();
watch(page, "operator");
await signIn(page, process.env.OPERATOR_KEY);
const nodes = await page.locator("svg.graph a[data-asset]").count();
check(nodes === assets.length, `the graph draws every asset (${nodes} of ${assets.length})`);
const buttons = await page.locator("button.action").allTextContents();
check(buttons.includes("Update data"), `the overview has the project's actions (${buttons.join(", ")})`);

// Pressing "Update data" starts a run; its page follows it to the end.
await Promise.all([page.waitForURL(/\/runs\/\d+$/), page.click("button.action[data-action=update_data]")]);
const runUrl = page.url();
check(/\/runs\/\d+$/.test(runUrl), `the button opened its run (${runUrl})`);
await page.waitForFunction(
  () => ["succeeded", "failed", "cancelled"].includes(document.querySelector("#live")?.dataset.state),
  null,
  { timeout: 600_000, polling: 500 },
);
const ended = await page.locator("#live").getAttribute("data-state");
check(ended === "succeeded", `the run's page shows it finish: ${ended}`);
const attempts = await page.locator("#live table tbody tr").count();
check(attempts > 0, `the run's page lists its assets (${attempts})`);
await page.screenshot({ path: path.join(shots, "run.png"), fullPage: true });
await page.goto(`${base}/`);
await page.screenshot({ path: path.join(shots, "overview.png"), fullPage: true });
// A backtest from the model page: four weeks of December, scored by the
// serving version.
await page.goto(`${base}/models/late`);
await page.fill("form[action$='/backtest'] input[name=from]", "2013-12-01");
await page.fill("form[action$='/backtest'] input[name=to]", "2013-12-29");
await Promise.all([page.waitForURL(/\/backtest$/), page.click("form[action$='/backtest'] button[type=submit]")]);
const periods = await page.locator("table.backtest tbody tr").count();
check(periods === 5, `the backtest shows 4 weekly periods and their total (${periods} rows)`);
await page.screenshot({ path: path.join(shots, "model.png"), fullPage: true });

// Every page loads.
for (const a of assets) {
  const r = await page.goto(`${base}/assets/${encodeURIComponent(a)}`);
  check(r.status() === 200, `asset page ${a}: ${r.status()}`);
}
await page.goto(`${base}/assets/flights`);
await page.waitForSelector(".chart[data-points] canvas", { timeout: 10_000 });
check(true, "the asset page of a source with a contract draws its quality chart");
await page.screenshot({ path: path.join(shots, "asset.png"), fullPage: true });
for (const p of ["/", "/runs", "/runs?state=succeeded", "/runs?asset=flights", new URL(runUrl).pathname, "/models", "/models/late"]) {
  const r = await page.goto(`${base}${p}`);
  check(r.status() === 200, `page ${p}: ${r.status()}`);
}
noProblems("operator pages");

// A POST without the session's token is refused, and starts nothing.
const before = await page.goto(`${base}/runs`).then(() => page.locator("tbody tr").count());
const forged = await desk.request.post(`${base}/actions/update_data`, { form: {}, maxRedirects: 0 });
check(forged.status() === 403, `a forged POST without the CSRF token is refused (${forged.status()})`);
const wrong = await desk.request.post(`${base}/actions/update_data`, { form: { csrf: "0".repeat(64) }, maxRedirects: 0 });
check(wrong.status() === 403, `a POST with another token is refused (${wrong.status()})`);
const after = await page.goto(`${base}/runs`).then(() => page.locator("tbody tr").count());
check(after === before, `no run was started by them (${before} runs before, ${after} after)`);
await desk.close();

// ---- A reader on a phone ----
const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
const mobile = await phone.newPage();
watch(mobile, "reader");
await signIn(mobile, process.env.READER_KEY);
await noHorizontalScroll(mobile, "overview");
await mobile.screenshot({ path: path.join(shots, "phone.png"), fullPage: true });
check(await mobile.locator("button.action").count() === 0, "a reader sees no action button");
check(await mobile.locator("a[href='/runs']").count() === 0, "a reader sees no link to the runs");
for (const a of assets.slice(0, 6)) {
  await mobile.goto(`${base}/assets/${encodeURIComponent(a)}`);
  await noHorizontalScroll(mobile, `asset ${a}`);
}
check(await mobile.locator("form[action^='/runs/']").count() === 0, "a reader sees no run button on an asset page");
noProblems("reader pages");
// The runs are not a reader's: the page says so (403), the POST is refused.
const runs = await phone.request.get(`${base}/runs`);
check(runs.status() === 403, `a reader's GET /runs is refused (${runs.status()})`);
const tokenless = await phone.request.post(`${base}/actions/update_data`, { form: {}, maxRedirects: 0 });
check(tokenless.status() === 403, `a reader's POST of an action is refused (${tokenless.status()})`);
await phone.close();

await browser.close();
console.log("all dashboard checks passed");
