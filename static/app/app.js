// Manchengo Livraisons — the drivers' offline app (UI.md §6; sync protocol PLATFORM §7). Our own code, no library.
// Every act becomes a command written to the IndexedDB outbox before any network attempt, pushed in creation order
// when the network allows; the feed is pulled from a cursor. The screen is drawn from local data only.
"use strict";

const APP_VERSION = "1.0.0";
const DB_NAME = "manchengo-livraisons";
const STORES = ["kv", "deliveries", "clients", "products", "outbox", "outcomes"];

// ---- IndexedDB -------------------------------------------------------------------------------------------------

let dbPromise = null;
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        for (const s of STORES) {
          if (!req.result.objectStoreNames.contains(s)) {
            req.result.createObjectStore(s, s === "kv" ? undefined : { keyPath: "id" });
          }
        }
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}

async function tx(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(store, mode);
    let out;
    Promise.resolve(fn(t.objectStore(store))).then((v) => { out = v; });
    t.oncomplete = () => resolve(out);
    t.onerror = () => reject(t.error);
  });
}

function reqP(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

const kvGet = (k) => tx("kv", "readonly", (s) => reqP(s.get(k)));
const kvSet = (k, v) => tx("kv", "readwrite", (s) => { s.put(v, k); });
const all = (store) => tx(store, "readonly", (s) => reqP(s.getAll()));
const getOne = (store, id) => tx(store, "readonly", (s) => reqP(s.get(id)));
const putAll = (store, items) => tx(store, "readwrite", (s) => { for (const i of items) s.put(i); });
const del = (store, id) => tx(store, "readwrite", (s) => { s.delete(id); });
const clearStore = (store) => tx(store, "readwrite", (s) => { s.clear(); });

// ---- formats (UI.md §2: 10 000,00 DA, 14/03/2025 09:12) ----------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function groups(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
}

function money(c) {
  const n = Math.abs(Number(c || 0));
  return (c < 0 ? "\u2212" : "") + groups(Math.floor(n / 100)) + "," + String(n % 100).padStart(2, "0") + "\u00a0DA";
}

/// "10 000,50" → 1000050 centimes, without floats; null when unreadable.
function parseMoney(text) {
  const s = String(text).replace(/[\s\u00a0\u202f]/g, "").replace(/DA$/i, "").replace(".", ",");
  const m = /^(\d+)(?:,(\d{1,2}))?$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
}

function quantity(q, unit) {
  const n = Number(q || 0);
  if (unit === "U") return groups(Math.floor(n / 1000)) + "\u00a0pcs";
  return groups(Math.floor(n / 1000)) + "," + String(n % 1000).padStart(3, "0") + "\u00a0" + (unit === "L" ? "L" : "kg");
}

function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${p(d.getDate())}/${p(d.getMonth() + 1)}/${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function today() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

const METHODS = { ESPECES: "en espèces", CHEQUE: "par chèque", VIREMENT: "par virement", TRAITE: "par traite" };
const ACTIONS = { DELIVERY_VALIDATED: "Validation de BL", DELIVERY_DELIVERED: "Preuve de livraison",
  DELIVERY_CANCELLED: "Annulation de BL", PAYMENT_RECORDED: "Encaissement", INVOICE_DRAFT_CREATED: "Brouillon de facture",
  CLIENT_CONTACT_UPDATED: "Contact client" };

// ---- the checksum: SHA-256 of the RFC 8785 form (PLATFORM §7.1) ---------------------------------------------------

function jcs(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
  // Default string order compares UTF-16 code units, as RFC 8785 asks.
  return "{" + Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
}

async function checksum(payload) {
  const bytes = new TextEncoder().encode(jcs(payload));
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(hash)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function uuidv7() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b).map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- the network (frozen client contract, PLATFORM §4.5) ---------------------------------------------------------

const state = { online: navigator.onLine, syncedAt: null, busy: false, waitUntil: 0, failures: 0, flash: null };

class Refused extends Error {
  constructor(status, body) { super(body?.error?.message || `HTTP ${status}`); this.status = status; this.body = body; }
  get code() { return this.body?.error?.code || ""; }
}

async function wipe(message) {
  for (const s of STORES) await clearStore(s);
  state.flash = { tone: "rouge", text: message };
  go("/app/connexion");
}

async function api(method, path, body, retried) {
  const session = await kvGet("session");
  const headers = { "Content-Type": "application/json", "X-Sync-Protocol": "1" };
  if (session) { headers.Authorization = "Bearer " + session.access; headers["X-Device-Id"] = session.deviceId; }
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    state.online = false;
    throw new Refused(0, { error: { code: "HORS_LIGNE", message: "Hors ligne." } });
  }
  state.online = true;
  const json = await res.json().catch(() => null);
  if (res.ok) return json;
  const code = json?.error?.code || "";
  if (res.status === 401 && code === "DEVICE_REVOKED") {
    await wipe("Cet appareil a été révoqué. Contactez l'administrateur.");
  } else if (res.status === 401 && code === "TOKEN_EXPIRED" && !retried && session?.refresh) {
    const r = await fetch("/api/auth/refresh", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken: session.refresh }) });
    if (r.ok) {
      const t = await r.json();
      await kvSet("session", { ...session, access: t.accessToken, refresh: t.refreshToken || session.refresh });
      return api(method, path, body, true);
    }
    go("/app/connexion");
  } else if (res.status === 401 && path !== "/api/auth/login") {
    // Session closed: log in again; the outbox is kept and pushed after login by the same user.
    state.flash = { tone: "ambre", text: "Reconnectez-vous : vos envois en attente sont conservés." };
    go("/app/connexion");
  } else if (res.status === 429) {
    state.waitUntil = Date.now() + 1000 * Number(res.headers.get("Retry-After") || 60);
  } else if (res.status === 426) {
    state.flash = { tone: "rouge", text: "Mettez l'application à jour." };
    navigator.serviceWorker?.getRegistration("/app/").then((r) => r?.update());
  }
  throw new Refused(res.status, json);
}

