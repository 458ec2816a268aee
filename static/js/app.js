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
  // "Imprimer" buttons (hidden without this file): the browser's print, the page's print stylesheet.
  document.querySelectorAll("[data-imprimer]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
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
  // Signature pads: draw with finger or mouse; the PNG goes into the hidden field named by data-signature.
  document.querySelectorAll("canvas[data-signature]").forEach(function (c) {
    var ctx = c.getContext("2d"), drawing = false, drawn = false;
    ctx.lineWidth = 2; ctx.lineCap = "round"; ctx.strokeStyle = "#111";
    function at(e) { var r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; }
    c.addEventListener("pointerdown", function (e) { drawing = true; var p = at(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); c.setPointerCapture(e.pointerId); });
    c.addEventListener("pointermove", function (e) { if (!drawing) return; var p = at(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); drawn = true; });
    c.addEventListener("pointerup", function () { drawing = false; });
    var field = document.getElementById(c.dataset.signature);
    c.closest("form").addEventListener("submit", function () { if (drawn && field) field.value = c.toDataURL("image/png"); });
    var clear = document.querySelector("[data-effacer-signature='" + c.id + "']");
    if (clear) clear.addEventListener("click", function () { ctx.clearRect(0, 0, c.width, c.height); drawn = false; if (field) field.value = ""; });
  });
  // QR scanning with the camera where the browser offers BarcodeDetector; the typed field always works.
  document.querySelectorAll("[data-scanner]").forEach(function (box) {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    box.hidden = false;
    var input = document.getElementById(box.dataset.scanner), video = box.querySelector("video");
    box.querySelector("[data-ouvrir-camera]").addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.srcObject = stream; video.hidden = false; video.play();
        var timer = setInterval(function () {
          detector.detect(video).then(function (codes) {
            if (!codes.length) return;
            clearInterval(timer); stream.getTracks().forEach(function (t) { t.stop(); });
            input.value = codes[0].rawValue; input.form.requestSubmit();
          });
        }, 300);
      }).catch(function () { box.hidden = true; input.focus(); });
    });
  });
})();
