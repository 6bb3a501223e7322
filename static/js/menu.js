// On a narrow screen the menu folds behind one button; without script it stays open.
// The person's menu (a <details>) closes when a click or Escape lands outside it.
(function () {
  "use strict";
  var toggle = document.querySelector(".menu-toggle");
  var menu = document.getElementById("site-menu");
  var person = document.querySelector(".person-menu");
  if (toggle && menu) {
    document.documentElement.classList.add("menu-folds");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }
  if (person) {
    document.addEventListener("click", function (event) {
      if (person.open && !person.contains(event.target)) { person.open = false; }
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && person.open) {
        person.open = false;
        person.querySelector("summary").focus();
      }
    });
  }
}());