// ---- local data: bootstrap, pull, push ---------------------------------------------------------------------------

async function bootstrap() {
  const session = await kvGet("session");
  const b = await api("POST", "/api/sync/bootstrap", { deviceId: session.deviceId });
  for (const s of ["deliveries", "clients", "products"]) await clearStore(s);
  await putAll("deliveries", b.snapshot.deliveries || []);
  await putAll("clients", b.snapshot.clients || []);
  await putAll("products", b.snapshot.products || []);
  await kvSet("feed", { cursor: b.cursor, epoch: b.feedEpoch });
  state.syncedAt = new Date();
}

async function pull() {
  for (let round = 0; round < 50; round++) {
    const feed = (await kvGet("feed")) || { cursor: 0 };
    let page;
    try {
      page = await api("GET", `/api/sync/pull?cursor=${feed.cursor}&limit=200` + (feed.epoch ? `&epoch=${feed.epoch}` : ""));
    } catch (e) {
      if (e.code === "FEED_RESET" || e.code === "CURSOR_EXPIRED") { await bootstrap(); continue; }
      throw e;
    }
    for (const c of page.changes) {
      const store = { DELIVERY: "deliveries", CLIENT: "clients", PRODUCT: "products" }[c.entityType];
      if (store && c.op === "delete") await del(store, c.entityId);
      else if (store) await putAll(store, [c.data]);
      else if (c.entityType === "SYNC_EVENT") await settle(c.entityId, c.data);
    }
    await kvSet("feed", { cursor: page.nextCursor, epoch: page.feedEpoch });
    state.syncedAt = new Date();
    if (!page.hasMore) return;
  }
}

/// A final outcome reached the device (push answer or feed): kept 7 days, the command leaves the outbox.
async function settle(id, r) {
  const cmd = await getOne("outbox", id);
  const known = await getOne("outcomes", id);
  const status = r.status === "FAILED" ? "REJECTED" : r.status;
  await putAll("outcomes", [{ id, action: cmd?.action || known?.action || r.action, entityId: cmd?.entityId || known?.entityId || r.entityId,
    label: cmd?.label || known?.label || "", payload: cmd?.payload || known?.payload || null, status, code: r.code || null,
    message: r.message || null, serverRef: r.serverRef || null, at: new Date().toISOString() }]);
  if (cmd) await del("outbox", id);
}

async function push() {
  if (state.busy || Date.now() < state.waitUntil) return;
  const session = await kvGet("session");
  if (!session) return;
  state.busy = true;
  try {
    const pending = (await all("outbox")).sort((a, b) => a.seq - b.seq).slice(0, 100);
    if (pending.length) {
      const events = pending.map((c) => ({ id: c.id, entityType: c.entityType, entityId: c.entityId, action: c.action,
        occurredAt: c.occurredAt, payload: c.payload, checksum: c.checksum }));
      const answer = await api("POST", "/api/sync/push", { deviceId: session.deviceId, batchId: uuidv7(), events });
      const acked = [];
      for (const r of answer.results) {
        if (r.retryable) continue;
        await settle(r.id, r);
        acked.push(r.id);
      }
      if (acked.length) await api("POST", "/api/sync/ack", { deviceId: session.deviceId, eventIds: acked }).catch(() => {});
    }
    await pull();
    state.failures = 0;
  } catch (e) {
    if (e.status === 0 || e.status >= 500) {
      // No network or a 503: exponential backoff, 5 s … 5 min.
      state.failures += 1;
      state.waitUntil = Date.now() + Math.min(5000 * 2 ** (state.failures - 1), 300000);
    }
  } finally {
    state.busy = false;
    await strip();
  }
}

