// Comfort only: every page works without this file (UI.md principle 2).
(function () {
  "use strict";
  // Dismissible flash messages.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-fermer]");
    if (btn) {
      var flash = btn.closest(".flash");
      if (flash) flash.remove();
    }
  });
  // Busy state on submit: the label says work is under way, a second click does nothing.
  document.addEventListener("submit", function (e) {
    var btn = e.target.querySelector("button[type=submit], button:not([type])");
    if (btn) {
      if (btn.getAttribute("aria-busy") === "true") { e.preventDefault(); return; }
      btn.setAttribute("aria-busy", "true");
      btn.dataset.label = btn.textContent;
      btn.textContent = "Enregistrement…";
    }
  });
})();
