// Small progressive enhancements shared by every page; everything works without them.
(function () {
  "use strict";
  // Confirm destructive actions marked data-confirm (no inline handlers under our CSP). Listening
  // on the document, in the capture phase, also covers forms that HTMX swapped in later.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // A refused or stale edit (400, 409) comes back as the part of the page that explains it:
  // swap it in like a success instead of dropping it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
