// A channel's settings page: the test button (and PagerDuty's Resolve button after it) sends
// the configuration form as it is, saved or not, and shows the server's answer beside it, with
// the status indicator as it is now. Without script the form posts and the page comes back
// with the answer in that place.
(function () {
  "use strict";

  var form = document.getElementById("channel-settings");
  var target = document.getElementById("test-result");
  if (!form || !target) { return; }

  function show(html) {
    target.innerHTML = html;
    var now = target.querySelector("template[data-status-now]");
    var indicator = document.querySelector(".status-indicator");
    if (now && indicator) { indicator.replaceWith(now.content.cloneNode(true)); }
    if (now) { now.remove(); }
  }

  function failed() {
    var p = document.createElement("p");
    p.className = "flash flash-error";
    p.textContent = "That did not get through: the dashboard did not answer. Reload the page and try again.";
    target.replaceChildren(p);
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.hasAttribute("data-channel-test")) { return; }
    event.preventDefault();
    var label = button.textContent;
    button.disabled = true;
    button.textContent = "Sending…";
    target.setAttribute("aria-busy", "true");
    fetch(button.formAction, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", Accept: "text/html" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(show, failed).then(function () {
      button.disabled = false;
      button.textContent = label;
      target.removeAttribute("aria-busy");
      // A Resolve button pressed is gone with its answer: keep the keyboard's place.
      if (!button.isConnected) { target.focus(); }
    });
  });
})();
