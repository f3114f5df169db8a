// The invitation page: a friend joins with a phone and a one-time code, and lands signed
// in on the card (or, for a phone that has a card already, is told so, signed in).
import { api, fill, forgetPages, problemText } from "./api.js";

export function start(w) {
  const ask = document.getElementById("join-form");
  if (!ask) return; // a member signed in: nothing to join
  const verify = document.getElementById("join-verify-form");
  const askError = document.getElementById("join-error");
  const verifyError = document.getElementById("join-verify-error");
  const phone = document.getElementById("join-phone");
  const name = document.getElementById("join-name");
  const code = document.getElementById("join-code");
  const referral = ask.dataset.code;
  let challenge = null;

  ask.addEventListener("submit", async (event) => {
    event.preventDefault();
    askError.textContent = "";
    const value = phone.value.trim();
    if (!value) {
      phone.focus();
      return;
    }
    try {
      const sent = await api("POST", "/api/v1/app/join/code", {
        phone: value,
        referral_code: referral,
        lang: document.documentElement.lang,
      });
      challenge = sent.challenge;
      document.getElementById("join-sent-to").textContent = fill(w.code_sent, { to: sent.sent_to });
      ask.hidden = true;
      verify.hidden = false;
      code.value = "";
      code.focus();
    } catch (error) {
      askError.textContent = problemText(error, w);
      phone.setAttribute("aria-invalid", "true");
    }
  });

  verify.addEventListener("submit", async (event) => {
    event.preventDefault();
    verifyError.textContent = "";
    try {
      const body = { challenge, code: code.value.trim(), phone: phone.value.trim(), referral_code: referral };
      if (name.value.trim()) body.name = name.value.trim();
      const done = await api("POST", "/api/v1/app/join/verify", body);
      await forgetPages(); // whoever this browser showed before
      if (done.joined) {
        location.replace("/app/");
        return;
      }
      verify.hidden = true;
      document.getElementById("join-member").hidden = false;
    } catch (error) {
      verifyError.textContent = problemText(error, w);
      code.setAttribute("aria-invalid", "true");
      code.select();
    }
  });

  document.getElementById("join-restart").addEventListener("click", () => {
    verify.hidden = true;
    ask.hidden = false;
    phone.focus();
  });
}
