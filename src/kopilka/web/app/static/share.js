// Share the member's invite link: the Web Share sheet where there is one, else the link
// copied, else the link shown to copy by hand.
import { fill } from "./api.js";

export function setupShare(w) {
  const section = document.getElementById("referral");
  const status = document.getElementById("share-status");
  document.getElementById("share").addEventListener("click", async () => {
    const url = section.dataset.url;
    const text = fill(w.share_text, { app: section.dataset.app, code: section.dataset.code });
    status.textContent = "";
    if (navigator.share) {
      try {
        await navigator.share({ title: section.dataset.app, text, url });
        return;
      } catch (error) {
        if (error && error.name === "AbortError") return;
      }
    }
    try {
      await navigator.clipboard.writeText(`${text} ${url}`);
      status.textContent = w.copied;
    } catch {
      status.textContent = url;
    }
  });
}
