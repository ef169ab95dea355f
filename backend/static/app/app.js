// The passenger web app: fills the /app pages from the passenger API (docs in
// backend/app_web/__init__.py). No framework, no build step, nothing from another origin.
// What the API returns is written as text (textContent), never as HTML.
"use strict";

(function () {
  const ACCOUNT = "bibo.account";
  const LANG_KEY = "bibo.lang";
  const body = document.body;
  const LANG = body.dataset.lang === "en" ? "en" : "de";
  const T = JSON.parse(document.getElementById("bibo-texts").textContent);
  const TZ = "Europe/Berlin";

  // --- small helpers ----------------------------------------------------------------------

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function money(cents) {
    const sign = cents < 0 ? "-" : "";
    const abs = Math.abs(cents);
    const euros = Math.floor(abs / 100);
    const rest = String(abs % 100).padStart(2, "0");
    return LANG === "de" ? `${sign}${euros},${rest} €` : `${sign}€${euros}.${rest}`;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", timeZone: TZ });
  }

  function dateTime(ms) {
    return new Date(ms).toLocaleString(LANG, {
      day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: TZ,
    });
  }

  function localDate(ms) {
    // YYYY-MM-DD in Berlin; the service day starts at 03:00.
    return new Date(ms - 3 * 3600 * 1000).toLocaleDateString("sv-SE", { timeZone: TZ });
  }

  function currentMonth() {
    return new Date().toLocaleDateString("sv-SE", { timeZone: TZ }).slice(0, 7);
  }

  // `detail`: the server's own words (English, as the API has them), after the rider's text.
  function flash(text, isError, detail) {
    const box = $("flash");
    if (!box) return;
    box.replaceChildren(text);
    if (detail) {
      box.append(" ", el("span", { class: "detail", text: `(${T.error_detail}: ` }),
        el("span", { class: "detail", lang: "en", text: detail }), el("span", { class: "detail", text: ")" }));
    }
    box.classList.toggle("error", Boolean(isError));
  }

  function withLang(path) {
    if (LANG === "de") return path;
    return path + (path.includes("?") ? "&" : "?") + "lang=en";
  }

  // --- the account, kept in this browser ---------------------------------------------------

  function account() {
    try {
      return JSON.parse(localStorage.getItem(ACCOUNT) || "null");
    } catch (e) {
      return null;
    }
  }

  function saveAccount(value) {
    if (value) localStorage.setItem(ACCOUNT, JSON.stringify(value));
    else localStorage.removeItem(ACCOUNT);
  }

  function me() {
    const a = account();
    return a ? "/v1/passengers/" + encodeURIComponent(a.passenger_id) : null;
  }

  class ApiError extends Error {
    constructor(status, message, detail) {
      super(message);
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = {};
    const a = account();
    if (a) headers.Authorization = "Bearer " + a.token;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: opts.method || "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: "no-store",
    });
    if (!response.ok) {
      let detail = "";
      try {
        const data = await response.json();
        detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      } catch (e) {
        detail = response.statusText;
      }
      if (response.status === 401 && !opts.quiet) flash(T.signed_out, true);
      const said = T[`error_${response.status}`] || (response.status >= 500 ? T.error_server : T.error);
      throw new ApiError(response.status, `${T.error} ${response.status}: ${said}`, detail);
    }
    if (opts.raw) return response;
    return response.status === 204 ? null : response.json();
  }

  function failed(error) {
    flash(error && error.message ? error.message : T.error, true, error && error.detail);
  }

  // --- pages -------------------------------------------------------------------------------

  async function statusPage() {
    const base = me();
    await Promise.all([loadLive(base), loadTicket(base), loadPrice(base, currentMonth()), loadToday(base)]);
    const statusEvery = Number(body.dataset.statusRefresh || 60) * 1000;
    setInterval(() => { if (!document.hidden) loadLive(base); }, statusEvery);
    streamEvents(base, (message) => {
      const texts = (message.texts && message.texts[LANG]) || { title: message.kind, body: "" };
      $("messages").prepend(el("li", {}, el("strong", { text: texts.title }), " ", texts.body));
      loadLive(base);
      loadTicket(base);
      loadPrice(base, currentMonth());
      loadToday(base);
    });
  }

  async function loadLive(base) {
    try {
      const s = await api(base + "/status");
      const stop = s.stop_name || s.stop_id || "–";
      let text = T.no_trip;
      if (s.state === "checked_in") {
        text = fill(T.on_bus, { line: s.line, vehicle: s.vehicle_id, stop, time: clock(s.at) });
      } else if (s.state === "checked_out") {
        text = fill(T.off_bus, { stop, time: clock(s.at) });
      }
      $("live").textContent = text;
    } catch (e) {
      failed(e);
    }
  }

  let ticketUrl = null;
  let ticketTimer = null;

  // The ticket (backend/tickets/): its QR's time code changes every 30 s, so it is fetched
  // again when the API says (refresh_at_s), or every TICKET_REFRESH_S without an answer.
  async function loadTicket(base) {
    const box = $("ticket");
    let ticket = null;
    let svg = null;
    try {
      ticket = await api(base + "/ticket", { quiet: true });
      svg = await (await api(base + "/ticket.svg", { raw: true, quiet: true })).blob();
    } catch (e) {
      ticket = null; // 409: not on board; 404 before the ticket routes exist; 503: no keys
    }
    box.replaceChildren();
    if (ticketUrl) URL.revokeObjectURL(ticketUrl);
    ticketUrl = null;
    clearTimeout(ticketTimer);
    const every = Number(body.dataset.ticketRefresh || 30) * 1000;
    let next = every;
    if (!ticket) {
      box.append(el("p", { text: T.no_ticket }));
    } else {
      ticketUrl = URL.createObjectURL(svg);
      box.append(el("img", { src: ticketUrl, alt: T.ticket_alt, width: "288", height: "288" }));
      const stop = ticket.board_stop_name || ticket.board_stop_id;
      box.append(el("p", { text: fill(T.ticket_ride, { vehicle: ticket.vehicle_id, stop, time: clock(ticket.boarded_at) }) }));
      const facts = [fill(T.ticket_valid_until, { time: clock(ticket.valid_until) })];
      if (ticket.state === "provisional") facts.push(T.provisional);
      box.append(el("p", { class: ticket.state === "provisional" ? "badge warn" : "muted", text: facts.join(" · ") }));
      if (typeof ticket.refresh_at_s === "number") {
        next = Math.min(every, Math.max(1000, ticket.refresh_at_s * 1000 - Date.now() + 250));
      }
    }
    ticketTimer = setTimeout(() => {
      if (!document.hidden) loadTicket(base);
      else ticketTimer = setTimeout(() => loadTicket(base), every);
    }, next);
  }

  async function loadPrice(base, month) {
    try {
      const b = await api(`${base}/balance?month=${month}&lang=${LANG}`);
      $("price").textContent = money(b.total_cents);
      const explanation = $("explanation");
      if (explanation) explanation.textContent = b.explanation;
      if (b.saving_cents > 0) {
        $("price").append(el("span", { class: "muted" }, " (", fill(T.saving, { amount: money(b.saving_cents) }), ")"));
      }
    } catch (e) {
      failed(e);
    }
  }

  function tripLine(t) {
    const from = t.board_stop_name || t.board_stop_id;
    // An open trip's alighting stop is only where the bus is now: the ride goes on.
    const to = t.status === "open" ? "…" : t.alight_stop_name || t.alight_stop_id;
    const parts = [
      el("strong", { text: `${dateTime(t.board_time)} · ${t.line}` }),
      " ",
      fill(T.from_to, { from, to }),
    ];
    if (t.status === "open") parts.push(" ", el("span", { class: "badge", text: T.open }));
    if (t.corrected) parts.push(" ", el("span", { class: "badge warn", text: T.corrected }));
    return parts;
  }

  async function loadToday(base) {
    try {
      const trips = await api(`${base}/trips?month=${currentMonth()}`);
      const today = localDate(Date.now());
      const list = $("today");
      list.replaceChildren();
      const mine = trips.filter((t) => t.service_day === today);
      if (!mine.length) list.append(el("li", { text: T.no_trips }));
      for (const t of mine) list.append(el("li", {}, ...tripLine(t)));
    } catch (e) {
      failed(e);
    }
  }

  // Server-Sent Events over fetch: EventSource cannot send the Authorization header.
  async function streamEvents(base, onMessage) {
    let lastId = null;
    for (;;) {
      try {
        const headers = { Authorization: "Bearer " + account().token, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(base + "/events", { headers, cache: "no-store" });
        if (response.status === 401 || response.status === 404) return;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let data = "";
            let id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("data: ")) data += line.slice(6);
              else if (line.startsWith("id: ")) id = line.slice(4);
            }
            if (id !== null) lastId = id;
            if (data) {
              try {
                onMessage(JSON.parse(data));
              } catch (e) {
                /* a message this version cannot read */
              }
            }
          }
        }
      } catch (e) {
        /* offline: try again below */
      }
      await new Promise((resolve) => setTimeout(resolve, 4000));
    }
  }

  async function startPage() {
    $("signup").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const category = $("category").value;
        const p = await api("/v1/passengers", { method: "POST", body: { rider_category: category } });
        saveAccount({ passenger_id: p.passenger_id, token: p.token });
        await registerDevice();
        showCredentials();
        flash(`${T.account_created} ${T.device_registered}`);
      } catch (e) {
        failed(e);
      }
    });
    $("signin").addEventListener("submit", async (event) => {
      event.preventDefault();
      const previous = account();
      saveAccount({ passenger_id: $("signin-id").value.trim(), token: $("signin-token").value.trim() });
      try {
        await api(me() + "/status");
        showCredentials();
        flash(T.signed_in);
      } catch (e) {
        saveAccount(previous);
        failed(e);
      }
    });
    if (account()) showCredentials();
  }

  function showCredentials() {
    const a = account();
    $("credentials").hidden = false;
    $("cred-id").textContent = a.passenger_id;
    $("cred-token").textContent = a.token;
    $("cred-device").textContent = a.device_id || "–";
  }

  async function registerDevice() {
    const d = await api(me() + "/devices", { method: "POST" });
    const a = account();
    a.device_id = d.device_id;
    a.device_key = d.device_key; // the phone derives its Bluetooth tokens from it
    saveAccount(a);
    return d;
  }

  async function monthPage() {
    const base = me();
    const input = $("month-input");
    input.value = new URLSearchParams(location.search).get("month") || currentMonth();
    const load = async () => {
      await loadPrice(base, input.value);
      await loadMonthTrips(base, input.value);
    };
    $("month-form").addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    await load();
  }

  async function loadMonthTrips(base, month) {
    const list = $("trips");
    try {
      const trips = await api(`${base}/trips?month=${month}`);
      list.replaceChildren();
      if (!trips.length) list.append(el("li", { text: T.no_trips }));
      for (const t of trips) list.append(tripItem(base, t));
    } catch (e) {
      failed(e);
    }
  }

  function tripItem(base, t) {
    const id = t.trip_id.replace(/[^A-Za-z0-9_-]/g, "");
    const reason = el("textarea", { id: `reason-${id}`, name: "reason", required: true, minlength: "3", maxlength: "1000", rows: "2" });
    const dispute = el(
      "form", { class: "card", onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api(`${base}/trips/${encodeURIComponent(t.trip_id)}/disputes`, { method: "POST", body: { reason: reason.value } });
          flash(T.sent);
          reason.value = "";
        } catch (e) {
          failed(e);
        }
      } },
      el("label", { for: `reason-${id}`, text: T.dispute_reason }), reason,
      el("button", { type: "submit", text: T.dispute }),
    );
    const counts = {};
    const fields = [["adult", T.adults], ["child", T.children], ["infant", T.infants], ["bike", T.bikes]].map(([key, label]) => {
      const input = el("input", { id: `c-${key}-${id}`, type: "number", min: "0", max: "5", value: String((t.party || {})[key] || 0), inputmode: "numeric" });
      counts[key] = input;
      return el("div", {}, el("label", { for: `c-${key}-${id}`, text: label }), input);
    });
    const companions = el(
      "form", { class: "card", onsubmit: async (event) => {
        event.preventDefault();
        const party = {};
        for (const [key, input] of Object.entries(counts)) party[key] = Number(input.value || 0);
        try {
          const r = await api(`${base}/trips/${encodeURIComponent(t.trip_id)}/companions`, { method: "PUT", body: party });
          flash(`${T.saved} ${money(r.total_cents)}`);
        } catch (e) {
          failed(e);
        }
      } },
      el("fieldset", {}, el("legend", { text: T.companions }), el("div", { class: "counts" }, ...fields)),
      el("button", { type: "submit", text: T.save }),
    );
    return el("li", {}, ...tripLine(t),
      el("details", {}, el("summary", { text: T.companions }), companions),
      el("details", {}, el("summary", { text: T.dispute }), dispute));
  }

  async function invoicesPage() {
    const base = me();
    const list = $("invoices");
    try {
      const invoices = await api(base + "/invoices");
      const newest = {};
      for (const i of invoices) newest[i.month] = Math.max(newest[i.month] || 0, i.version);
      list.replaceChildren();
      if (!invoices.length) list.append(el("li", { text: T.no_invoices }));
      for (const i of invoices.slice().reverse()) {
        const superseded = i.version < newest[i.month];
        const state = superseded ? fill(T.superseded, { n: newest[i.month] }) : T.current;
        const open = el("button", {
          type: "button",
          class: superseded ? "secondary" : null,
          "aria-label": fill(T.open_invoice, { month: i.month, n: i.version }),
          text: "↗ " + i.month,
          onclick: async () => {
            try {
              const link = await api(`${base}/invoices/${i.invoice_id}/link?lang=${LANG}`, { method: "POST" });
              location.assign(link.url);
            } catch (e) {
              failed(e);
            }
          },
        });
        list.append(el("li", {},
          el("strong", { text: `${i.month} · ${fill(T.version, { n: i.version })} · ${money(i.total_cents)}` }), " ",
          el("span", { class: superseded ? "badge warn" : "badge", text: state }), " ", open));
      }
    } catch (e) {
      failed(e);
    }
  }

  async function disputesPage() {
    const list = $("disputes");
    try {
      const disputes = await api(me() + "/disputes");
      list.replaceChildren();
      if (!disputes.length) list.append(el("li", { text: T.no_disputes }));
      for (const d of disputes) {
        list.append(el("li", {},
          el("strong", { text: dateTime(Date.parse(d.created_at)) }), " ",
          el("span", { class: "badge", text: T["state_" + d.status] || d.status }),
          el("p", { text: d.reason }),
          d.resolution ? el("p", { class: "muted", text: d.resolution }) : null));
      }
    } catch (e) {
      failed(e);
    }
  }

  async function ticketsPage() {
    const base = me();
    const load = async () => {
      const list = $("entitlements");
      try {
        const items = await api(base + "/entitlements");
        list.replaceChildren();
        if (!items.length) list.append(el("li", { text: T.no_tickets }));
        for (const e of items) {
          const active = e.status === "pending" || e.status === "verified";
          list.append(el("li", {},
            el("strong", { text: e.label }), ` ${e.valid_from} – ${e.valid_to} `,
            el("span", { class: "badge", text: T["status_" + e.status] || e.status }),
            e.scope_areas ? el("span", { class: "muted", text: " " + e.scope_areas.join(", ") }) : null,
            active ? el("button", { type: "button", class: "secondary", text: T.withdraw,
              "aria-label": `${T.withdraw}: ${e.label}`,
              onclick: async () => {
                try {
                  await api(`${base}/entitlements/${e.entitlement_id}/withdraw`, { method: "POST" });
                  flash(T.saved);
                  load();
                } catch (err) {
                  failed(err);
                }
              } }) : null));
        }
      } catch (e) {
        failed(e);
      }
    };
    $("entitlement-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const areas = $("e-areas").value.split(",").map((s) => s.trim()).filter(Boolean);
      try {
        await api(base + "/entitlements", { method: "POST", body: {
          kind: $("e-kind").value,
          valid_from: $("e-from").value,
          valid_to: $("e-to").value,
          scope_areas: areas.length ? areas : null,
          evidence_ref: $("e-evidence").value,
        } });
        flash(T.saved);
        load();
      } catch (e) {
        failed(e);
      }
    });
    await load();
  }

  function b64urlBytes(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function accountPage() {
    const base = me();
    const show = () => {
      const a = account();
      $("acct-id").textContent = a.passenger_id;
      $("acct-device").textContent = a.device_id || "–";
      $("acct-key").textContent = a.device_key || "–";
    };
    show();
    $("register-device").addEventListener("click", async () => {
      try {
        await registerDevice();
        show();
        flash(T.device_registered);
      } catch (e) {
        failed(e);
      }
    });
    $("push-on").addEventListener("click", async () => {
      const key = body.dataset.vapid;
      if (!key || !("serviceWorker" in navigator) || !("PushManager" in window)) {
        flash(T.push_unavailable, true);
        return;
      }
      try {
        const registration = await navigator.serviceWorker.ready;
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: b64urlBytes(key),
        });
        await api(base + "/push-subscriptions", { method: "POST", body: subscription.toJSON() });
        flash(T.push_enabled);
      } catch (e) {
        failed(e);
      }
    });
    $("push-off").addEventListener("click", async () => {
      try {
        if ("serviceWorker" in navigator) {
          const registration = await navigator.serviceWorker.ready;
          const subscription = await registration.pushManager.getSubscription();
          if (subscription) await subscription.unsubscribe();
        }
        await api(base + "/push-subscriptions", { method: "DELETE" });
        flash(T.push_disabled);
      } catch (e) {
        failed(e);
      }
    });
    $("export").addEventListener("click", async () => {
      try {
        const response = await api(base + "/export", { raw: true });
        const url = URL.createObjectURL(await response.blob());
        const link = el("a", { href: url, download: `bibo-${account().passenger_id}.json` });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (e) {
        failed(e);
      }
    });
    $("delete").addEventListener("click", async () => {
      if (!window.confirm(T.confirm_delete)) return;
      try {
        await api(base, { method: "DELETE" });
        saveAccount(null);
        flash(T.deleted);
        for (const id of ["acct-id", "acct-device", "acct-key"]) $(id).textContent = "–";
      } catch (e) {
        failed(e);
      }
    });
    $("sign-out").addEventListener("click", () => {
      saveAccount(null);
      location.assign(withLang("/app/start"));
    });
  }

  // --- start-up ----------------------------------------------------------------------------

  function rememberLanguage(lang) {
    localStorage.setItem(LANG_KEY, lang);
    // The service worker reads it to show a push in the rider's language.
    if ("caches" in window) {
      caches.open("bibo-prefs").then((c) => c.put("/app/lang", new Response(lang))).catch(() => {});
    }
  }

  for (const link of document.querySelectorAll("[data-lang-switch]")) {
    link.addEventListener("click", () => rememberLanguage(link.dataset.langSwitch));
  }
  const chosen = localStorage.getItem(LANG_KEY);
  if (chosen === "en" && LANG === "de" && !new URLSearchParams(location.search).has("lang")) {
    location.replace(location.pathname + "?lang=en");
    return;
  }
  rememberLanguage(LANG);

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }

  const pages = {
    status: statusPage,
    start: startPage,
    month: monthPage,
    invoices: invoicesPage,
    disputes: disputesPage,
    tickets: ticketsPage,
    account: accountPage,
  };
  const page = pages[body.dataset.page];
  if (!page) return;
  if (body.dataset.page !== "start" && !account()) {
    location.assign(withLang("/app/start"));
    return;
  }
  page().catch(failed);
})();
