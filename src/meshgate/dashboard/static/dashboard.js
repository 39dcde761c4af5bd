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

document.addEventListener("DOMContentLoaded", () => {
  const state = document.getElementById("live-state");
  if (state) watchEvents(state);
});
