// Small progressive enhancements shared by every page; everything works without them.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // Confirm destructive actions marked data-confirm (no inline handlers under our CSP).
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
  });
})();
