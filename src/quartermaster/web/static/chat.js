// Chat page: sends the conversation to /v1/chat/completions with the page's session and CSRF
// token, reads the server-sent events as they arrive, and shows what each answer cost.
(function () {
  "use strict";
  var history = [];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    return node;
  }

  function request(form) {
    var body = {
      model: form.querySelector("#chat-model").value,
      messages: history,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: parseInt(form.querySelector("#chat-max").value, 10) || undefined
    };
    var persona = form.querySelector("#chat-persona").value.trim();
    if (persona) { body.persona = persona; }
    var picked = form.querySelector("#chat-datasets");
    if (picked) {
      var ids = Array.prototype.filter.call(picked.options, function (o) { return o.selected; })
        .map(function (o) { return parseInt(o.value, 10); });
      if (ids.length) { body.datasets = ids; }
    }
    return body;
  }

  function handle(event, answer, meta, state) {
    if (event.error) { throw new Error(event.error.message); }
    if (event.references) { state.references = event.references; }
    if (event.usage) { state.usage = event.usage; }
    (event.choices || []).forEach(function (choice) {
      if (choice.delta && choice.delta.content) {
        state.text += choice.delta.content;
        answer.firstChild.textContent = state.text;
      }
    });
  }

  function finish(meta, state) {
    var parts = [];
    if (state.usage) {
      parts.push(state.usage.tokens_charged.toLocaleString() + " tokens charged (" +
        state.usage.prompt_tokens.toLocaleString() + " prompt + " +
        state.usage.completion_tokens.toLocaleString() + " answer)");
    }
    if (state.references && state.references.length) {
      parts.push("sources: " + state.references.map(function (r, i) {
        return "[" + (i + 1) + "] " + r.document;
      }).join(", "));
    }
    meta.textContent = parts.join(" · ");
  }

  async function read(response, answer, meta) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "", state = { text: "", usage: null, references: null };
    for (;;) {
      var step = await reader.read();
      if (step.done) { break; }
      buffer += decoder.decode(step.value, { stream: true });
      var events = buffer.split("\n\n");
      buffer = events.pop();
      events.forEach(function (raw) {
        var data = raw.replace(/^data: /, "");
        if (data && data !== "[DONE]") { handle(JSON.parse(data), answer, meta, state); }
      });
    }
    finish(meta, state);
    return state.text;
  }

  async function send(form) {
    var input = form.querySelector("#chat-input"), log = document.getElementById("chat-log");
    var error = document.getElementById("chat-error"), button = form.querySelector("#chat-send");
    var text = input.value.trim();
    if (!text) { return; }
    error.hidden = true;
    history.push({ role: "user", content: text });
    log.appendChild(el("div", "msg user", text));
    var answer = el("div", "msg assistant"), meta = el("span", "meta");
    answer.appendChild(document.createTextNode(""));
    answer.appendChild(meta);
    log.appendChild(answer);
    input.value = "";
    button.disabled = true;
    try {
      var response = await fetch("/v1/chat/completions", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf },
        body: JSON.stringify(request(form))
      });
      if (!response.ok) {
        var problem = await response.json();
        throw new Error(problem.error ? problem.error.message : response.statusText);
      }
      history.push({ role: "assistant", content: await read(response, answer, meta) });
    } catch (failure) {
      history.pop();
      answer.remove();
      error.textContent = failure.message.charAt(0).toUpperCase() + failure.message.slice(1);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("chat-form");
    if (form) { form.addEventListener("submit", function (e) { e.preventDefault(); send(form); }); }
  });
})();
