// An answer page left open: every few seconds (data-every-ms) it asks whether its request has ended (expired,
// cancelled, answered elsewhere). Once it has, the server's fragment replaces the form and
// the details, so nothing on the page can still be pressed.
(function () {
  "use strict";

  var live = document.querySelector("[data-answer-live]");
  if (!live) { return; }
  var url = live.getAttribute("data-answer-live");
  var timer = null;

  function ended(html) {
    clearInterval(timer);
    live.innerHTML = html;
    var heading = live.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function check() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 200) { return response.text().then(ended); }
      })
      .catch(function () { /* offline for a moment: the next tick asks again */ });
  }

  timer = setInterval(check, Number(live.getAttribute("data-every-ms")) || 3000);
}());