/// After a background push: the status strip always, the screen only when no form is being filled (what the driver
/// is typing must survive a push every 30 s).
async function refresh() {
  if (document.querySelector("#ecran form")) return strip();
  return render();
}

/// Records a command in the outbox (before any network attempt) and tries to send it.
async function command(action, entityType, entityId, payload, label) {
  const outbox = await all("outbox");
  const seq = outbox.reduce((m, c) => Math.max(m, c.seq), 0) + 1;
  const cmd = { id: uuidv7(), seq, entityType, entityId, action, occurredAt: new Date().toISOString(), payload,
    checksum: await checksum(payload), label };
  await putAll("outbox", [cmd]);
  state.flash = { tone: "ambre", text: "Enregistré sur le téléphone — sera envoyé dès que possible." };
  state.waitUntil = 0;
  push().then(refresh);
  return cmd;
}

// ---- screens -----------------------------------------------------------------------------------------------------

const screen = () => document.getElementById("ecran");

/// The last message, shown on every screen drawn in the next 8 seconds (a screen is redrawn after each push).
function flash() {
  const f = state.flash;
  if (!f) return "";
  f.until = f.until || Date.now() + 8000;
  if (Date.now() > f.until) { state.flash = null; return ""; }
  return `<p class="message message-${f.tone}" role="${f.tone === "rouge" ? "alert" : "status"}">${esc(f.text)}</p>`;
}

async function strip() {
  const el = document.getElementById("etat");
  if (!el) return;
  const pending = (await all("outbox")).length;
  const outcomes = await all("outcomes");
  const rejected = outcomes.filter((o) => o.status === "REJECTED" && !o.archived).length;
  const at = state.syncedAt ? time(state.syncedAt.toISOString()).slice(11) : "—";
  let tone = "vert";
  let text = `En ligne · synchronisé à ${at}`;
  if (rejected) { tone = "rouge"; text = `Envois rejetés : ${rejected}`; }
  else if (!state.online || pending) { tone = "ambre"; text = `${state.online ? "En ligne" : "Hors ligne"} · ${pending} envoi(s) en attente`; }
  el.className = `etat etat-${tone}`;
  el.textContent = text;
}

/// What is queued for a delivery: its local, provisional state.
async function localOf(deliveryId) {
  return (await all("outbox")).filter((c) => c.entityId === deliveryId);
}

function statusBadge(d, queued) {
  if (queued.some((c) => c.action === "DELIVERY_DELIVERED")) return `<span class="badge badge-ambre">Livré (en attente)</span>`;
  if (queued.some((c) => c.action === "DELIVERY_VALIDATED")) return `<span class="badge badge-ambre">Validé (en attente)</span>`;
  return { PENDING: `<span class="badge badge-bleu">À valider</span>`, VALIDATED: `<span class="badge badge-bleu">À livrer</span>`,
    DELIVERED: `<span class="badge badge-vert">Livrée</span>`, CANCELLED: `<span class="badge badge-rouge">Annulée</span>` }[d.status] || esc(d.status);
}

async function provisionalRemaining(d) {
  const paid = (await all("outbox")).filter((c) => c.action === "PAYMENT_RECORDED" && c.payload.invoiceId === d.invoiceId)
    .reduce((s, c) => s + c.payload.amount, 0);
  return { remaining: d.remaining - paid, provisional: paid > 0 };
}

async function todayScreen() {
  const deliveries = (await all("deliveries")).sort((a, b) => String(a.reference).localeCompare(String(b.reference)));
  const outbox = await all("outbox");
  const groupsOf = { "À valider": [], "À livrer": [], "Livrées": [] };
  for (const d of deliveries) {
    const q = outbox.filter((c) => c.entityId === d.id);
    const key = d.status === "PENDING" && !q.length ? "À valider" : d.status === "DELIVERED" || q.some((c) => c.action === "DELIVERY_DELIVERED") ? "Livrées" : "À livrer";
    if (d.status !== "CANCELLED") groupsOf[key].push([d, q]);
  }
  let html = `<h1>Aujourd'hui</h1>${flash()}<p class="actions"><a class="bouton bouton-principal" href="/app/scanner" data-lien>Scanner un BL</a></p>`;
  for (const [title, items] of Object.entries(groupsOf)) {
    html += `<h2>${title} (${items.length})</h2>`;
    for (const [d, q] of items) {
      html += `<article class="carte"><a class="ouvrir" href="/app/livraisons/${esc(d.id)}" data-lien>
        <span class="ref">${esc(d.reference)}</span> ${statusBadge(d, q)}<br>${esc(d.clientName)}<br>
        <span class="muet">${esc(d.deliveryAddress || d.clientAddress || "")} · ${d.lines.length} article(s)</span></a>
        ${d.clientPhone ? `<a class="bouton" href="tel:${esc(d.clientPhone)}">Appeler</a>` : ""}</article>`;
    }
    if (!items.length) html += `<p class="muet">Aucun BL.</p>`;
  }
  screen().innerHTML = html;
}

