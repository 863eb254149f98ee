/* Links with data-confirm-dialog ("Cancel run…"): with JavaScript, the confirmation page they
   lead to opens in a dialog over this page (its [data-confirm] part: the question, the reason
   box, the button, which posts as the page's would); "Back" or Escape closes it. Without
   JavaScript, or if the page cannot be fetched, the link goes to that page. */
(function () {
  function open(link, html) {
    var part = new DOMParser().parseFromString(html, "text/html").querySelector("[data-confirm]");
    if (!part) { return false; }
    var dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.appendChild(document.importNode(part, true));
    var title = dialog.querySelector("h1, h2");
    if (title && title.id) { dialog.setAttribute("aria-labelledby", title.id); }
    dialog.querySelectorAll("[data-confirm-back]").forEach(function (back) {
      back.addEventListener("click", function (event) { event.preventDefault(); dialog.close(); });
    });
    dialog.addEventListener("close", function () { dialog.remove(); link.focus(); });
    document.body.appendChild(dialog);
    dialog.showModal();
    var first = dialog.querySelector("textarea, button");
    if (first) { first.focus(); }
    return true;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-confirm-dialog]") : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) { return; }
    event.preventDefault();
    fetch(link.href, { headers: { accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) { if (!open(link, html)) { window.location.href = link.href; } })
      .catch(function () { window.location.href = link.href; });
  });
})();
