/* Honest live state: what the page shows when Stepline stops answering.
   - A live stream ([sse-connect]) that drops: its regions are dimmed and labelled stale, and a
     banner (aria-live, its message role=status) says "Reconnecting… (last update 12 s ago)".
     The page asks for itself again at once, then after 1, 2, 4, 8 and every 10 s ("Retry now"
     asks at once); when it answers, each stale region is replaced by its fresh copy (whose
     stream connects again), so nothing that changed meanwhile stays wrong. A page that answers
     with an error (a run gone, signed out) stops the retries and says so.
   - A form posted while Stepline is down stays on the page with the reason beside its button
     (it asks /health first), and so does a link followed while the banner is up; htmx requests
     that fail show the server's message beside their element. Without JavaScript, forms post
     as usual and errors come as full pages. */
(function () {
  "use strict";
  var banner = document.getElementById("live-banner");
  var GRACE_MS = 1500, MAX_DELAY_MS = 10000, PROBE_TIMEOUT_MS = 5000;
  var DOWN = "Stepline is not answering (stopped or restarting?)";
  var lost = [];          /* connect elements whose stream dropped, not yet refreshed */
  var failures = 0;       /* drops and failed asks since a stream last opened */
  var lostAt = null;      /* when the page was last known current (browser clock) */
  var timer = null, grace = null, ticker = null, hider = null;
  var shown = false, stopped = false, leaving = false;

  /* Streams closed by leaving the page are no news; back from the history cache, they are. */
  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("beforeunload", function () { leaving = true; });
  window.addEventListener("pageshow", function () { leaving = false; });

  function delay() { return failures <= 1 ? 0 : Math.min(500 * Math.pow(2, failures - 1), MAX_DELAY_MS); }

  function timed(url, options) {
    var abort = new AbortController();
    var limit = setTimeout(function () { abort.abort(); }, PROBE_TIMEOUT_MS);
    options.signal = abort.signal;
    options.cache = "no-store";
    options.credentials = "same-origin";
    return fetch(url, options).finally(function () { clearTimeout(limit); });
  }

  /* The server's own words for a failed answer: an error page's alert, an API message. */
  function serverMessage(status, type, body) {
    var text = "";
    if (/json/.test(type)) {
      try { var data = JSON.parse(body); text = data.message || data.error || ""; } catch (e) { text = ""; }
    } else if (/html/.test(type)) {
      var doc = new DOMParser().parseFromString(body, "text/html");
      var found = doc.querySelector("main [role=alert]") || doc.querySelector("main h1");
      text = found ? found.textContent.trim() : "";
    } else {
      text = body.trim().slice(0, 300);
    }
    return "Stepline answered " + status + (text ? ": " + text : "");
  }

  /* -- the banner -------------------------------------------------------------------------- */

  function say(parts, state) {
    clearTimeout(hider);
    banner.textContent = "";
    banner.setAttribute("data-state", state);
    parts.forEach(function (part) { banner.appendChild(part); });
  }

  function span(cls, text, hidden) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    if (hidden) { el.setAttribute("aria-hidden", "true"); }
    if (cls === "live-message") { el.setAttribute("role", "status"); }
    return el;
  }

  function button(text, action) {
    var el = document.createElement("button");
    el.type = "button";
    el.className = "link-button";
    el.textContent = text;
    el.addEventListener("click", action);
    return el;
  }

  function age() { return "(last update " + window.steplineTimes.ago(lostAt) + ")"; }

  function showDown(reason) {
    clearTimeout(grace);
    grace = null;
    if (stopped || !lost.length) { return; }
    lost.forEach(markStale);
    var message = shown ? banner.querySelector(".live-message") : null;
    if (!message) {  /* announced once; the age below counts on without being read out */
      shown = true;
      say([span("live-message", "Reconnecting…"), document.createTextNode(" "),
           span("live-age", age(), true), document.createTextNode(" "),
           span("live-reason", ""), document.createTextNode(" "), button("Retry now", retryNow)],
          "down");
    }
    banner.querySelector(".live-reason").textContent = reason ? reason + "." : "";
    if (!ticker) {
      ticker = setInterval(function () {
        var el = banner.querySelector(".live-age");
        if (el) { el.textContent = age(); }
      }, 1000);
    }
  }

  function showStopped(reason) {
    stopped = true;
    clearTimeout(timer);
    timer = null;
    lost.forEach(markStale);
    shown = true;
    say([span("live-message", "Live updates stopped: " + reason + ". "),
         button("Reload the page", function () { location.reload(); })], "down");
  }

  function showRecovered() {
    clearInterval(ticker);
    ticker = null;
    lostAt = null;
    if (!shown) { return; }
    shown = false;
    say([span("live-message", "Reconnected: live again.")], "ok");
    hider = setTimeout(function () { say([], "up"); }, 4000);
  }

  function retryNow() {
    clearTimeout(timer);
    timer = null;
    probe();
  }

  /* -- stale regions ----------------------------------------------------------------------- */

  function markStale(el) {
    if (el.classList.contains("live-stale")) { return; }
    el.classList.add("live-stale");
    var note = document.createElement("p");
    note.className = "stale-note";
    note.textContent = "Stale: not updated since the connection was lost.";
    el.parentNode.insertBefore(note, el);
  }

  function fresher(el, doc) {
    if (el.id) { return doc.getElementById(el.id); }
    var url = el.getAttribute("sse-connect");
    var same = null;
    doc.querySelectorAll("[sse-connect]").forEach(function (other) {
      if (other.getAttribute("sse-connect") === url) { same = other; }
    });
    return same;
  }

  function refresh(doc) {
    lost.forEach(function (el) {
      if (!document.body.contains(el)) { return; }
      var note = el.previousElementSibling;
      if (note && note.classList.contains("stale-note")) { note.remove(); }
      var fresh = fresher(el, doc);
      if (fresh) {
        htmx.swap(el, fresh.outerHTML, {swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0, ignoreTitle: true});
      } else {
        el.classList.remove("live-stale");
      }
    });
    lost = [];
  }

  /* -- asking again ------------------------------------------------------------------------ */

  function schedule() {
    if (timer || stopped) { return; }
    timer = setTimeout(function () { timer = null; probe(); }, delay());
  }

  function probe() {
    if (stopped || !lost.length) { return; }
    timed(location.href, {headers: {"Accept": "text/html"}}).then(function (response) {
      return response.text().then(function (body) {
        if (response.redirected) {
          showStopped("this page now leads to " + new URL(response.url).pathname);
        } else if (response.ok) {
          refresh(new DOMParser().parseFromString(body, "text/html"));
          showRecovered();
        } else {
          var reason = serverMessage(response.status, response.headers.get("content-type") || "", body);
          if (response.status >= 500) {
            failures += 1;
            showDown(reason);
            schedule();
          } else {
            showStopped(reason);
          }
        }
      });
    }, function () {
      failures += 1;
      showDown(DOWN);
      schedule();
    });
  }

  document.addEventListener("htmx:sseError", function (event) {
    var source = event.detail && event.detail.source;
    if (source) { source.close(); }  /* no fixed-interval retry by the browser: ours backs off */
    if (leaving || stopped) { return; }
    var el = event.target;
    if (lost.indexOf(el) >= 0) { return; }  /* the extension's retry failed too: ours goes on */
    lost.push(el);
    if (lostAt === null) { lostAt = Date.now(); }
    failures += 1;
    if (!shown && !grace) { grace = setTimeout(function () { showDown(""); }, GRACE_MS); }
    schedule();
  });

  document.addEventListener("htmx:sseOpen", function (event) {
    failures = 0;
    if (lost.indexOf(event.target) >= 0) { retryNow(); }  /* the extension's own retry won */
  });

  /* -- forms, links and htmx requests ------------------------------------------------------ */

  function flash(near, text) {
    var anchor = near.closest("table") ? near.closest(".table-wrap, table") : near;
    var box = anchor.nextElementSibling;
    if (!box || !box.classList.contains("inline-error")) {
      box = document.createElement("p");
      box.className = "form-error inline-error";
      box.setAttribute("role", "alert");
      anchor.insertAdjacentElement("afterend", box);
    }
    box.textContent = text;
  }

  function reachable() {
    return timed("/health", {}).then(function (response) {
      return response.ok ? null : "Stepline answered " + response.status;
    }, function () { return DOWN; });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || new URL(form.action, location.href).origin !== location.origin) { return; }
    if (form.hasAttribute("data-reachable")) { form.removeAttribute("data-reachable"); return; }
    event.preventDefault();
    if (form.hasAttribute("data-checking")) { return; }
    form.setAttribute("data-checking", "");
    var submitter = event.submitter || null;
    reachable().then(function (problem) {
      form.removeAttribute("data-checking");
      if (problem) {
        flash(submitter || form, "Not sent: " + problem + ". Try again when it is back.");
        return;
      }
      var old = form.querySelector(".inline-error");
      if (old) { old.remove(); }
      form.setAttribute("data-reachable", "");
      form.requestSubmit(submitter);
    });
  });

  document.addEventListener("click", function (event) {
    if (!shown || stopped || event.defaultPrevented || event.button !== 0) { return; }
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) { return; }
    var link = event.target.closest ? event.target.closest("a[href]") : null;
    if (!link || link.origin !== location.origin || link.target) { return; }
    if (link.pathname === location.pathname && link.search === location.search) { return; }
    event.preventDefault();
    banner.querySelector(".live-reason").textContent = "Not opened: " + DOWN + ".";
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    flash(event.detail.elt, serverMessage(xhr.status, xhr.getResponseHeader("content-type") || "", xhr.responseText || ""));
  });
  document.addEventListener("htmx:sendError", function (event) {
    flash(event.detail.elt, "Not sent: " + DOWN + ". Try again when it is back.");
  });
  document.addEventListener("htmx:timeout", function (event) {
    flash(event.detail.elt, "No answer: " + DOWN + ". Try again when it is back.");
  });
})();