async function deliveryScreen(id) {
  const d = await getOne("deliveries", id);
  if (!d) { screen().innerHTML = `<h1>Livraison</h1><p>Ce BL n'est plus dans vos livraisons.</p>`; return; }
  const q = await localOf(d.id);
  const { remaining, provisional } = await provisionalRemaining(d);
  const lines = d.lines.map((l) => `<tr><td>${esc(l.productName)}</td><td class="nombre">${quantity(l.quantity, l.baseUnit)}</td><td>${esc(l.storageType || "")}</td></tr>`).join("");
  const validated = d.status !== "PENDING" || q.some((c) => c.action === "DELIVERY_VALIDATED");
  const delivered = d.status === "DELIVERED" || q.some((c) => c.action === "DELIVERY_DELIVERED");
  screen().innerHTML = `<h1>Livraison <span class="ref">${esc(d.reference)}</span></h1>${flash()}
    <p>${statusBadge(d, q)}</p>
    <p><strong>${esc(d.clientName)}</strong><br>${esc(d.deliveryAddress || d.clientAddress || "")}<br>${esc(d.clientPhone || "")}</p>
    <p>Facture <span class="ref">${esc(d.invoiceReference)}</span> · net à payer ${money(d.netAPayer)}</p>
    <p id="reste">Reste à payer ${provisional ? "(provisoire) " : ""}<strong>${money(remaining)}</strong> <span class="muet">au ${time(state.syncedAt?.toISOString() || new Date().toISOString())}</span></p>
    <table><thead><tr><th>Produit</th><th class="nombre">Quantité</th><th>Conservation</th></tr></thead><tbody>${lines}</tbody></table>
    <div class="actions">
      ${validated ? "" : `<a class="bouton bouton-principal" href="/app/scanner?bl=${esc(d.reference)}" data-lien>Valider</a>`}
      ${validated && !delivered ? `<a class="bouton bouton-principal" href="/app/livraisons/${esc(d.id)}/preuve" data-lien>Preuve de livraison</a>` : ""}
      ${remaining > 0 ? `<a class="bouton" href="/app/reglement/${esc(d.invoiceId)}" data-lien>Encaisser</a>` : ""}
    </div>`;
}

async function mine(reference) {
  return (await all("deliveries")).find((d) => d.reference === reference.trim().toUpperCase());
}

async function scannerScreen(params) {
  screen().innerHTML = `<h1>Scanner un BL</h1>${flash()}
    <div id="camera"></div>
    <form id="manuel">
      <label for="reference">Référence du BL</label>
      <input id="reference" name="reference" placeholder="LIV-2025-00154" value="${esc(params.get("bl") || "")}" required autocomplete="off">
      <label for="note">Note (pourquoi le QR n'est pas scanné, 5 caractères au moins)</label>
      <input id="note" name="note" minlength="5" required>
      <p id="erreur-scan" class="erreur" role="alert"></p>
      <div class="actions"><button type="submit" class="bouton bouton-principal">Valider la livraison</button></div>
    </form>`;
  document.getElementById("manuel").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const reference = document.getElementById("reference").value;
    const note = document.getElementById("note").value.trim();
    const d = await mine(reference);
    if (!d) { document.getElementById("erreur-scan").textContent = "Ce BL ne fait pas partie de vos livraisons."; return; }
    if (note.length < 5) { document.getElementById("erreur-scan").textContent = "La note doit faire 5 caractères au moins."; return; }
    await command("DELIVERY_VALIDATED", "DELIVERY", d.id, { mode: "MANUAL", reference: d.reference, note }, d.reference);
    go(`/app/livraisons/${d.id}`);
  });
  // The browser's own BarcodeDetector where it exists (Chrome on Android); manual entry always stays.
  if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
    try {
      const formats = await BarcodeDetector.getSupportedFormats();
      if (!formats.includes("qr_code")) return;
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      const video = document.createElement("video");
      video.className = "camera"; video.srcObject = stream; video.setAttribute("playsinline", ""); video.muted = true;
      document.getElementById("camera").appendChild(video);
      await video.play();
      const detector = new BarcodeDetector({ formats: ["qr_code"] });
      const scan = async () => {
        if (!document.body.contains(video)) { stream.getTracks().forEach((t) => t.stop()); return; }
        const codes = await detector.detect(video).catch(() => []);
        const text = codes[0]?.rawValue || "";
        const m = /^MCG:DLV:([0-9a-f-]{36}):(LIV-\d{4}-\d{5}):[0-9a-f]+$/i.exec(text);
        if (m) {
          stream.getTracks().forEach((t) => t.stop());
          const d = await mine(m[2]);
          if (!d) { document.getElementById("erreur-scan").textContent = "Ce BL ne fait pas partie de vos livraisons."; return; }
          await command("DELIVERY_VALIDATED", "DELIVERY", d.id, { qrToken: text }, d.reference);
          go(`/app/livraisons/${d.id}`);
          return;
        }
        requestAnimationFrame(scan);
      };
      scan();
    } catch (e) { /* no camera: the manual field is there */ }
  }
}

