// A "Copy" button beside a text to hand over (the invitation link): data-copy names the id of
// the element whose text it copies. Without script, or without a clipboard, the button stays
// hidden and the text can be selected as it is.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var said = button.parentNode.querySelector("[data-copied]");
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        if (said) { said.textContent = "Copied."; }
      }, function () {
        // Refused (no permission): select it, for the person to copy themselves.
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (said) { said.textContent = "Selected: press Ctrl+C (⌘C) to copy."; }
      });
    });
  });
})();
