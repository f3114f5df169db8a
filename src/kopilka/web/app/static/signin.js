// Sign-in with a one-time code: ask for it by phone or email, then type it in.
import { api, fill, problemText } from "./api.js";

export function start(w) {
  const ask = document.getElementById("ask-form");
  const verify = document.getElementById("verify-form");
  const askError = document.getElementById("ask-error");
  const verifyError = document.getElementById("verify-error");
  const destination = document.getElementById("destination");
  const code = document.getElementById("code");
  let challenge = null;

  ask.addEventListener("submit", async (event) => {
    event.preventDefault();
    askError.textContent = "";
    const value = destination.value.trim();
    if (!value) {
      destination.focus();
      return;
    }
    const body = value.includes("@") ? { email: value } : { phone: value };
    body.lang = document.documentElement.lang;
    try {
      const sent = await api("POST", "/api/v1/app/sign-in/code", body);
      challenge = sent.challenge;
      document.getElementById("sent-to").textContent = fill(w.code_sent_maybe, { to: sent.sent_to });
      ask.hidden = true;
      verify.hidden = false;
      code.value = "";
      code.focus();
    } catch (error) {
      askError.textContent = problemText(error, w);
      destination.setAttribute("aria-invalid", "true");
    }
  });

  verify.addEventListener("submit", async (event) => {
    event.preventDefault();
    verifyError.textContent = "";
    try {
      await api("POST", "/api/v1/app/sign-in/verify", { challenge, code: code.value.trim() });
      location.replace(ask.dataset.next || "/app/");
    } catch (error) {
      verifyError.textContent = problemText(error, w);
      code.setAttribute("aria-invalid", "true");
      code.select();
    }
  });

  document.getElementById("restart").addEventListener("click", () => {
    verify.hidden = true;
    ask.hidden = false;
    destination.focus();
  });
}
