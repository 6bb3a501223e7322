// Insights: counts days in the reader's own time zone, and draws the charts with Chart.js
// from the JSON each canvas carries in its data-chart-spec attribute (Show data, below each
// chart, has the same numbers).
(function () {
  "use strict";

  // The server counts days in the zone the tz cookie names. Tell it the browser's; if this
  // page was counted in another zone and the address does not ask for one, count it again.
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  var picker = document.querySelector("[data-zone]");
  if (zone) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    var params = new URLSearchParams(location.search);
    if (picker && picker.getAttribute("data-zone") !== zone && !params.has("tz")) {
      params.set("tz", zone);
      location.replace(location.pathname + "?" + params.toString());
      return;
    }
  }

  if (!window.Chart) { return; }

  // Readable on light and dark backgrounds; states keep their badge colours' hues.
  var COLOURS = {
    pending: "#b58900", verified: "#2e8b57", denied: "#c0392b", cancelled: "#7f8c8d",
    expired: "#8e44ad", sent: "#2e8b57", failed: "#c0392b", queued: "#b58900",
    sending: "#2980b9", median: "#2980b9", p90: "#d35400", answered: "#2980b9",
    requests: "#2980b9"
  };

  // As the page writes them (pages/formatting.py duration_words): "45 s", "3 min 17 s".
  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return "–"; }
    if (seconds < 10 && Math.round(seconds * 10) % 10 !== 0) { return seconds.toFixed(1) + " s"; }
    var whole = Math.round(seconds);
    if (whole < 60) { return whole + " s"; }
    if (whole < 3600) {
      var rest = whole % 60;
      return Math.floor(whole / 60) + " min" + (rest ? " " + rest + " s" : "");
    }
    var minutes = Math.round(whole / 60);
    return Math.floor(minutes / 60) + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
  }

  // Days are calendar days (YYYY-MM-DD), written as the reader writes dates: "7 Dec".
  var dayFormat = new Intl.DateTimeFormat(undefined, {day: "numeric", month: "short", timeZone: "UTC"});
  function dayLabel(iso) { return dayFormat.format(new Date(iso + "T00:00:00Z")); }

  var text = getComputedStyle(document.body).color;
  Chart.defaults.color = text;
  Chart.defaults.animation = false;

  // Durations step by amounts a clock reads (10 s, 30 s, 1 min...), about five to an axis.
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  function durationStep(spec) {
    var most = 0;
    spec.datasets.forEach(function (set) {
      set.data.forEach(function (value) { if (value > most) { most = value; } });
    });
    for (var n = 0; n < STEPS.length; n++) { if (most / STEPS[n] <= 6) { return STEPS[n]; } }
    return STEPS[STEPS.length - 1];
  }

  function axis(title, stacked, valueAxis, spec) {
    var options = {stacked: stacked, title: {display: true, text: title}, ticks: {}};
    if (valueAxis) {
      options.beginAtZero = true;
      options.ticks.precision = 0;
      if (spec.unit === "duration") {
        options.ticks.stepSize = durationStep(spec);
        options.ticks.callback = function (value) { return duration(value); };
      }
    } else if (spec.dates) {
      options.ticks.callback = function (value) { return dayLabel(spec.labels[value]); };
      options.ticks.autoSkip = true;
      options.ticks.maxRotation = 0;
    }
    return options;
  }

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = JSON.parse(canvas.getAttribute("data-chart-spec"));
    var horizontal = !!spec.horizontal;
    var category = spec.x, value = spec.y;
    if (horizontal) { category = spec.y; value = spec.x; }
    var scales = {};
    scales[horizontal ? "y" : "x"] = axis(category, !!spec.stacked, false, spec);
    scales[horizontal ? "x" : "y"] = axis(value, !!spec.stacked, true, spec);
    new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (set) {
          var colour = COLOURS[set.key] || "#2980b9";
          // A day with no answers is a gap in the line, not a slope to the next day.
          return {
            label: set.label, data: set.data, backgroundColor: colour, borderColor: colour,
            spanGaps: false, pointRadius: spec.type === "line" ? 2 : undefined
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        scales: scales,
        plugins: {
          legend: { display: spec.datasets.length > 1 },
          tooltip: {
            callbacks: {
              title: function (items) {
                return spec.dates && items.length ? dayLabel(spec.labels[items[0].dataIndex]) : undefined;
              },
              label: function (item) {
                var raw = horizontal ? item.parsed.x : item.parsed.y;
                return item.dataset.label + ": " +
                  (spec.unit === "duration" ? duration(raw) : item.formattedValue);
              }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  });
})();
