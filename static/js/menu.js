// On a narrow screen the menu folds behind one button; without script it stays open.
(function () {
  "use strict";
  var toggle = document.querySelector(".menu-toggle");
  var menu = document.getElementById("site-menu");
  if (toggle && menu) {
    document.documentElement.classList.add("menu-folds");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }
  // A menu (the person's, a row's role or More) closes when a click lands outside it, or on
  // Escape, which gives the focus back to its button.
  function openMenus() {
    return document.querySelectorAll("details.person-menu[open], details.menu[open]");
  }
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    openMenus().forEach(function (menu) {
      menu.open = false;
      if (menu.contains(document.activeElement)) { menu.querySelector("summary").focus(); }
    });
  });
}());
