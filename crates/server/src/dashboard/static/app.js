// sluice's dashboard: draws the charts whose data a page carries in its
// <script type="application/json" id="charts"> island, with uPlot. Everything
// else is HTML from the server (and htmx for the live parts).
"use strict";

const COLOURS = ["#1f5f8b", "#b3261e", "#1e7d45", "#8a5a00", "#6b4fa0", "#0e7c86"];

function drawCharts() {
  const island = document.getElementById("charts");
  if (!island || typeof uPlot === "undefined") return;
  const charts = JSON.parse(island.textContent);
  for (const el of document.querySelectorAll(".chart[data-chart]")) {
    const c = charts[Number(el.dataset.chart)];
    if (!c || c.x.length === 0) continue;
    const series = [{ label: c.x_label }].concat(c.series.map((s, i) => ({
      label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
      points: { show: c.x.length < 60 },
    })));
    const data = [c.x].concat(c.series.map((s) => s.values));
    const size = () => ({ width: Math.max(240, el.clientWidth), height: 220 });
    const plot = new uPlot({
      ...size(), series,
      scales: { x: { time: c.time } },
      axes: [{ values: c.time ? undefined : (u, ticks) => ticks.map((t) => String(Math.round(t))) }, {}],
    }, data, el);
    el.dataset.points = String(c.x.length);
    new ResizeObserver(() => plot.setSize(size())).observe(el);
  }
}

document.addEventListener("DOMContentLoaded", drawCharts);
