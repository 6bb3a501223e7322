// Draws the insights charts with Chart.js from the JSON each canvas carries in its
// data-chart-spec attribute; each chart's numbers are also in the table below it.
(function () {
  "use strict";

  if (!window.Chart) { return; }

  // Readable on light and dark backgrounds; states keep their badge colours' hues.
  var COLOURS = {
    pending: "#b58900", verified: "#2e8b57", denied: "#c0392b", cancelled: "#7f8c8d",
    expired: "#8e44ad", sent: "#2e8b57", failed: "#c0392b", queued: "#b58900",
    sending: "#2980b9", median: "#2980b9", p90: "#d35400", answered: "#2980b9",
    requests: "#2980b9"
  };

  var text = getComputedStyle(document.body).color;
  Chart.defaults.color = text;
  Chart.defaults.animation = false;

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = JSON.parse(canvas.getAttribute("data-chart-spec"));
    var unit = spec.unit ? " " + spec.unit : "";
    // Counts are whole numbers; seconds may have a decimal.
    var ticks = { precision: spec.unit ? 1 : 0 };
    new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (set) {
          var colour = COLOURS[set.key] || "#2980b9";
          return {
            label: set.label, data: set.data, backgroundColor: colour, borderColor: colour,
            spanGaps: true
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: spec.horizontal ? "y" : "x",
        scales: {
          x: { stacked: !!spec.stacked, ticks: ticks },
          y: { stacked: !!spec.stacked, beginAtZero: true, ticks: ticks }
        },
        plugins: {
          legend: { display: spec.datasets.length > 1 },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + item.formattedValue + unit;
              }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  });
})();