async function proofScreen(id) {
  const d = await getOne("deliveries", id);
  if (!d) return void go("/app/");
  const rows = d.lines.map((l, i) => `<label for="q${i}">${esc(l.productName)} (prévu ${quantity(l.quantity, l.baseUnit)})</label>
    <input id="q${i}" type="number" min="0" max="${l.baseUnit === "U" ? l.quantity / 1000 : l.quantity / 1000}" step="${l.baseUnit === "U" ? 1 : 0.001}" value="${l.quantity / 1000}">`).join("");
  screen().innerHTML = `<h1>Preuve de livraison <span class="ref">${esc(d.reference)}</span></h1>${flash()}
    <form id="preuve">
      <label for="receptionnaire">Nom du réceptionnaire</label><input id="receptionnaire" minlength="2" required>
      <label for="signature">Signature</label><canvas id="signature" class="signature" width="600" height="180"></canvas>
      <div class="actions"><button type="button" class="bouton" id="effacer">Effacer</button></div>
      <label for="photo">Photo (facultative)</label><input id="photo" type="file" accept="image/*" capture="environment">
      <h2>Quantités livrées</h2>${rows}
      <p id="erreur-preuve" class="erreur" role="alert"></p>
      <div class="actions"><button type="submit" class="bouton bouton-principal">Confirmer la livraison</button></div>
    </form>`;
  const canvas = document.getElementById("signature");
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#1C1F23";
  let drawing = false; let drawn = false;
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...at(e)); });
  canvas.addEventListener("pointermove", (e) => { if (drawing) { ctx.lineTo(...at(e)); ctx.stroke(); drawn = true; } });
  for (const ev of ["pointerup", "pointerleave"]) canvas.addEventListener(ev, () => { drawing = false; });
  document.getElementById("effacer").addEventListener("click", () => { ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false; });
  document.getElementById("preuve").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = document.getElementById("receptionnaire").value.trim();
    const err = document.getElementById("erreur-preuve");
    if (name.length < 2 || !drawn) { err.textContent = "Nom du réceptionnaire et signature obligatoires."; return; }
    const lines = [];
    for (const [i, l] of d.lines.entries()) {
      const q = Math.round(Number(document.getElementById(`q${i}`).value) * 1000);
      if (!(q >= 0 && q <= l.quantity)) { err.textContent = `Quantité livrée supérieure à la quantité prévue (${l.productName}).`; return; }
      lines.push({ productId: l.productId, quantityDelivered: q });
    }
    const payload = { recipientName: name, signatureBase64: canvas.toDataURL("image/png").split(",")[1],
      deliveredAt: new Date().toISOString(), lines };
    const file = document.getElementById("photo").files[0];
    if (file) payload.photoJpegBase64 = await downscale(file);
    await command("DELIVERY_DELIVERED", "DELIVERY", d.id, payload, d.reference);
    go(`/app/livraisons/${d.id}`);
  });
}

/// A photo as JPEG of at most 1 MiB (the longest side brought down to 1280 px, quality lowered if needed).
async function downscale(file) {
  const img = await createImageBitmap(file);
  const scale = Math.min(1, 1280 / Math.max(img.width, img.height));
  const c = document.createElement("canvas");
  c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
  c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
  for (const q of [0.8, 0.6, 0.4]) {
    const data = c.toDataURL("image/jpeg", q).split(",")[1];
    if (data.length * 3 / 4 <= 1024 * 1024) return data;
  }
  return c.toDataURL("image/jpeg", 0.3).split(",")[1];
}

