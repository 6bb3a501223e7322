// Settings → Messages: as the templates are typed, fetch the server's preview (each channel's
// message for a sample request, the SMS segment count and encoding) and show it in place.
(function () {
  "use strict";

  var form = document.querySelector("form[data-messages-form]");
  var target = document.getElementById("messages-preview");
  if (!form || !target) { return; }
  var timer = null;
  var latest = 0;

  function refresh() {
    var asked = ++latest;
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "text/html" }
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html !== null && asked === latest) { target.innerHTML = html; }
    }).catch(function () { /* the last preview stays; saving still checks everything */ });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
