// The inspector's offline check: the same steps as backend/tickets/codec.py `verify`, with
// WebCrypto Ed25519, against the keys and the signed revocation list inside the page. A
// browser without Ed25519 in WebCrypto leaves the form to the server (the page says so).
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("inspect-data").textContent);
  const t = data.text;
  const enc = new TextEncoder();
  const TICKET_DOMAIN = enc.encode("bibo-ticket/1\u0000");
  const CODE_DOMAIN = enc.encode("bibo-code/1\u0000");
  const LIST_DOMAIN = enc.encode("bibo-revocations/1\u0000");
  const CATEGORIES = { 1: "adult", 2: "child", 3: "preschool", 4: "infant", 5: "bike" };

  function fromB64url(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("payload: expected base64url text");
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const raw = atob(b64);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

  function decode(frame) {
    let at = 0;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const take = (n, field) => {
      if (at + n > frame.length) throw new Error(field + ": payload ends early");
      const chunk = frame.subarray(at, at + n);
      at += n;
      return chunk;
    };
    const byte = (field) => take(1, field)[0];
    const u32 = (field) => { take(4, field); return view.getUint32(at - 4); };
    const text = (field) => {
      const n = byte(field);
      if (n < 1 || n > 64) throw new Error(field + ": bad length");
      return new TextDecoder("utf-8", { fatal: true }).decode(take(n, field));
    };
    const category = (field) => {
      const c = CATEGORIES[byte(field)];
      if (!c) throw new Error(field + ": unknown category");
      return c;
    };
    if (hex(take(2, "magic")) !== "4249") throw new Error("magic: not a bibo ticket");
    if (byte("version") !== 1) throw new Error("version: expected 1");
    const keyId = new TextDecoder().decode(take(byte("key_id"), "key_id"));
    if (!/^[A-Za-z0-9._-]{1,16}$/.test(keyId)) throw new Error("key_id: bad");
    const ticketId = take(8, "ticket_id");
    const riderRef = take(8, "rider_ref");
    const riderCategory = category("rider_category");
    const flags = byte("flags");
    if (flags & ~1) throw new Error("flags: unknown bits");
    const issuedAt = u32("issued_at"), boardedAt = u32("boarded_at"), validUntil = u32("valid_until");
    const vehicleId = text("vehicle_id");
    const boardStopId = text("board_stop_id");
    const companions = [];
    for (let n = byte("companions"); n > 0; n--) {
      const c = category("companions");
      const count = byte("companions");
      if (count === 0) throw new Error("companions: a count of 0");
      companions.push([c, count]);
    }
    const ticketKey = take(32, "ticket_public_key");
    const body = frame.subarray(0, at);
    const signature = take(64, "signature");
    const step = u32("step");
    const code = take(64, "time_code");
    if (at !== frame.length) throw new Error("payload: bytes after the time code");
    return {
      body, signature, step, code, ticketKey,
      ticket: { keyId, ticketId, riderRef, riderCategory, provisional: (flags & 1) === 1, issuedAt,
        boardedAt, validUntil, vehicleId, boardStopId, companions },
    };
  }

  async function signed(publicKey, signature, message) {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  const keys = {};
  for (const k of (data.keys && data.keys.keys) || []) {
    keys[k.key_id] = { public: fromB64url(k.public), retireAt: k.retire_at };
  }
  let revoked = null;  // a Set of ticket ids (hex) once the page's list is checked

  async function loadRevocations(nowS) {
    const doc = data.revocations;
    if (!doc) return new Set();
    const key = keys[doc.key_id];
    if (!key || (key.retireAt !== null && nowS >= key.retireAt)) throw new Error("revocation list: unknown or retired key");
    const document_ = fromB64url(doc.document);
    if (!(await signed(key.public, fromB64url(doc.signature), concat(LIST_DOMAIN, document_)))) {
      throw new Error("revocation list: signature does not match");
    }
    const list = JSON.parse(new TextDecoder().decode(document_));
    return new Set(list.revoked.map((r) => r.ticket_id));
  }

  async function verify(payload, nowS, vehicleId) {
    let shown;
    try {
      shown = decode(fromB64url(payload.trim()));
    } catch (e) {
      return { state: "invalid", reason: "not a bibo ticket: " + e.message };
    }
    const ticket = shown.ticket;
    const key = keys[ticket.keyId];
    if (!key) return { state: "invalid", reason: "unknown key id " + ticket.keyId, ticket };
    if (key.retireAt !== null && nowS >= key.retireAt) return { state: "invalid", reason: "key " + ticket.keyId + " retired", ticket };
    if (!(await signed(key.public, shown.signature, concat(TICKET_DOMAIN, shown.body)))) {
      return { state: "invalid", reason: "issuer signature does not match: altered or forged" };
    }
    const stepBytes = new Uint8Array(4);
    new DataView(stepBytes.buffer).setUint32(0, shown.step);
    if (!(await signed(shown.ticketKey, shown.code, concat(CODE_DOMAIN, ticket.ticketId, stepBytes)))) {
      return { state: "invalid", reason: "time code does not match the ticket: forged", ticket };
    }
    if (revoked === null) {
      try {
        revoked = await loadRevocations(nowS);
      } catch (e) {
        return { state: "invalid", reason: e.message, ticket };
      }
    }
    if (revoked.has(hex(ticket.ticketId))) return { state: "revoked", reason: "ticket is on the revocation list", ticket };
    if (nowS > ticket.validUntil) return { state: "expired", reason: "valid until " + ticket.validUntil, ticket };
    const begins = shown.step * data.step_s;
    if (!(begins - data.skew_s <= nowS && nowS <= begins + data.step_s + data.skew_s)) {
      return { state: "stale", reason: "time code is for " + begins + "-" + (begins + data.step_s) + ", now is " + Math.floor(nowS) + " (screenshot?)", ticket };
    }
    if (vehicleId && ticket.vehicleId !== vehicleId) {
      return { state: "wrong_vehicle", reason: "ticket is for vehicle " + ticket.vehicleId + ", not " + vehicleId, ticket };
    }
    if (ticket.provisional) return { state: "provisional", reason: "valid; be-in not yet certain", ticket };
    return { state: "valid", reason: "valid", ticket };
  }

  function localTime(epochS) {
    return new Date(epochS * 1000).toLocaleString(data.lang === "de" ? "de-DE" : "en-GB", { timeZone: "Europe/Berlin" });
  }

  function show(verdict) {
    const result = document.getElementById("result");
    result.replaceChildren();
    const h = document.createElement("h2");
    h.id = "result-heading";
    h.textContent = t.verdict;
    const p = document.createElement("p");
    p.className = "verdict state-" + verdict.state;
    p.dataset.state = verdict.state;
    const strong = document.createElement("strong");
    strong.textContent = t[verdict.state];
    p.append(strong);
    const how = document.createElement("p");
    how.className = "how";
    how.textContent = t.checked_here;
    if (verdict.state === "invalid") {
      const reason = document.createElement("span");
      reason.lang = "en";  // the check's own words
      reason.textContent = verdict.reason;
      how.append(" · " + t.reason + ": ", reason);
    }
    result.append(h, p, how);
    const k = verdict.ticket;
    if (!k) return;
    const companions = k.companions.map(([c, n]) => n + " × " + t[c]).join(", ") || t.none;
    const rows = [
      [t.ticket_id, hex(k.ticketId)], [t.rider_ref, hex(k.riderRef)], [t.rider_category, t[k.riderCategory]],
      [t.companions, companions], [t.vehicle_id, k.vehicleId], [t.board_stop, data.stops[k.boardStopId] || k.boardStopId],
      [t.boarded_at, localTime(k.boardedAt)], [t.valid_until, localTime(k.validUntil)], [t.key_id, k.keyId],
    ];
    const dl = document.createElement("dl");
    for (const [name, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dl.append(dt, dd);
    }
    result.append(dl);
  }

  async function ed25519Available() {
    try {
      const key = fromB64url("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");  // RFC 8032 test 1
      await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      return true;
    } catch (e) {
      return false;
    }
  }

  const form = document.getElementById("inspect-form");
  ed25519Available().then((ok) => {
    if (!ok) return;  // the form posts to the server, which checks instead
    document.documentElement.dataset.offline = "yes";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const vehicle = document.getElementById("vehicle").value.trim();
      show(await verify(document.getElementById("payload").value, Date.now() / 1000, vehicle));
      document.getElementById("result").focus();
    });
  });
  document.getElementById("result").tabIndex = -1;
})();
