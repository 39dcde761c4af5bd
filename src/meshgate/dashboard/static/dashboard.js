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
