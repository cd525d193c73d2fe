// An explorer in a real browser: on the baseball example, a person types part
// of a player's name, picks him among the suggestions, writes a period and
// sees his seasons drawn — and the chart's points must be the values `sluice
// query` reads. Started by crates/cli/tests/it/dashboard.rs with:
//
//   SLUICE_URL   the server (open: no key, loopback)
//   SCREENSHOTS  the folder the screenshots go to
//   TYPED        what to type (part of a name)
//   ENTITY       the player id to pick among the suggestions
//   FROM, TO     the period
//   EXPECTED     JSON: [[season, hr], ...] as `sluice query` gave them
import path from "node:path";
import { check, launch, noHorizontalScroll, noProblems, screenshots, watch } from "./lib.mjs";

const base = process.env.SLUICE_URL;
const shots = screenshots();
const expected = JSON.parse(process.env.EXPECTED);
const browser = await launch();

for (const [who, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 375, height: 812 }]]) {
  const context = await browser.newContext({ viewport, isMobile: who === "phone" });
  const page = await context.newPage();
  watch(page, who);
  await page.goto(`${base}/explore`);
  await Promise.all([page.waitForURL(/\/explore\/batters$/), page.click("a[href='/explore/batters']")]);
  // A period, then a name: suggestions come as one types, their links
  // carrying the period.
  await page.fill("#from", process.env.FROM);
  await page.fill("#to", process.env.TO);
  await page.fill("#q", process.env.TYPED);
  const pick = page.locator(`#suggestions a[data-entity='${process.env.ENTITY}'][href*='to=${process.env.TO}']`);
  await pick.waitFor({ timeout: 10_000 });
  const names = await page.locator("#suggestions a").allTextContents();
  check(names.length > 0, `${who}: typing "${process.env.TYPED}" suggests ${names.length} players (${names.slice(0, 4).join("; ")})`);
  await Promise.all([page.waitForURL(/entity=/), pick.click()]);
  check(page.url().includes(`from=${process.env.FROM}`) && page.url().includes(`to=${process.env.TO}`),
    `${who}: the suggestion keeps the period (${page.url()})`);
  await page.waitForSelector(".chart[data-points] canvas", { timeout: 10_000 });
  const charts = JSON.parse(await page.locator("script#charts").textContent());
  const hr = charts[0];
  const drawn = hr.x.map((x, i) => [x, hr.series[0].values[i]]);
  check(JSON.stringify(drawn) === JSON.stringify(expected),
    `${who}: the home-run chart's points are sluice query's: ${JSON.stringify(drawn)}`);
  const points = await page.locator(".chart[data-chart='0']").getAttribute("data-points");
  check(Number(points) === expected.length, `${who}: uPlot drew ${points} points`);
  const online = await page.locator("section.card table th").allTextContents();
  check(online.includes("hr"), `${who}: the player's online record is shown (${online.length} features)`);
  if (who === "phone") {
    await noHorizontalScroll(page, "the explorer on a phone");
  }
  await page.screenshot({ path: path.join(shots, `explorer-${who}.png`), fullPage: true });
  await context.close();
}
noProblems("explorer pages");
await browser.close();
console.log("all explorer checks passed");
