// The card screen: the rotating code as digits and as a QR code, redrawn every step,
// working offline from the device's secret in the page.
import { api, fill } from "./api.js";
import { cardCode, clockOffset, rememberServerTime } from "./cardcode.js";
import { encodeNumeric, renderSvg } from "./qr.js";

function groups(code) {
  const out = [];
  for (let i = 0; i < code.length; i += 4) {
    const span = document.createElement("span");
    span.textContent = code.slice(i, i + 4);
    out.push(span);
  }
  return out;
}

async function syncClock() {
  if (!navigator.onLine) return;
  const sentAt = Date.now();
  try {
    const body = await api("GET", "/api/v1/app/card");
    rememberServerTime(body.server_time, sentAt, Date.now());
  } catch {
    // offline or signed out: the last known offset stays
  }
}

let wakeLock = null;
async function keepScreenOn() {
  if (!("wakeLock" in navigator) || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
  } catch {
    wakeLock = null;
  }
}

export function start(w) {
  const card = document.getElementById("card");
  if (!card) return;
  const params = {
    device: card.dataset.device,
    secret: card.dataset.secret,
    step: Number(card.dataset.step),
    digits: Number(card.dataset.digits),
  };
  const codeEl = document.getElementById("card-code");
  const largeEl = document.getElementById("card-code-large");
  const qrEl = document.getElementById("card-qr");
  const timerEl = document.getElementById("card-timer");
  const errorEl = document.getElementById("card-code-error");
  const dialog = document.getElementById("large-code");
  let shown = "";

  async function tick() {
    const ms = Date.now() + clockOffset();
    let code;
    try {
      code = await cardCode(params, ms);
    } catch {
      errorEl.hidden = false; // no WebCrypto here (an insecure origin)
      return;
    }
    if (code !== shown) {
      shown = code;
      codeEl.replaceChildren(...groups(code));
      largeEl.replaceChildren(...groups(code));
      const label = fill(w.qr_label, { code });
      qrEl.replaceChildren(renderSvg(document, encodeNumeric(code), label));
      qrEl.setAttribute("aria-label", label);
    }
    const left = params.step - ((ms / 1000) % params.step);
    timerEl.style.width = `${(left / params.step) * 100}%`;
  }

  tick();
  setInterval(tick, 1000);
  syncClock();
  keepScreenOn();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      tick();
      if (!wakeLock) keepScreenOn();
    } else {
      wakeLock = null;
    }
  });
  document.getElementById("show-large").addEventListener("click", () => {
    if (typeof dialog.showModal === "function") dialog.showModal();
  });
}
