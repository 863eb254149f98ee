/* <time datetime> elements in the viewer's time zone, with the zone named. The server writes
   UTC ("2026-01-02 10:20:00 UTC"), which is what shows without JavaScript.
   - <time data-relative> reads "3 min ago" or "in 2 h" (up to a week away; further, the exact
     time), kept current every second; hovering shows the exact local time and UTC.
   - Any other <time> shows the exact local time; hovering shows UTC.
   "Now" is the server's (<html data-server-now>), so a viewer's clock that is off does not make
   a run that started a moment ago read "in 2 min". live.js uses `steplineTimes.ago`. */
(function () {
  "use strict";
  var exact = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  var serverNow = Date.parse(document.documentElement.getAttribute("data-server-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var WEEK = 7 * 86400;
  var UNITS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];

  function now() { return Date.now() + skew; }

  /* "3 min ago", "in 2 h", "now"; null when a week or more away. */
  function relative(ms) {
    var seconds = Math.abs(ms) / 1000;
    if (seconds >= WEEK) { return null; }
    if (seconds < 1) { return "now"; }
    for (var i = 0; i < UNITS.length; i++) {
      if (seconds >= UNITS[i][0]) {
        var text = Math.floor(seconds / UNITS[i][0]) + " " + UNITS[i][1];
        return ms < 0 ? "in " + text : text + " ago";
      }
    }
    return null;
  }

  function set(el, text, title) {
    if (el.textContent !== text) { el.textContent = text; }
    if (el.title !== title) { el.title = title; }
  }

  function show(el) {
    var at = Date.parse(el.getAttribute("datetime"));
    if (isNaN(at)) { return; }
    if (!el.hasAttribute("data-local")) {
      el.setAttribute("data-local", "");
      el.setAttribute("data-utc", el.textContent);
    }
    var utc = el.getAttribute("data-utc"), local = exact.format(new Date(at));
    var text = el.hasAttribute("data-relative") ? relative(now() - at) : null;
    if (text === null) { set(el, local, utc); } else { set(el, text, local + " (" + utc + ")"); }
  }

  function localize() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(show);
  }

  window.steplineTimes = {
    /* How long ago a browser-clock moment was, as "12 s ago". */
    ago: function (browserMs) {
      var text = relative(Date.now() - browserMs);
      return text === "now" ? "just now" : text || "over a week ago";
    }
  };
  localize();
  new MutationObserver(localize).observe(document.body, {childList: true, subtree: true});
  setInterval(function () {
    document.querySelectorAll("time[data-relative][data-local]").forEach(show);
  }, 1000);
})();
