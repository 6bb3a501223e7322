// A Copy button beside text to hand over or paste elsewhere (an invitation link, the PagerDuty
// webhook URL): data-copy names the element whose text it copies; data-copied beside it says
// it worked. Without script the button stays hidden and the text can be selected as it is.
(function () {
  "use strict";

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = document.execCommand("copy");
    area.remove();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function select(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var said = button.parentElement.querySelector("[data-copied]");
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(source.textContent.trim()).then(function () {
        if (said) { said.textContent = "Copied."; }
      }, function () {
        // Refused (no permission): select it, for the person to copy themselves.
        select(source);
        if (said) { said.textContent = "Selected: press Ctrl+C (⌘C) to copy."; }
      });
    });
  });
})();
