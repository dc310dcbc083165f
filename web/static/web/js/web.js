// GridProof web app: charts from JSON the page embeds (json_script), redrawn after htmx
// swaps. Static file only, no inline script, so a Content-Security-Policy can forbid them.
"use strict";
(function () {
  const palette = ["#0b5d3b", "#0a4fa3", "#c75a00", "#6b3fa0", "#a3001b", "#2f7f8f", "#7a6a00", "#4f5b62"];
  const charts = new WeakMap();

  function numberFormat(locale, unit) {
    const fmt = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
    return (value) => fmt.format(value) + (unit ? " " + unit : "");
  }

  function draw(canvas) {
    if (typeof window.Chart === "undefined") return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const locale = document.documentElement.lang || "en";
    const format = numberFormat(locale, spec.unit);
    const old = charts.get(canvas);
    if (old) old.destroy();
    const stacked = spec.stacked !== false && spec.type === "bar";
    const chart = new window.Chart(canvas, {
      type: spec.type || "bar",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map((d, i) => ({
          label: d.label, data: d.data, borderWidth: 1,
          backgroundColor: spec.type === "doughnut" ? palette : palette[i % palette.length],
          borderColor: spec.type === "doughnut" ? "#fff" : palette[i % palette.length],
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, locale: locale,
        plugins: {
          legend: { display: spec.datasets.length > 1 || spec.type === "doughnut" },
          tooltip: { callbacks: { label: (ctx) => (ctx.dataset.label ? ctx.dataset.label + ": " : "") + format(ctx.parsed.y !== undefined ? ctx.parsed.y : ctx.parsed) } },
        },
        scales: spec.type === "doughnut" ? {} : {
          x: { stacked: stacked },
          y: { stacked: stacked, beginAtZero: true, ticks: { callback: (v) => format(v) } },
        },
      },
    });
    charts.set(canvas, chart);
    canvas.dataset.drawn = "yes";
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  // Forms, or one of their submit buttons, that ask first (data-confirm): a native
  // dialog, no inline handler.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const button = event.submitter;
    const question = (button && button.dataset && button.dataset.confirm) || (form.dataset && form.dataset.confirm);
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", (event) => drawAll(event.target));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => drawAll());
  else drawAll();
})();
