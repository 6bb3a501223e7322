// Keeps the home page's "right now" section current: on each event from the live stream it
// fetches the section again from the server (at most once a second) and swaps it in. Its
// live indicator and lost-connection banner are the transaction list's (live_status.js).
(function () {
  "use strict";

  var box = document.querySelector("[data-right-now]");
  if (!box || !window.EventSource || !window.fetch) { return; }

  var status = window.SendAuthLiveStatus("[data-right-now]");

  var streamUrl = box.getAttribute("data-stream-url");
  var fragmentUrl = box.getAttribute("data-fragment-url");
  var lastId = Number(box.getAttribute("data-last-event-id")) || 0;
  var source = null;
  var refreshTimer = null;
  var retryDelay = 1000;

  function refresh() {
    refreshTimer = null;
    fetch(fragmentUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        box.setAttribute("data-refreshed", String(Date.now()));
        tick();
      })
      .catch(function () { /* the next event tries again */ });
  }

  function soon() {
    if (!refreshTimer) { refreshTimer = setTimeout(refresh, 1000); }
  }

  function connect() {
    if (source) { source.close(); }
    source = new EventSource(streamUrl + "?after=" + lastId);
    source.onopen = function () {
      retryDelay = 1000;
      box.setAttribute("data-live", "true");
      if (status.wasLost()) { soon(); }  // what changed while the connection was lost
      status.opened();
    };
    source.onmessage = function (event) {
      lastId = Math.max(lastId, Number(event.lastEventId) || 0);
      soon();
      status.message();
    };
    source.onerror = function () {
      box.setAttribute("data-live", "false");
      status.failed();
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    };
  }

  // The oldest pending request's time left, counting down between refreshes.
  function tick() {
    box.querySelectorAll(".countdown[data-expires-at]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-expires-at")) - Date.now()) / 1000);
      if (left <= 0) { el.textContent = "expired"; soon(); return; }
      var seconds = left % 60;
      el.textContent = Math.floor(left / 60) + " min " + (seconds < 10 ? "0" : "") + seconds +
        " s left";
    });
  }

  setInterval(tick, 1000);
  connect();
})();
