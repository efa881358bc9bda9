// Monthly usage chart (uPlot): a bar for inference and one for embedding in each month, read
// from the page's JSON data block, so no inline script is needed. Bars, because a single month
// drawn as a line is a lone dot; the legend names the two series only (a live legend adds an
// empty "Value" cell for the months axis). The page says "No usage yet" instead of an empty chart.
(function () {
  "use strict";
  var SERIES = [["Inference", "#0b5cad", -1], ["Embedding", "#1a7f37", 1]];

  function draw() {
    var holder = document.getElementById("usage-chart");
    var source = document.getElementById("usage-data");
    if (!holder || !source || typeof uPlot === "undefined") { return; }
    var months = JSON.parse(source.textContent).slice().sort(function (a, b) {
      return a.period < b.period ? -1 : 1;
    });
    if (!months.length) { return; }
    var xs = months.map(function (m, i) { return i; });
    var data = [xs, months.map(function (m) { return m.inference_tokens; }),
                months.map(function (m) { return m.training_tokens; })];
    var options = {
      width: Math.max(320, holder.clientWidth - 16), height: 240,
      legend: { live: false },
      cursor: { show: false },
      scales: {
        // Fixed: half a month either side (uPlot widens a single point's range to 0..100).
        x: { time: false, auto: false, range: [-0.5, months.length - 0.5] },
        y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } }
      },
      axes: [{ splits: function () { return xs; },
               values: function (u, ticks) { return ticks.map(function (t) { return months[t] ? months[t].period : ""; }); } },
             { size: 84, values: function (u, ticks) { return ticks.map(function (t) { return t.toLocaleString(); }); } }],
      series: [{}].concat(SERIES.map(function (s) {
        return { label: s[0], stroke: s[1], fill: s[1], width: 1,
                 paths: uPlot.paths.bars({ size: [0.35, 64], align: s[2] }), points: { show: false } };
      }))
    };
    new uPlot(options, data, holder);
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
