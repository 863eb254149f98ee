/* Forms with data-json-field="NAME": refuse a submit whose NAME field is not a JSON object,
   saying why beside the field. The server checks it again; without JavaScript it alone does. */
(function () {
  function problem(text) {
    if (!text.trim()) { return null; }
    var value;
    try { value = JSON.parse(text); } catch (error) { return "not valid JSON: " + error.message; }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return 'must be a JSON object, like {"key": "value"}';
    }
    return null;
  }
  document.querySelectorAll("form[data-json-field]").forEach(function (form) {
    var name = form.getAttribute("data-json-field");
    var field = form.elements[name];
    var message = document.getElementById(field.id + "-error");
    if (!message) {  /* the server wrote none: no refusal yet */
      message = document.createElement("p");
      message.className = "form-error";
      message.id = field.id + "-error";
      message.setAttribute("role", "alert");
      message.hidden = true;
      field.parentNode.insertBefore(message, field);
      field.setAttribute("aria-describedby", message.id);
    }
    function check() {
      var found = problem(field.value);
      if (found) {
        message.textContent = name + ": " + found;
        message.hidden = false;
        field.setAttribute("aria-invalid", "true");
      } else {
        message.hidden = true;
        field.removeAttribute("aria-invalid");
      }
      return !found;
    }
    form.addEventListener("submit", function (event) {
      if (!check()) { event.preventDefault(); field.focus(); }
    });
    field.addEventListener("input", function () {
      if (field.hasAttribute("aria-invalid")) { check(); }
    });
  });
})();