async function paymentScreen(invoiceId) {
  const d = (await all("deliveries")).find((x) => x.invoiceId === invoiceId);
  if (!d) return void go("/app/");
  const { remaining } = await provisionalRemaining(d);
  // A correction comes with the refused amount; otherwise what remains.
  const asked = Math.min(Number(new URLSearchParams(location.search).get("montant")) || remaining, remaining);
  const method = d.paymentMethod || "ESPECES";
  const extra = method === "CHEQUE"
    ? `<label for="cheque">N° de chèque</label><input id="cheque" required><label for="banque">Banque</label><input id="banque" required>
       <label for="date-cheque">Date du chèque</label><input id="date-cheque" type="date" value="${today()}" required>`
    : method === "VIREMENT" ? `<label for="ref-virement">Référence du virement</label><input id="ref-virement" minlength="4" required>` : "";
  screen().innerHTML = `<h1>Encaisser</h1>${flash()}
    <p>Facture <span class="ref">${esc(d.invoiceReference)}</span> · net ${money(d.netAPayer)}<br>Reste à payer <strong>${money(remaining)}</strong> (dernière synchro)</p>
    <form id="encaisser">
      <label for="montant">Montant (DA)</label><input id="montant" inputmode="decimal" value="${esc(money(asked).replace("\u00a0DA", ""))}" required>
      <p>Mode : ${esc(METHODS[method] || method)}</p>${extra}
      <label for="note-reglement">Note (facultative)</label><input id="note-reglement">
      <p id="erreur-reglement" class="erreur" role="alert"></p>
      <div class="actions"><button type="submit" class="bouton bouton-principal">Encaisser</button></div>
    </form>`;
  document.getElementById("encaisser").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amount = parseMoney(document.getElementById("montant").value);
    const err = document.getElementById("erreur-reglement");
    if (!amount || amount <= 0) { err.textContent = "Montant invalide."; return; }
    if (amount > remaining) { err.textContent = `Le montant dépasse le reste à payer (${money(remaining)}).`; return; }
    if (!confirm(`Encaisser ${money(amount)} ${METHODS[method] || ""} sur ${d.invoiceReference} ?`)) return;
    const payload = { invoiceId: d.invoiceId, amount, method, date: today() };
    const note = document.getElementById("note-reglement").value.trim();
    if (note) payload.note = note;
    if (method === "CHEQUE") {
      payload.chequeNumber = document.getElementById("cheque").value.trim();
      payload.bank = document.getElementById("banque").value.trim();
      payload.chequeDate = document.getElementById("date-cheque").value;
    }
    if (method === "VIREMENT") payload.bankReference = document.getElementById("ref-virement").value.trim();
    await command("PAYMENT_RECORDED", "PAYMENT", d.invoiceId, payload, d.invoiceReference);
    go(`/app/livraisons/${d.id}`);
  });
}

async function clientsScreen() {
  const clients = (await all("clients")).sort((a, b) => a.raisonSociale.localeCompare(b.raisonSociale));
  screen().innerHTML = `<h1>Clients</h1>${flash()}` + (clients.map((c) => `<article class="carte">
    <a class="ouvrir" href="/app/clients/${esc(c.id)}" data-lien><strong>${esc(c.raisonSociale)}</strong><br>
    <span class="muet">${esc(c.adresse || "")}</span></a>${c.telephone ? `<a class="bouton" href="tel:${esc(c.telephone)}">Appeler</a>` : ""}</article>`).join("")
    || `<p class="muet">Les clients de vos livraisons apparaissent ici.</p>`);
}

async function clientScreen(id) {
  const c = await getOne("clients", id);
  if (!c) return void go("/app/clients");
  screen().innerHTML = `<h1>${esc(c.raisonSociale)}</h1>${flash()}
    <form id="contact">
      <label for="telephone">Téléphone</label><input id="telephone" value="${esc(c.telephone || "")}">
      <label for="adresse">Adresse</label><input id="adresse" value="${esc(c.adresse || "")}">
      <label for="contact-nom">Contact</label><input id="contact-nom" value="${esc(c.contactName || "")}">
      <label for="email">E-mail</label><input id="email" type="email" value="${esc(c.email || "")}">
      <div class="actions"><button type="submit" class="bouton bouton-principal">Modifier le contact</button></div>
    </form>`;
  document.getElementById("contact").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fields = { phone: ["telephone", c.telephone], address: ["adresse", c.adresse], contactName: ["contact-nom", c.contactName], email: ["email", c.email] };
    const payload = {};
    for (const [k, [input, before]] of Object.entries(fields)) {
      const v = document.getElementById(input).value.trim();
      if (v !== (before || "")) payload[k] = v;
    }
    if (!Object.keys(payload).length) { state.flash = { tone: "ambre", text: "Rien n'a changé." }; return render(); }
    await command("CLIENT_CONTACT_UPDATED", "CLIENT", c.id, payload, c.raisonSociale);
    go("/app/clients");
  });
}

