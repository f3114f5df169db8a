// The challenges page: "Take part" opts the member in (the app's own call), then the page
// is read again with the challenge counting.
import { api, problemText, words } from "./api.js";

const w = words();
const status = document.getElementById("join-status");
for (const button of document.querySelectorAll(".join-challenge")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("POST", `/api/v1/app/challenges/${encodeURIComponent(button.dataset.code)}/join`, {});
      if (status) status.textContent = w.joined_ok;
      location.reload();
    } catch (error) {
      button.disabled = false;
      if (status) status.textContent = problemText(error, w);
    }
  });
}
