// sluice dashboard: live refresh of the [data-live] sections, and dead-letter selection.
// No framework. The server renders (and escapes) every value; this only swaps whole sections.
(function () {
  "use strict";
  var body = document.body;
  var seconds = Number(body.getAttribute("data-refresh")) || 5;
  var paused = false;
  var busy = false;
  var pauseButton = document.getElementById("pause");
  var updated = document.getElementById("updated");

  function selectionControls() {
    document.querySelectorAll("form.dlq").forEach(function (form) {
      var any = form.querySelector('input[name="id"]:checked') !== null;
      form.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = !any; });
    });
  }

  function refresh() {
    if (paused || busy || document.hidden || !document.querySelector("[data-live]")) return;
    busy = true;
    fetch("/live", { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (reply) {
        if (!reply.ok) throw new Error("HTTP " + reply.status);
        return reply.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("[data-live]").forEach(function (section) {
          var current = document.getElementById(section.id);
          // keep a section the operator is working in (a selection would be lost)
          if (!current || current.querySelector("input:checked")) return;
          current.replaceWith(document.importNode(section, true));
        });
        selectionControls();
        if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (err) {
        if (updated) updated.textContent = "refresh failed (" + err.message + ")";
      })
      .finally(function () { busy = false; });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      var form = target.closest("form");
      form.querySelectorAll('input[name="id"]').forEach(function (box) { box.checked = target.checked; });
    }
    selectionControls();
  });

  if (pauseButton) {
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.textContent = paused ? "Resume" : "Pause";
      pauseButton.setAttribute("aria-pressed", String(paused));
    });
  }
  selectionControls();
  window.setInterval(refresh, seconds * 1000);
})();
