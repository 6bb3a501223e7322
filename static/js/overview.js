// Keeps the home page's "right now" section current: on each event from the live stream it
// fetches the section again from the server (at most once a second) and swaps it in. Its
// live indicator and lost-connection banner behave as the transaction list's (live.js).
(function () {
  "use strict";

  var box = document.querySelector("[data-right-now]");
  if (!box || !window.EventSource || !window.fetch) { return; }

  var indicator = document.querySelector("[data-live-indicator]");
  var label = indicator && indicator.querySelector("[data-live-label]");
  var LOST_AFTER_MS = 4000;  // a blip shorter than this is not worth a banner
  var lostSince = null;
  var lostTimer = null;
  var banner = null;

  function setState(state, text) {
    if (!indicator) { return; }
    indicator.setAttribute("data-state", state);
    label.textContent = text;
  }

  function connectionLost() {
    if (lostSince) { return; }
    lostSince = new Date();
    lostTimer = setTimeout(showLost, LOST_AFTER_MS);
  }

  function showLost() {
    if (!banner) {
      banner = document.createElement("p");
      banner.className = "connection-lost";
      banner.setAttribute("role", "alert");
      banner.setAttribute("data-connection-lost", "");
      var head = document.querySelector(".page-head");
      head.parentNode.insertBefore(banner, head.nextSibling);
    }
    banner.textContent = "Live updates are paused since " +
      lostSince.toLocaleTimeString() + ": the connection to the server is lost. " +
      "What you see may be out of date; it updates again once the connection is back.";
    banner.hidden = false;
    box.classList.add("stale");
  }

  function backAgain() {
    clearTimeout(lostTimer);
    if (lostSince !== null) { soon(); }  // what changed while away
    lostSince = null;
    if (banner) { banner.hidden = true; }
    box.classList.remove("stale");
  }

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
      setState("live", "Live");
      backAgain();
    };
    source.onmessage = function (event) {
      lastId = Math.max(lastId, Number(event.lastEventId) || 0);
      soon();
    };
    source.onerror = function () {
      box.setAttribute("data-live", "false");
      setState("reconnecting", "Reconnecting…");
      connectionLost();
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
