// The leaderboard: take part or not, with a nickname; the page is shown again after.
import { api, problemText } from "./api.js";

export function start(w) {
  const form = document.getElementById("leaderboard-form");
  if (!form) return;
  const status = document.getElementById("leaderboard-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const body = {
      opted_in: form.elements.opted_in.checked,
      nickname: form.elements.nickname.value.trim() || null,
    };
    try {
      await api("PUT", `/api/v1/members/${form.dataset.member}/leaderboard`, body);
      status.textContent = w.saved;
      location.reload();
    } catch (error) {
      const bad = error.problem && error.problem.errors && error.problem.errors[0];
      status.textContent = bad ? bad.message : problemText(error, w);
    }
  });
}
