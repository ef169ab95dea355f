// The service worker of the passenger web app: the app's pages and assets from the cache
// when offline (never the API: a price or a ticket must be fresh), and Web Push messages.
"use strict";

const CACHE = "bibo-app-v1";
const SHELL = [
  "/app/", "/app/start", "/app/month", "/app/invoices", "/app/disputes", "/app/tickets",
  "/app/account", "/app/static/app.js", "/app/static/app.css", "/app/static/icon.svg",
  "/app/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).catch(() => {}).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE && k !== "bibo-prefs").map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const cacheable = event.request.method === "GET" && url.origin === self.location.origin &&
    url.pathname.startsWith("/app/") && !url.pathname.startsWith("/app/invoices/open/");
  if (!cacheable) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || caches.match("/app/"))),
  );
});

async function language() {
  try {
    const hit = await (await caches.open("bibo-prefs")).match("/app/lang");
    return hit && (await hit.text()) === "en" ? "en" : "de";
  } catch (e) {
    return "de";
  }
}

self.addEventListener("push", (event) => {
  event.waitUntil((async () => {
    let message = {};
    try {
      message = event.data ? event.data.json() : {};
    } catch (e) {
      message = {};
    }
    const lang = await language();
    const texts = (message.texts && message.texts[lang]) || { title: "bibo", body: "" };
    await self.registration.showNotification(texts.title, {
      body: texts.body,
      lang,
      tag: "bibo-" + (message.trip_id || "") + "-" + (message.kind || ""),
      icon: "/app/static/icon.svg",
      data: { url: lang === "en" ? "/app/?lang=en" : "/app/" },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/app/";
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of open) {
      if (new URL(client.url).pathname.startsWith("/app/") && "focus" in client) {
        await client.navigate(url);
        return client.focus();
      }
    }
    return self.clients.openWindow(url);
  })());
});