async function sendsScreen() {
  const outbox = (await all("outbox")).sort((a, b) => a.seq - b.seq);
  const week = Date.now() - 7 * 86400000;
  const outcomes = (await all("outcomes")).filter((o) => Date.parse(o.at) > week && !o.archived).sort((a, b) => b.at.localeCompare(a.at));
  const row = (label, action, status, detail) => `<article class="carte"><strong>${esc(ACTIONS[action] || action)}</strong>
    <span class="ref">${esc(label)}</span><br>${status}${detail}</article>`;
  let html = `<h1>Envois</h1>${flash()}<div class="actions"><button id="envoyer" class="bouton bouton-principal" type="button">Envoyer maintenant</button></div>`;
  html += outbox.map((c) => row(c.label, c.action, `<span class="badge badge-ambre">En attente</span>`, ` <span class="muet">${time(c.occurredAt)}</span>`)).join("");
  html += outcomes.map((o) => row(o.label, o.action,
    o.status === "APPLIED" ? `<span class="badge badge-vert">Appliqué</span>` : o.status === "DUPLICATE" ? `<span class="badge badge-vert">Déjà appliqué</span>` : `<span class="badge badge-rouge">Rejeté</span>`,
    o.status === "REJECTED" ? `<p class="message message-rouge">${esc(o.message)}</p><div class="actions">
      <button class="bouton" type="button" data-archiver="${esc(o.id)}">Compris</button>
      ${correction(o) ? `<button class="bouton" type="button" data-corriger="${esc(o.id)}">Corriger</button>` : ""}</div>`
      : o.serverRef ? ` <span class="ref">${esc(o.serverRef)}</span>` : "")).join("");
  if (!outbox.length && !outcomes.length) html += `<p class="muet">Aucun envoi.</p>`;
  screen().innerHTML = html;
  document.getElementById("envoyer").addEventListener("click", async () => { state.waitUntil = 0; await push(); render(); });
  for (const b of screen().querySelectorAll("[data-corriger]")) {
    b.addEventListener("click", async () => {
      const o = await getOne("outcomes", b.dataset.corriger);
      await putAll("outcomes", [{ ...o, archived: true }]);
      go(correction(o));
    });
  }
  for (const b of screen().querySelectorAll("[data-archiver]")) {
    b.addEventListener("click", async () => {
      const o = await getOne("outcomes", b.dataset.archiver);
      await putAll("outcomes", [{ ...o, archived: true }]);
      render();
    });
  }
}

/// Where a rejected command is made again, pre-filled (UI.md row 102, "Corriger").
function correction(o) {
  const p = o.payload || {};
  switch (o.action) {
    case "PAYMENT_RECORDED": return p.invoiceId ? `/app/reglement/${p.invoiceId}?montant=${p.amount}` : null;
    case "DELIVERY_VALIDATED": return `/app/scanner?bl=${encodeURIComponent(o.label || p.reference || "")}`;
    case "DELIVERY_DELIVERED": return `/app/livraisons/${o.entityId}/preuve`;
    case "CLIENT_CONTACT_UPDATED": return `/app/clients/${o.entityId}`;
    default: return null;
  }
}

async function accountScreen() {
  const session = await kvGet("session");
  const pending = (await all("outbox")).length;
  const est = await navigator.storage?.estimate?.().catch(() => null);
  screen().innerHTML = `<h1>Mon appareil</h1>${flash()}
    <p>${esc(session.user.firstName)} ${esc(session.user.lastName)} · ${esc(session.user.email)}</p>
    <p>Appareil « ${esc(session.deviceName)} »<br><span class="ref">${esc(session.deviceId)}</span><br>Version ${APP_VERSION}</p>
    <p>Dernière synchro : ${state.syncedAt ? time(state.syncedAt.toISOString()) : "—"} · ${pending} envoi(s) en attente
    ${est ? ` · ${Math.round((est.usage || 0) / 1024)} Kio utilisés` : ""}</p>
    <div class="actions"><button id="synchroniser" class="bouton bouton-principal" type="button">Synchroniser</button>
    <button id="deconnexion" class="bouton bouton-danger" type="button">Se déconnecter</button></div>`;
  document.getElementById("synchroniser").addEventListener("click", async () => { state.waitUntil = 0; await push(); render(); });
  document.getElementById("deconnexion").addEventListener("click", async () => {
    if (pending && !confirm(`${pending} envoi(s) non envoyé(s) seront perdus. Se déconnecter ?`)) return;
    await api("POST", "/api/auth/logout", {}).catch(() => {});
    for (const s of STORES) if (s !== "kv") await clearStore(s);
    await kvSet("session", null);
    go("/app/connexion");
  });
}

