// Every page: the service worker (offline copies, updates), the offline banner, and the
// page's own module.
import { fill, words } from "./api.js";

// The pages kept for offline use while signed in (the service worker refreshes them).
const KEPT = ["/app/", "/app/history", "/app/invite", "/app/profile"];

function offlineBanner(w) {
  const banner = document.getElementById("offline-banner");
  const show = () => {
    banner.textContent = fill(w.offline_banner, { when: document.body.dataset.asOfText });
    banner.hidden = navigator.onLine;
  };
  window.addEventListener("online", show);
  window.addEventListener("offline", show);
  show();
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  const registration = await navigator.serviceWorker.register("/app/sw.js", {
    scope: "/app/",
    updateViaCache: "none",
  });
  const banner = document.getElementById("update-banner");
  const offer = (worker) => {
    banner.hidden = false;
    document.getElementById("update-reload").onclick = () => worker.postMessage({ type: "SKIP_WAITING" });
  };
  if (registration.waiting && hadController) offer(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    if (!worker) return;
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed" && navigator.serviceWorker.controller) offer(worker);
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (!hadController || reloading) return; // the first install takes over quietly
    reloading = true;
    location.reload();
  });
  const ready = await navigator.serviceWorker.ready;
  if (document.querySelector('meta[name="csrf-token"]') && navigator.onLine && ready.active) {
    ready.active.postMessage({ type: "KEEP", urls: KEPT });
  }
  setInterval(() => registration.update().catch(() => {}), 60 * 60 * 1000);
}

const MODULES = {
  card: "./card.js",
  "sign-in": "./signin.js",
  link: "./link.js",
  profile: "./profile.js",
  invite: "./invite.js",
  invited: "./join.js",
  challenges: "./challenges.js",
};

async function main() {
  const w = words();
  offlineBanner(w);
  const module = MODULES[document.body.dataset.page];
  if (module) (await import(module)).start(w);
  registerServiceWorker().catch(() => {});
}

main();
