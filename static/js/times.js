// Every <time data-local> is written in UTC by the server. Here it is shown in the reader's
// time zone with how long ago it was ("14:05, 3 min ago"), and the UTC time on hover.
// Without script the page keeps the UTC text.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) { return; }

  var clock = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit"});
  var day = new Intl.DateTimeFormat(undefined, {day: "numeric", month: "short"});
  var dayInYear = new Intl.DateTimeFormat(undefined,
    {day: "numeric", month: "short", year: "numeric"});
  var relative = Intl.RelativeTimeFormat ?
    new Intl.RelativeTimeFormat(undefined, {numeric: "auto", style: "short"}) : null;

  function howLongAgo(date, now) {
    if (!relative) { return ""; }
    var seconds = (date.getTime() - now.getTime()) / 1000;
    var size = Math.abs(seconds);
    if (size < 45) { return seconds < 0 ? "just now" : "in a moment"; }
    if (size < 3600) { return relative.format(Math.round(seconds / 60), "minute"); }
    if (size < 86400) { return relative.format(Math.round(seconds / 3600), "hour"); }
    if (size < 7 * 86400) { return relative.format(Math.round(seconds / 86400), "day"); }
    return "";
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() &&
      a.getDate() === b.getDate();
  }

  function render(el, now) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime())) { return; }
    if (!el.hasAttribute("data-utc")) { el.setAttribute("data-utc", el.textContent); }
    el.title = el.getAttribute("data-utc");
    var when = clock.format(date);
    if (!sameDay(date, now)) {
      when = (date.getFullYear() === now.getFullYear() ? day : dayInYear).format(date) +
        ", " + when;
    }
    var ago = howLongAgo(date, now);
    el.textContent = ago ? when + " (" + ago + ")" : when;
  }

  function renderAll() {
    var now = new Date();
    document.querySelectorAll("time[data-local]").forEach(function (el) { render(el, now); });
  }

  renderAll();
  setInterval(renderAll, 30000);
  if (window.MutationObserver) {
    new MutationObserver(function (changes) {
      var now = new Date();
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) { return; }
          if (node.matches("time[data-local]")) { render(node, now); }
          node.querySelectorAll("time[data-local]").forEach(function (el) { render(el, now); });
        });
      });
    }).observe(document.body, {childList: true, subtree: true});
  }
}());