async function loginScreen() {
  const deviceName = (await kvGet("deviceName")) || "";
  screen().innerHTML = `<h1>Connexion</h1>${flash()}
    <form id="connexion">
      <label for="email">E-mail</label><input id="email" type="email" autocomplete="username" required>
      <label for="password">Mot de passe</label><input id="password" type="password" autocomplete="current-password" required>
      <label for="appareil">Nom de l'appareil</label><input id="appareil" placeholder="Samsung A14 – Tournée Est" value="${esc(deviceName)}" required>
      <p id="erreur-connexion" class="erreur" role="alert"></p>
      <div class="actions"><button type="submit" class="bouton bouton-principal">Se connecter</button></div>
    </form>`;
  document.getElementById("connexion").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("erreur-connexion");
    const email = document.getElementById("email").value.trim();
    const name = document.getElementById("appareil").value.trim();
    const deviceId = (await kvGet("deviceId")) || crypto.randomUUID();
    await kvSet("deviceId", deviceId);
    await kvSet("deviceName", name);
    try {
      const r = await api("POST", "/api/auth/login", { email, password: document.getElementById("password").value, client: "device", deviceId });
      if (!["COMMERCIAL", "ADMIN"].includes(r.user.role)) { err.textContent = "Cette application est réservée aux livreurs."; return; }
      const previous = await kvGet("session");
      if (previous && previous.user?.email !== r.user.email && (await all("outbox")).length) {
        err.textContent = "Des envois d'un autre utilisateur attendent sur ce téléphone : reconnectez-vous avec son compte.";
        return;
      }
      await kvSet("session", { access: r.accessToken, refresh: r.refreshToken, deviceId, deviceName: name, user: r.user });
      await api("POST", "/api/devices/register", { id: deviceId, name, platform: "web", appVersion: APP_VERSION });
      await bootstrap();
      push();
      go("/app/");
    } catch (e) {
      err.textContent = e.code === "DEVICE_OWNED_BY_OTHER_USER" ? "Cet appareil est attribué à un autre utilisateur." : e.message;
    }
  });
}

// ---- routing -----------------------------------------------------------------------------------------------------

function go(path) {
  if (location.pathname + location.search !== path) history.pushState(null, "", path);
  render();
}

/// Screens are drawn one after the other (a push redraws the screen while the driver may be navigating): the last
/// drawing always reads the current address, so an older one can never overwrite a newer screen.
let drawing = Promise.resolve();
function render() {
  drawing = drawing.then(draw, draw);
  return drawing;
}

async function draw() {
  const path = location.pathname;
  const session = await kvGet("session");
  document.getElementById("onglets").hidden = !session;
  for (const a of document.querySelectorAll(".onglets a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === path);
    if (a.getAttribute("href") === path) a.setAttribute("aria-current", "page");
  }
  if (!session && path !== "/app/connexion") {
    history.replaceState(null, "", "/app/connexion");
    return draw();
  }
  const m = (re) => re.exec(path);
  let r;
  if (path === "/app/connexion") await loginScreen();
  else if ((r = m(/^\/app\/livraisons\/([^/]+)\/preuve$/))) await proofScreen(r[1]);
  else if ((r = m(/^\/app\/livraisons\/([^/]+)$/))) await deliveryScreen(r[1]);
  else if (path === "/app/scanner") await scannerScreen(new URLSearchParams(location.search));
  else if ((r = m(/^\/app\/reglement\/([^/]+)$/))) await paymentScreen(r[1]);
  else if (path === "/app/clients") await clientsScreen();
  else if ((r = m(/^\/app\/clients\/([^/]+)$/))) await clientScreen(r[1]);
  else if (path === "/app/envois") await sendsScreen();
  else if (path === "/app/compte") await accountScreen();
  else await todayScreen();
  await strip();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-lien]");
  if (a && a.origin === location.origin) { ev.preventDefault(); go(a.pathname + a.search); }
});
window.addEventListener("popstate", render);
window.addEventListener("online", () => { state.online = true; state.waitUntil = 0; push().then(refresh); });
window.addEventListener("offline", () => { state.online = false; strip(); });

// Push every 30 s while commands wait, pull every 60 s while visible.
setInterval(async () => { if ((await all("outbox")).length) push().then(refresh); }, 30000);
setInterval(() => { if (document.visibilityState === "visible") push().then(refresh); }, 60000);

let reloadAsked = false;

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).then((reg) => {
    // The banner shows while a newer version waits behind the one in control; it activates when the driver asks.
    const offer = () => {
      const waiting = reg.waiting;
      const current = navigator.serviceWorker.controller;
      const banner = document.getElementById("nouvelle-version");
      banner.hidden = !(waiting && current && waiting !== current);
      if (banner.hidden) return;
      waiting.addEventListener("statechange", offer);
      document.getElementById("recharger").onclick = async () => {
        await push();
        const left = (await all("outbox")).length;
        if (left && !confirm(`${left} envoi(s) pas encore envoyé(s) : ils restent sur le téléphone. Recharger quand même ?`)) return;
        reloadAsked = true;
        reg.waiting?.postMessage("activer");
      };
    };
    offer();
    reg.addEventListener("updatefound", () => reg.installing?.addEventListener("statechange", offer));
  }).catch(() => {});
  // A new version took over because the driver asked: reload once to run it.
  let reloaded = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (reloadAsked && !reloaded) { reloaded = true; location.reload(); }
    navigator.serviceWorker.getRegistration("/app/").then((r) => { if (r && !r.waiting) document.getElementById("nouvelle-version").hidden = true; });
  });
}

render().then(() => push().then(refresh));
