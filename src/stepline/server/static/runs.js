/* The runs page in the browser: rows that open their run, selection kept across live updates,
   and time filters typed in the viewer's time zone.

   Without this script the page still works: each run id is a link, the checkboxes submit
   with "Replay selected…" / "Cancel selected…" (no "select all"), and the "Created from" and
   "Created before" fields are read in UTC, as their labels say. */
(function () {
  "use strict";

  /* -- rows: a click anywhere on a row opens the run, but not on a link, button or field -- */
  var INNER = "a, button, input, label, select, textarea, summary, td.select";
  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr.run-row[data-href]");
    if (!row || event.target.closest(INNER) || event.button !== 0) { return; }
    if (String(window.getSelection() || "")) { return; }  // selecting text to copy it
    if (event.ctrlKey || event.metaKey || event.shiftKey) {
      window.open(row.getAttribute("data-href"), "_blank", "noopener");
    } else {
      window.location.assign(row.getAttribute("data-href"));
    }
  });

  /* -- selection: kept by run id while live updates replace the rows -- */
  var form = document.getElementById("runs-select");
  var all = document.getElementById("select-all");
  var count = document.getElementById("selected-count");
  var selected = new Set();

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#runs-rows input[name=run_id]"));
  }

  function show() {
    var found = boxes();
    found.forEach(function (box) { box.checked = selected.has(box.value); });
    var shown = found.filter(function (box) { return box.checked; }).length;
    if (all) {
      all.checked = found.length > 0 && shown === found.length;
      all.indeterminate = shown > 0 && shown < found.length;
    }
    if (count) {
      count.textContent = selected.size ? selected.size + (selected.size === 1 ? " run" : " runs") + " selected" : "";
    }
    if (form) {
      form.querySelectorAll("button").forEach(function (button) { button.disabled = selected.size === 0; });
    }
  }

  if (form) {
    document.addEventListener("change", function (event) {
      var box = event.target;
      if (box === all) {
        boxes().forEach(function (one) {
          if (all.checked) { selected.add(one.value); } else { selected.delete(one.value); }
        });
      } else if (box.matches && box.matches("#runs-rows input[name=run_id]")) {
        if (box.checked) { selected.add(box.value); } else { selected.delete(box.value); }
      } else {
        return;
      }
      show();
    });
    /* A run selected and then gone from the page (a live update) is still sent. */
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[type=hidden][name=run_id]").forEach(function (old) { old.remove(); });
      var onPage = new Set(boxes().map(function (box) { return box.value; }));
      selected.forEach(function (id) {
        if (onPage.has(id)) { return; }
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = "run_id";
        field.value = id;
        form.appendChild(field);
      });
    });
    document.body.addEventListener("htmx:afterSwap", show);
    /* On load, and back from a preview, the boxes may hold the browser's restored state. */
    window.addEventListener("pageshow", function () {
      boxes().forEach(function (box) { if (box.checked) { selected.add(box.value); } });
      show();
    });
  }

  /* -- time filters: shown and typed in the viewer's time zone, sent as RFC 3339 -- */
  var filters = document.getElementById("run-filters");
  if (!filters) { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
  var inputs = Array.prototype.slice.call(filters.querySelectorAll("input[data-zone-input]"));

  function pad(number, width) { return String(number).padStart(width || 2, "0"); }

  function localText(moment) {  // a Date as a datetime-local value in this browser's zone
    return pad(moment.getFullYear(), 4) + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      "T" + pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + ":" + pad(moment.getSeconds());
  }

  function rfc3339(value) {  // a datetime-local value (this browser's zone) with its offset
    var moment = new Date(value);  // a date-time without offset is local time
    if (isNaN(moment.getTime())) { return value; }
    var offset = -moment.getTimezoneOffset();
    var sign = offset < 0 ? "-" : "+";
    offset = Math.abs(offset);
    return localText(moment) + sign + pad(Math.floor(offset / 60)) + ":" + pad(offset % 60);
  }

  inputs.forEach(function (input) {
    if (input.value) {  // the server wrote UTC
      var moment = new Date(input.value + "Z");
      if (!isNaN(moment.getTime())) { input.value = localText(moment); }
    }
  });
  filters.querySelectorAll(".tz-zone").forEach(function (label) { label.textContent = zone; });

  filters.addEventListener("submit", function (event) {
    event.preventDefault();
    var params = new URLSearchParams();
    new FormData(filters).forEach(function (value, name) {
      if (value === "") { return; }  // an empty field means "any": left out of the URL
      var input = filters.elements.namedItem(name);
      params.append(name, input && input.hasAttribute && input.hasAttribute("data-zone-input") ? rfc3339(value) : value);
    });
    var query = params.toString();
    window.location.assign(filters.getAttribute("action") + (query ? "?" + query : ""));
  });
})();
