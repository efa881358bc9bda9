// Dataset uploads through /api, streamed as NDJSON progress events (api/dataset_uploads.py): a bar
// by work done (chunks embedded, pages read, seconds transcribed) with the stage named, then a line
// per file (stored or refused). A network failure or a reply that is not JSON is said plainly.
(function () {
  "use strict";
  var NDJSON = "application/x-ndjson";
  var STAGES = { extracting: "Reading", ocr: "Reading pages of", transcribing: "Transcribing", embedding: "Embedding" };
  var UNTOLD = " Files not listed as stored were not charged; reload the page to see the documents.";

  function UploadError(message) { this.message = message; }

  function line(result) {
    var li = document.createElement("li");
    li.textContent = result.status === "stored"
      ? result.file + ": stored, " + (result.tokens_charged || 0).toLocaleString() + " training tokens charged"
      : result.file + ": refused — " + result.error.message;
    li.className = result.status === "stored" ? "" : "danger";
    return li;
  }

  function describe(event) {
    return (STAGES[event.stage] || event.stage) + " " + event.file + ": " + event.done.toLocaleString() +
      " of " + event.total.toLocaleString() + " " + event.unit + " (file " + (event.file_index + 1) +
      " of " + event.files + ", " + event.percent + " % of the upload)";
  }

  function parse(text, status) {
    try { return JSON.parse(text); } catch (e) {
      throw new UploadError("The server's reply was not understood (HTTP " + status + ", not JSON)." + UNTOLD);
    }
  }

  function Upload() {
    this.bar = document.getElementById("upload-progress");
    this.status = document.getElementById("upload-status");
    this.out = document.getElementById("upload-results");
    this.ended = false;
  }

  Upload.prototype.say = function (text, danger) {
    this.status.textContent = text;
    this.status.className = danger ? "danger" : "";
  };

  Upload.prototype.progress = function (event) {
    this.bar.value = event.total ? 100 * event.done / event.total : 0;
    this.say(describe(event), false);
  };

  Upload.prototype.finish = function (body) {
    var results = body.results || (body.error && body.error.results) || [], list = document.createElement("ul");
    this.ended = true;
    if (!results.length && body.error) { results = [{ file: "upload", status: "refused", error: body.error }]; }
    results.forEach(function (r) { list.appendChild(line(r)); });
    this.out.replaceChildren(list);
    this.bar.value = 100;
    var stored = results.filter(function (r) { return r.status === "stored"; }).length;
    this.say("Done: " + stored + " of " + results.length + " files stored (100 %).", stored === 0);
    if (stored) { window.setTimeout(function () { window.location.reload(); }, 1500); }
  };

  Upload.prototype.event = function (event) {
    if (event.event === "progress") { this.progress(event); } else { this.finish(event); }
  };

  Upload.prototype.read = function (response) {
    var self = this, reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        buffer += decoder.decode(chunk.value || new Uint8Array(0), { stream: !chunk.done });
        var lines = buffer.split("\n");
        buffer = chunk.done ? "" : lines.pop();
        lines.filter(function (l) { return l.trim(); }).forEach(function (l) { self.event(parse(l, response.status)); });
        if (!chunk.done) { return pump(); }
        if (!self.ended) { throw new UploadError("The upload stopped before the server said how it ended." + UNTOLD); }
        return null;
      });
    }
    return pump();
  };

  Upload.prototype.answer = function (response) {
    var self = this, type = response.headers.get("content-type") || "";
    if (type.indexOf(NDJSON) === 0) { return this.read(response); }
    return response.text().then(function (text) { self.finish(parse(text, response.status)); });
  };

  Upload.prototype.fail = function (error) {
    var message = error instanceof UploadError ? error.message
      : "The upload failed: the server could not be reached (network error). Check the connection and try again." + UNTOLD;
    this.bar.hidden = true;
    this.say(message, true);
  };

  Upload.prototype.send = function (form) {
    var self = this;
    this.bar.hidden = false;
    this.bar.value = 0;
    this.out.replaceChildren();
    this.say("Sending the files…", false);
    return window.fetch("/api/datasets/" + form.dataset.dataset + "/documents", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": NDJSON, "X-CSRF-Token": document.body.dataset.csrf },
      body: new FormData(form)
    }).then(function (response) { return self.answer(response); })
      .catch(function (error) { self.fail(error); });
  };

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      new Upload().send(form);
    });
  });
})();
