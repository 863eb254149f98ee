/* The run page's trace: selecting a row or a bar shows its panel, kept across live updates.
   Without JavaScript the links still jump to the panels (shown by CSS :target). */
(function () {
  "use strict";
  function show(id) {
    var found = id ? document.getElementById(id) : null;
    var isPanel = found !== null && found.classList.contains("trace-panel");
    document.querySelectorAll(".trace-panel").forEach(function (panel) {
      panel.classList.toggle("selected", isPanel && panel.id === id);
    });
    document.querySelectorAll(".trace [data-panel]").forEach(function (link) {
      var on = isPanel && link.getAttribute("data-panel") === id;
      link.classList.toggle("selected", on);
      if (on) { link.setAttribute("aria-current", "true"); } else { link.removeAttribute("aria-current"); }
    });
    document.querySelectorAll(".trace-hint").forEach(function (hint) { hint.hidden = isPanel; });
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(".trace [data-panel]") : null;
    if (!link) { return; }
    event.preventDefault();
    var id = link.getAttribute("data-panel");
    history.replaceState(null, "", "#" + id);
    show(id);
  });
  /* A step executing now: its row's duration counts up every second between live updates. */
  function elapsed(seconds) {
    if (seconds < 60) { return seconds.toFixed(1) + "s"; }
    var minutes = Math.floor(seconds / 60), rest = Math.floor(seconds % 60);
    if (minutes < 60) { return minutes + "m" + (rest < 10 ? "0" : "") + rest + "s"; }
    return Math.floor(minutes / 60) + "h" + (minutes % 60 < 10 ? "0" : "") + (minutes % 60) + "m";
  }
  setInterval(function () {
    document.querySelectorAll(".trace-duration[data-since]").forEach(function (cell) {
      var since = new Date(cell.getAttribute("data-since")).getTime();
      if (!isNaN(since)) { cell.textContent = elapsed(Math.max(0, Date.now() - since) / 1000); }
    });
  }, 1000);
  function fromHash() { show(decodeURIComponent(location.hash.slice(1))); }
  document.addEventListener("htmx:afterSettle", fromHash);
  window.addEventListener("hashchange", fromHash);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fromHash);
  } else {
    fromHash();
  }
})();
