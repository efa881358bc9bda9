// Monthly usage chart (uPlot): reads the page's JSON data block, so no inline script is needed.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("usage-chart");
    var source = document.getElementById("usage-data");
    if (!holder || !source || typeof uPlot === "undefined") { return; }
    var months = JSON.parse(source.textContent).slice().sort(function (a, b) {
      return a.period < b.period ? -1 : 1;
    });
    var xs = months.map(function (m, i) { return i; });
    var data = [xs, months.map(function (m) { return m.inference_tokens; }),
                months.map(function (m) { return m.training_tokens; })];
    var options = {
      width: Math.max(320, holder.clientWidth - 16), height: 240,
      scales: { x: { time: false } },
      axes: [{ values: function (u, ticks) { return ticks.map(function (t) { return months[t] ? months[t].period : ""; }); } },
             { size: 84, values: function (u, ticks) { return ticks.map(function (t) { return t.toLocaleString(); }); } }],
      series: [{}, { label: "Inference", stroke: "#0b5cad", width: 2, points: { show: true } },
               { label: "Embedding", stroke: "#1a7f37", width: 2, points: { show: true } }]
    };
    new uPlot(options, data, holder);
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
