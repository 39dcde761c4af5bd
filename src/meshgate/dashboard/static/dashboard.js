// meshgate dashboard: small enhancements only; every form works without this file.
"use strict";

function copyFrom(button) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = "value" in source && source.tagName === "INPUT" ? source.value : source.textContent;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    button.setAttribute("aria-live", "polite");
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(source));
  } else {
    selectText(source);
    try { document.execCommand("copy"); done(); } catch (_) { /* the text stays selected for Ctrl+C */ }
  }
}

function selectText(element) {
  if (element.select) { element.focus(); element.select(); return; }
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (button) { event.preventDefault(); copyFrom(button); }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("focusin", (event) => {
  if (event.target.matches("input[data-select-all]")) event.target.select();
});

// The events page: new events from the watch stream go on top of the list (the page itself is a full list).
function watchEvents(state) {
  const table = document.getElementById("events");
  if (!table || !window.EventSource) return;
  const root = state.dataset.live.replace(/\/live$/, "");
  const stream = new EventSource(state.dataset.live);
  const cell = (row, text, tag) => {
    const td = row.insertCell();
    const inner = tag ? document.createElement(tag) : td;
    inner.textContent = text;
    if (tag) td.appendChild(inner);
    return td;
  };
  stream.addEventListener("open", () => { state.textContent = "Live: new events appear at the top."; });
  stream.addEventListener("error", () => { state.textContent = "Live view paused; reload the page to see new events."; });
  stream.addEventListener("cloudevent", (message) => {
    const event = JSON.parse(message.data);
    if (document.getElementById("event-" + event.id)) return;
    const row = table.tBodies[0].insertRow(0);
    row.id = "event-" + event.id;
    const link = document.createElement("a");
    link.href = root + "/" + encodeURIComponent(event.id);
    link.textContent = String(event.time).slice(0, 19).replace("T", " ");
    row.insertCell().appendChild(link);
    cell(row, event.type, "code");
    cell(row, event.source, "code").firstChild.className = "muted";
    cell(row, event.subject || "—");
    const badge = cell(row, "published", "span").firstChild;
    badge.className = "badge ok";
    cell(row, "new", "span").firstChild.className = "muted";
    table.closest(".table-wrap").hidden = false;
    const empty = document.getElementById("no-events");
    if (empty) empty.hidden = true;
  });
}

// The virtual MCP form: a search over connections and tools, and the names clients will see, asked of the
// server whenever a choice changes (it names them as saving does; this file holds no naming rule).
function searchTools(form, input) {
  const count = document.getElementById("tool-search-count");
  const query = input.value.trim().toLowerCase();
  let connections = 0;
  let tools = 0;
  for (const set of form.querySelectorAll("fieldset.connection-choice")) {
    const titleMatches = !query || set.dataset.title.includes(query);
    let matching = 0;  // tools whose own name matches (a matching title shows all of its tools)
    for (const row of set.querySelectorAll("tr[data-tool]")) {
      const match = row.dataset.tool.includes(query);
      row.hidden = !match && !titleMatches;
      if (match && query) matching += 1;
    }
    set.hidden = !titleMatches && matching === 0;
    set.querySelector(".matching").textContent = matching ? `, ${matching} matching` : "";
    if (!set.hidden) { connections += 1; tools += matching; }
  }
  count.textContent = query ? `${connections} connection${connections === 1 ? "" : "s"} and ${tools} tool${tools === 1 ? "" : "s"} match.` : "";
}

function previewNames(form, preview) {
  let asked = 0;
  let timer = null;
  const list = document.getElementById("exposed-names");
  const count = document.getElementById("names-count");
  const refresh = async () => {
    const mine = ++asked;
    preview.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(preview.dataset.preview, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok || mine !== asked) return;
      const answer = await response.json();
      for (const [name, shown] of Object.entries(answer.names)) {
        const field = form.elements.namedItem(name);
        if (!field) continue;
        field.placeholder = shown;
        const tool = name.split(":").slice(2).join(":");
        field.closest("tr").dataset.tool = `${tool.toLowerCase()} ${shown.toLowerCase()}`;
      }
      list.replaceChildren(...answer.exposed.map((shown) => {
        const item = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = shown;
        item.appendChild(code);
        return item;
      }));
      count.textContent = count.textContent.replace(/^\d+ tools?/, `${answer.exposed.length} tool${answer.exposed.length === 1 ? "" : "s"}`);
      const search = document.getElementById("tool-search");
      if (search.value) searchTools(form, search);
    } finally {
      if (mine === asked) preview.removeAttribute("aria-busy");
    }
  };
  const soon = () => {
    preview.setAttribute("aria-busy", "true");
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  };
  form.addEventListener("change", (event) => { if (event.target.id !== "tool-search") soon(); });
  form.addEventListener("input", (event) => { if ((event.target.name || "").startsWith("name:")) soon(); });
}

function virtualForm(form) {
  const search = form.querySelector("[data-tool-search]");
  const input = document.getElementById("tool-search");
  search.hidden = false;
  input.addEventListener("input", () => searchTools(form, input));
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  // An unticked connection's tool fields mean nothing to the server: leaving them out keeps a form over many
  // connections under the gateway's limit on form fields (saving and every preview go through here).
  form.addEventListener("formdata", (event) => {
    for (const set of form.querySelectorAll("fieldset.connection-choice")) {
      if (set.querySelector("input[data-include]").checked) continue;
      for (const field of set.querySelectorAll(".connection-tools [name]")) event.formData.delete(field.name);
    }
  });
  const preview = form.querySelector("[data-preview]");
  if (preview) previewNames(form, preview);
}

document.addEventListener("DOMContentLoaded", () => {
  const state = document.getElementById("live-state");
  if (state) watchEvents(state);
  const search = document.querySelector("[data-tool-search]");
  if (search) virtualForm(search.closest("form"));
});
