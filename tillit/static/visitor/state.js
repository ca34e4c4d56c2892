/* The visitor page's configuration, texts and state (memory only: no cookies, no storage
 * APIs, no history entries), shared by the page's modules. */

export const cfg = JSON.parse(document.getElementById("tillit-config").textContent);
export const $ = (id) => document.getElementById(id);

/* ---- texts ---- */
function fill(text, vars) {
  return String(text).replace(/\{(\w+)\}/g, function (m, k) {
    return vars && vars[k] != null ? String(vars[k]) : m;
  });
}
export function t(key, vars) { return fill(cfg.texts[key] || key, vars); }
export function num(n) {
  try { return new Intl.NumberFormat(cfg.lang).format(n); } catch (e) { return String(n); }
}
export function tn(key, n) {
  var idx = cfg.plural_index;
  var form = idx[n < idx.length ? n : 100 + (n % 100)];
  var forms = cfg.plurals[key];
  return fill(forms[form] || forms[forms.length - 1], { n: num(n) });
}

/* ---- state ---- */
export const S = {
  socket: null,
  e2e: null,          // ChatCrypto of the current chat
  chatId: null,
  resumeToken: null,
  state: "start",     // start | starting | queued | active | ended
  startPayload: null,
  counselorName: "",
  chatTopics: [],     // for the end screen's resources
  exiting: false,
  returning: null,
  chain: Promise.resolve(),
};

/* Socket events touching keys are handled strictly one after the other. */
export function serial(fn) {
  S.chain = S.chain.then(function () { if (!S.exiting) return fn(); })
    .catch(function (err) { if (window.console) console.warn(err); });
  return S.chain;
}

export function emit(event, payload, onAck) {
  if (!S.socket || !S.socket.connected) return false;
  S.socket.emit(event, payload, function (ack) { if (onAck) onAck(ack || {}); });
  return true;
}

export function ours(d) { return d && S.chatId !== null && d.chat_id === S.chatId; }
export function live() { return S.chatId !== null && (S.state === "queued" || S.state === "active"); }

/* ---- views ---- */
var VIEWS = ["view-start", "view-queue", "view-chat", "chat-ended", "view-closed", "view-mailbox"];
export function show(view, focusId) {
  VIEWS.forEach(function (id) { if ($(id)) $(id).hidden = id !== view; });
  // Switching language reloads the page: offered only while no chat would be lost.
  $("lang-switch").hidden = view === "view-queue" || view === "view-chat";
  if (focusId) {
    var el = $(focusId);
    if (el) el.focus();
  }
}
export function setText(id, text) { $(id).textContent = text || ""; }
var flashTimer = null;
export function flash(text) {
  clearTimeout(flashTimer);
  setText("connection", text);
  flashTimer = setTimeout(function () { setText("connection", ""); }, 8000);
}
export function stopFlash() { clearTimeout(flashTimer); }
export function showError(id, text) {
  var el = $(id);
  el.textContent = text || "";
  el.hidden = !text;
}
