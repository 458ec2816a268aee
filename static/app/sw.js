// Manchengo Livraisons — service worker (UI.md §6, PLATFORM §16). The shell is precached under a version name the
// server writes into this file; every navigation under /app/ is answered with the cached shell; /api/ is never
// cached. A new version waits until the page asks it to take over (after the outbox is pushed or the driver agrees).
const VERSION = "livraisons-__VERSION__";
const SHELL = ["/app/", "/app/app.js", "/app/app.css", "/app/manifest.webmanifest", "/app/icon-192.png",
  "/app/icon-512.png", "/app/icon-maskable-512.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((c) => c.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "activer") {
    self.skipWaiting();
  }
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/") || event.request.method !== "GET") {
    return;
  }
  if (event.request.mode === "navigate" && url.pathname.startsWith("/app/")) {
    event.respondWith(
      caches.open(VERSION).then((c) => c.match("/app/")).then((shell) => shell || fetch(event.request))
    );
    return;
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith(caches.open(VERSION).then((c) => c.match(url.pathname)).then((hit) => hit || fetch(event.request)));
  }
});
