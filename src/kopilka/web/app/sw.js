// The member app's service worker (served at /app/sw.js with its version and file list
// filled in by the server).
//
// - The app shell (styles, modules, icons, manifest, offline page) is precached per
//   version; a new version waits until the page asks it to take over (update banner).
// - Pages are network-first: each page that loads is kept (Cache Storage), and shown
//   when there is no network, so the card, the balance, the history and the invite
//   screen work in a basement. The copies are dropped when the member signs out.
// - Push messages become notifications; a tap opens the app at the message's page.

const VERSION = __VERSION__;
const PRECACHE = __PRECACHE__;
const STATIC_CACHE = `kopilka-static-${VERSION}`;
const PAGES_CACHE = "kopilka-pages";
const KEPT_PAGES = new Set(["/app/", "/app/history", "/app/invite", "/app/profile"]);
const NETWORK_TIMEOUT_MS = 6000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(STATIC_CACHE)
      .then((cache) =>
        cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload", credentials: "same-origin" }))),
      ),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("kopilka-static-") && name !== STATIC_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "SKIP_WAITING") self.skipWaiting();
  if (data.type === "KEEP" && Array.isArray(data.urls)) event.waitUntil(keep(data.urls));
  if (data.type === "VERSION" && event.source) event.source.postMessage({ type: "VERSION", version: VERSION });
});

function keepable(url) {
  if (url.origin !== self.location.origin) return false;
  if (KEPT_PAGES.has(url.pathname) && !url.search) return true;
  return /^\/app\/receipts\/[0-9a-f-]{36}$/.test(url.pathname);
}

async function store(request, response) {
  const url = new URL(request.url);
  if (url.pathname === "/app/sign-in") {
    await caches.delete(PAGES_CACHE); // signed out (or never signed in): keep nobody's pages
    return;
  }
  if (response.ok && response.type === "basic" && !response.redirected && keepable(url)) {
    const cache = await caches.open(PAGES_CACHE);
    await cache.put(url.href, response);
  }
}

async function keep(urls) {
  for (const path of urls) {
    try {
      const request = new Request(path, { credentials: "same-origin", redirect: "manual" });
      const response = await fetch(request);
      await store(request, response);
    } catch {
      // offline: keep what we have
    }
  }
}

function timeout(ms) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms));
}

async function page(event) {
  const request = event.request;
  const network = fetch(request).then((response) => ({
    response,
    saved: store(request, response.clone()),
  }));
  event.waitUntil(network.then((got) => got.saved).catch(() => {}));
  try {
    const got = await Promise.race([network, timeout(NETWORK_TIMEOUT_MS)]);
    return got.response;
  } catch {
    const cached = await caches.match(request.url, { cacheName: PAGES_CACHE, ignoreVary: true });
    if (cached) return cached;
    const offline = await caches.match("/app/offline", { cacheName: STATIC_CACHE, ignoreVary: true });
    return offline || Response.error();
  }
}

async function asset(request) {
  const cached = await caches.match(request, { cacheName: STATIC_CACHE, ignoreSearch: true, ignoreVary: true });
  return cached || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith("/app/")) return;
  if (request.mode === "navigate") {
    event.respondWith(page(event));
    return;
  }
  if (
    url.pathname.startsWith("/app/static/") ||
    url.pathname.startsWith("/app/icons/") ||
    url.pathname === "/app/theme.css" ||
    url.pathname === "/app/manifest.webmanifest"
  ) {
    event.respondWith(asset(request));
  }
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(message.title || "Kopilka", {
      body: message.body || "",
      tag: message.tag || undefined,
      icon: "/app/icons/icon-192.png",
      badge: "/app/icons/icon-192.png",
      data: { url: message.url || "/app/" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/app/", self.location.origin);
  if (target.origin !== self.location.origin || !target.pathname.startsWith("/app/")) return;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).pathname.startsWith("/app/") && "focus" in client) {
          await client.focus();
          return client.navigate(target.href);
        }
      }
      return self.clients.openWindow(target.href);
    })(),
  );
});
