// The sticker card: claim a coupon reward (its cost debited, a code issued), then reload.
import { api, fill, problemText, words } from "./api.js";

export function start() {
  const w = words();
  for (const button of document.querySelectorAll("button.claim")) {
    button.addEventListener("click", async () => {
      const status = button.parentElement.querySelector(".status");
      button.disabled = true;
      const key = `app-${button.dataset.code}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      try {
        const claim = await api(
          "POST",
          `/api/v1/members/${button.dataset.member}/rewards/${encodeURIComponent(button.dataset.code)}/claim`,
          undefined,
          { "Idempotency-Key": key },
        );
        status.textContent = fill(w.stickers_claimed, { code: claim.coupon_code });
      } catch (error) {
        status.textContent = fill(w.stickers_claim_failed, { why: problemText(error, w) });
        button.disabled = false;
      }
    });
  }
}
