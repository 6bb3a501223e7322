// "4 min 05 s left" beside a pending request, counting down to its expiry. Rows that arrive
// live are found on the next tick.
(function () {
  "use strict";

  function render() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-expires-at]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-expires-at")) - now) / 1000);
      if (left <= 0) {
        el.textContent = "Expired";
        return;
      }
      var seconds = left % 60;
      el.textContent = Math.floor(left / 60) + " min " + (seconds < 10 ? "0" : "") + seconds + " s left";
    });
  }

  render();
  setInterval(render, 1000);
}());
