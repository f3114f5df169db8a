// The profile: share the referral link, consents, push notifications, devices, sign-out.
import { api, forgetPages, problemText } from "./api.js";
import { base64urlToBytes } from "./cardcode.js";
import { setupShare } from "./share.js";

function setupConsents(w) {
  const form = document.getElementById("consents-form");
  const status = document.getElementById("consents-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const body = {};
    for (const name of ["email", "sms", "push"]) body[name] = form.elements[name].checked;
    try {
      await api("POST", "/api/v1/app/consents", body);
      status.textContent = w.saved;
    } catch (error) {
      status.textContent = problemText(error, w);
    }
  });
}

async function setupPush(w) {
  const button = document.getElementById("push-toggle");
  const status = document.getElementById("push-status");
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    status.textContent = w.notifications_unsupported;
    return;
  }
  const registration = await navigator.serviceWorker.ready;
  let subscription = await registration.pushManager.getSubscription();
  const show = () => {
    button.hidden = false;
    button.textContent = subscription ? w.notifications_off : w.notifications_on;
    if (Notification.permission === "denied") status.textContent = w.notifications_blocked;
    else status.textContent = subscription ? w.notifications_enabled : w.notifications_disabled;
  };
  show();
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (subscription) {
        await api("POST", "/api/v1/app/push/unsubscribe", { endpoint: subscription.endpoint });
        await subscription.unsubscribe();
        subscription = null;
      } else {
        if ((await Notification.requestPermission()) !== "granted") {
          status.textContent = w.notifications_blocked;
          return;
        }
        const { public_key: key } = await api("GET", "/api/v1/app/push/key");
        subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: base64urlToBytes(key),
        });
        await api("POST", "/api/v1/app/push/subscriptions", {
          ...subscription.toJSON(),
          lang: document.documentElement.lang,
        });
      }
      show();
    } catch (error) {
      status.textContent = problemText(error, w);
    } finally {
      button.disabled = false;
    }
  });
}

function setupDevices(w) {
  for (const button of document.querySelectorAll("button.revoke")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("POST", `/api/v1/app/sessions/${button.dataset.id}/revoke`, {});
        button.closest("li").remove();
      } catch (error) {
        button.disabled = false;
        button.textContent = problemText(error, w);
      }
    });
  }
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/app/sign-out", {});
    } catch {
      // signed out already, or offline: forget this phone's copy either way
    }
    await forgetPages();
    location.replace("/app/sign-in");
  });
}

export function start(w) {
  setupShare(w);
  setupConsents(w);
  setupDevices(w);
  setupPush(w);
}
