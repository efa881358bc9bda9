// Dataset uploads through /api with a progress bar and a line per file (stored or refused).
(function () {
  "use strict";
  function line(result) {
    var li = document.createElement("li");
    li.textContent = result.status === "stored"
      ? result.file + ": stored, " + (result.tokens_charged || 0).toLocaleString() + " training tokens charged"
      : result.file + ": refused — " + result.error.message;
    li.className = result.status === "stored" ? "" : "danger";
    return li;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = document.getElementById("upload-progress"), out = document.getElementById("upload-results");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/datasets/" + form.dataset.dataset + "/documents");
      xhr.setRequestHeader("X-CSRF-Token", document.body.dataset.csrf);
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.value = 100 * e.loaded / e.total; } };
      xhr.onload = function () {
        var body = JSON.parse(xhr.responseText), list = document.createElement("ul");
        var results = body.results || (body.error && body.error.results) || [];
        if (!results.length && body.error) { results = [{ file: "upload", status: "refused", error: body.error }]; }
        results.forEach(function (r) { list.appendChild(line(r)); });
        out.replaceChildren(list);
        bar.hidden = true;
        if (xhr.status < 300 || xhr.status === 207) { window.setTimeout(function () { window.location.reload(); }, 1200); }
      };
      bar.hidden = false;
      bar.value = 0;
      xhr.send(new FormData(form));
    });
  });
})();
