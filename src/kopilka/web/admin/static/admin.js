// Kopilka console: small progressive enhancements. The pages work without it.
import { enhanceCharts } from "./charts.js";

function confirmForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function oneSubmit() {
  // A second click while the first post is on its way would only be refused; say so early.
  for (const form of document.querySelectorAll("form[method='post']")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button[type='submit']")) {
        setTimeout(() => { b.disabled = true; }, 0);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  confirmForms();
  oneSubmit();
  enhanceCharts(document);
});
