// The live indicator ("Live", "Reconnecting…") and the lost-connection banner, one component
// for every page that follows the live stream: the transaction pages (live.js) and the home
// page's "right now" (overview.js). A page calls SendAuthLiveStatus(staleSelector) once and
// tells it when the stream opens, brings a message, or fails; what matches staleSelector is
// marked stale while the connection is lost.
window.SendAuthLiveStatus = function (staleSelector) {
  "use strict";

  var indicator = document.querySelector("[data-live-indicator]");
  var label = indicator && indicator.querySelector("[data-live-label]");
  var LOST_AFTER_MS = 4000;  // a blip shorter than this is not worth a banner
  var lostSince = null;
  var lostTimer = null;
  var caughtUpTimer = null;
  var banner = null;

  function setState(state, text) {
    if (!indicator) { return; }
    indicator.setAttribute("data-state", state);
    label.textContent = text;
  }

  // Without the stream for a few seconds: say so, and mark what is shown as possibly stale.
  function connectionLost() {
    if (lostSince) { return; }
    lostSince = new Date();
    clearTimeout(caughtUpTimer);
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
    document.querySelectorAll(staleSelector)
      .forEach(function (el) { el.classList.add("stale"); });
  }

  // Back, and the replay of what was missed has arrived (no message for a moment).
  function caughtUp() {
    clearTimeout(lostTimer);
    lostSince = null;
    if (banner) { banner.hidden = true; }
    document.querySelectorAll(".stale").forEach(function (el) { el.classList.remove("stale"); });
  }

  function whileCatchingUp() {
    if (lostSince === null && !document.querySelector(".stale")) { return; }
    clearTimeout(caughtUpTimer);
    caughtUpTimer = setTimeout(caughtUp, 700);
  }

  return {
    // The stream is open (again): back before the banner was due means no banner.
    opened: function () {
      clearTimeout(lostTimer);
      setState("live", "Live");
      whileCatchingUp();
    },
    message: whileCatchingUp,
    failed: function () {
      setState("reconnecting", "Reconnecting…");
      connectionLost();
    },
    // Whether the connection was lost and is not back yet (a page may fetch what it missed).
    wasLost: function () { return lostSince !== null; }
  };
};
