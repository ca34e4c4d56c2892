/* The visitor's mailbox (docs/protocol.md E12): a return code made in this browser, the
 * mailbox it opens, its messages (end-to-end encrypted both ways), a live chat back to
 * the same counselor, delete, and the optional second code. Loaded by dynamic import()
 * only when the visitor asks for a code or types one, with ../mailbox-crypto.js.
 * Nothing here touches storage, history or the URL: the code, the locator and the keys
 * live in this module's memory until the visitor leaves the mailbox or the quick exit. */
import * as MC from "../mailbox-crypto.js";
import { cfg, $, t, num, S, serial, show, setText, showError } from "./state.js";
import { startChat } from "./start.js";
import { call, createMailbox, ensureSocket, withWork } from "./mailbox-calls.js";

/* ---- the screens: fetched once, when first needed (GET /mailbox-view) ---- */
var TEXTS = {};
var EXPIRY = [];
async function loadView() {
  var res = await fetch("/mailbox-view?lang=" + encodeURIComponent(cfg.lang),
    { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
  if (!res.ok) throw new Error("mailbox view " + res.status);
  var doc = new DOMParser().parseFromString(await res.text(), "text/html");
  var texts = doc.getElementById("mailbox-texts");
  Object.keys(texts.dataset).forEach(function (k) { TEXTS[k] = texts.dataset[k]; });
  EXPIRY = JSON.parse(texts.dataset.expiry);
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/visitor-mailbox.css";
  document.head.appendChild(css);
  ["return-code-status", "return-code-shown"].forEach(function (id) {
    $("return-area").appendChild(document.adoptNode(doc.getElementById(id)));
  });
  $("decoy-request").before(document.adoptNode(doc.getElementById("decoy-about")));
  $("decoy-request").after(document.adoptNode(doc.getElementById("decoy-status")),
    document.adoptNode(doc.getElementById("decoy-shown")));
  $("main").insertBefore(document.adoptNode(doc.getElementById("view-mailbox")), $("connection"));
  $("return-code-write").addEventListener("click", writeInNewMailbox);
  $("mailbox-form").addEventListener("submit", sendToMailbox);
  $("mailbox-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) sendToMailbox(ev);
  });
  $("mailbox-chat").addEventListener("click", chatFromMailbox);
  $("mailbox-close").addEventListener("click", function () { closeMailbox(); });
  $("mailbox-delete").addEventListener("click", askDelete);
  $("mailbox-delete-no").addEventListener("click", cancelDelete);
  $("mailbox-delete-yes").addEventListener("click", confirmDelete);
  $("mailbox-delete-confirm").addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") cancelDelete();
  });
}
var viewReady = null;
function view() {
  if (!viewReady) {
    viewReady = loadView();
    viewReady.catch(function () { viewReady = null; });
  }
  return viewReady;
}

function mt(key, vars) {
  return String(TEXTS[key] || key).replace(/\{(\w+)\}/g, function (m, k) {
    return vars && vars[k] != null ? String(vars[k]) : m;
  });
}
function expiryText(n) {
  var idx = cfg.plural_index;
  var form = idx[n < idx.length ? n : 100 + (n % 100)];
  return (EXPIRY[form] || EXPIRY[EXPIRY.length - 1] || "").replace("{n}", num(n));
}

/* The open mailbox: {locator, mailboxId, own: {privateKey, pubkey}, recipients, lastSeq}. */
var box = null;
var decoySocket = null;
var wired = false;

function errorText(ack) {
  var code = ack.error && ack.error.code;
  if (code === "not_found") return mt("not_found");
  if (code === "rate_limited") return t("err_rate_limited");
  if (code === "too_large") return t("err_too_large");
  return t("err_generic");
}

function wire() {
  if (wired) return;
  wired = true;
  S.socket.on("mailbox:message", function (d) {
    serial(function () {
      if (box && d && d.mailbox_id === box.mailboxId && d.message) return showMessages([d.message]);
    });
  });
  S.socket.on("mailbox:gone", function (d) {
    serial(function () { if (box && d && d.mailbox_id === box.mailboxId) closeMailbox(mt("gone")); });
  });
  S.socket.on("connect", function () {
    // The server forgets which mailboxes a socket opened: open again (E12.8).
    if (box && !$("view-mailbox").hidden) serial(reopen);
  });
}

/* ---- 1. the return code, in a chat, on its end screen or when closed ---- */
export async function requestCode() {
  await view();
  var btn = $("return-code-request");
  btn.disabled = true;
  setText("return-code-status", mt("making"));
  try {
    var socket = await ensureSocket();
    wire();
    var chatId = S.state === "active" ? S.chatId : null;
    var made = await createMailbox(socket, chatId);
    setText("return-code-status", "");
    if (!made.code) {
      setText("return-code-status", errorText(made.ack));
      btn.disabled = false;
      return;
    }
    forget();
    box = made.box;
    setText("return-code", made.code);
    $("return-code-shown").hidden = false;
    $("return-code").focus();
  } catch (e) {
    setText("return-code-status", "");
    setText("return-code-status", t("err_generic"));
    btn.disabled = false;
  }
}

/* Out of hours or a full queue: write in the mailbox that was just made. */
function writeInNewMailbox() {
  if (!box) return;
  $("mailbox-messages").textContent = "";
  enterView();
}

/* ---- 2. open a mailbox with its code ---- */
/* The start form's one message line: an error (alert, in red) or a state. */
function openStatus(text, isError) {
  showError("return-code-open-error", text);
  $("return-code-open-error").classList.toggle("error", isError);
}

export async function openWithCode(ev) {
  if (ev) ev.preventDefault();
  await view();
  var input = $("return-code-input");
  var bytes;
  try {
    bytes = MC.parseCode(input.value);
  } catch (e) {
    openStatus(mt("check_code"), true);
    input.focus();
    return;
  }
  $("return-code-open").disabled = true;
  openStatus(mt("opening"), false);
  try {
    var derived = await MC.deriveMailbox(bytes);
    bytes.fill(0);
    var socket = await ensureSocket();
    wire();
    var ack = await withWork(socket, "mailbox:open", { locator: derived.locator });
    if (!ack.ok) {
      openStatus(errorText(ack), true);
      return;
    }
    var mb = ack.mailbox;
    var privateKey = await MC.unwrapMailboxKey(mb.wrapped_key, derived, mb.pubkey);
    forget();
    box = {
      locator: derived.locator, mailboxId: derived.mailboxId,
      own: { privateKey: privateKey, pubkey: mb.pubkey },
      recipients: ack.recipients, lastSeq: 0,
      counselorName: mb.counselor_name, idleDays: mb.idle_days
    };
    input.value = "";
    $("mailbox-messages").textContent = "";
    await showMessages(ack.messages || []);
    if (ack.more) await fetchMore();
    enterView();
  } catch (e) {
    openStatus(t("err_generic"), true);
  } finally {
    if (bytes) bytes.fill(0);
    if (!$("return-code-open-error").classList.contains("error")) openStatus("", false);
    $("return-code-open").disabled = false;
  }
}

async function reopen() {
  if (!box) return;
  var ack = await withWork(S.socket, "mailbox:open", { locator: box.locator });
  if (!ack.ok) return;
  box.recipients = ack.recipients;
  await showMessages((ack.messages || []).filter(function (m) { return m.seq > box.lastSeq; }));
}

async function fetchMore() {
  for (var i = 0; i < 10 && box; i++) {
    var ack = await call(S.socket, "mailbox:messages", { locator: box.locator, after_seq: box.lastSeq });
    if (!ack.ok) return;
    await showMessages(ack.messages || []);
    if (!ack.more) return;
  }
}

function enterView() {
  setText("mailbox-with", box.counselorName ? mt("with", { name: box.counselorName }) : "");
  setText("mailbox-expiry", expiryText(box.idleDays || 30));
  $("mailbox-delete-confirm").hidden = true;
  showError("mailbox-error", "");
  setText("mailbox-status", "");
  show("view-mailbox", "mailbox-title");
}

function timeText(seconds) {
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang, {
      weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit"
    }).format(new Date(seconds * 1000));
  } catch (e) { return new Date(seconds * 1000).toString(); }
}

async function showMessages(list) {
  var ol = $("mailbox-messages");
  for (var env of MC.unseen(list, function () { return box; })) {
    var li = document.createElement("li");
    li.className = "message " + (env.dir === "v2c" ? "from-visitor" : "from-counselor");
    var who = document.createElement("p");
    who.className = "message-meta";
    var text = document.createElement("p");
    text.className = "message-text";
    try {
      var body = await MC.openMessage(env, box.mailboxId, box.own);
      who.textContent = (env.dir === "v2c" ? t("label_you") : (body.name || t("label_counselor"))) +
        " · " + timeText(env.ts || body.sent);
      text.textContent = body.text;
      li.appendChild(who);
      li.appendChild(text);
      if (body.kind === "time_proposal") {
        var when = document.createElement("p");
        when.className = "proposed-time";
        when.textContent = mt("proposed", { time: timeText(body.at), n: body.minutes });
        li.appendChild(when);
      }
    } catch (e) {
      text.textContent = t("undecryptable");
      li.appendChild(text);
    }
    ol.appendChild(li);
  }
}

async function sealAndSend(text) {
  for (var tries = 0; tries < 2; tries++) {
    var pubkeys = await MC.checkRecipients(box.recipients, box.own.pubkey);
    var env = await MC.sealMessage(box.mailboxId, "v2c",
      { kind: "text", text: text, sent: Math.floor(Date.now() / 1000) }, pubkeys);
    var ack = await call(S.socket, "mailbox:send", { locator: box.locator, message: env });
    if (ack.ok) {
      env.seq = ack.seq;
      env.ts = ack.ts;
      env.kind = "message";
      return { ack: ack, env: env };
    }
    if (!(ack.error && ack.error.code === "conflict")) return { ack: ack };
    var fresh = await call(S.socket, "mailbox:recipients", { locator: box.locator });
    if (!fresh.ok) return { ack: fresh };
    box.recipients = fresh.recipients;
  }
  return { ack: ack };
}

async function sendToMailbox(ev) {
  if (ev) ev.preventDefault();
  var input = $("mailbox-input");
  var text = input.value.trim();
  if (!box || !text) return;
  showError("mailbox-error", "");
  $("mailbox-send").disabled = true;
  try {
    var sent = await sealAndSend(text);
    if (!sent.env) {
      showError("mailbox-error", errorText(sent.ack));
      return;
    }
    input.value = "";
    await showMessages([sent.env]);
    setText("mailbox-status", mt("sent"));
  } catch (e) {
    showError("mailbox-error", t("err_generic"));
  } finally {
    $("mailbox-send").disabled = false;
  }
}

/* ---- a live chat that goes first to the same counselor (chat:start with mailbox) ---- */
function chatFromMailbox() {
  if (!box || S.state !== "start") return;
  S.returning = box.locator;
  forget();
  startChat({ preventDefault: function () {} });
}

/* ---- delete with one confirmation ---- */
function askDelete() {
  $("mailbox-delete-confirm").hidden = false;
  $("mailbox-delete").setAttribute("aria-expanded", "true");
  $("mailbox-delete-no").focus();
}
function cancelDelete() {
  $("mailbox-delete-confirm").hidden = true;
  $("mailbox-delete").setAttribute("aria-expanded", "false");
  $("mailbox-delete").focus();
}
async function confirmDelete() {
  if (!box) return;
  $("mailbox-delete-yes").disabled = true;
  var ack = await call(S.socket, "mailbox:delete", { locator: box.locator });
  $("mailbox-delete-yes").disabled = false;
  if (!ack.ok) {
    showError("mailbox-error", errorText(ack));
    return;
  }
  closeMailbox(mt("deleted"));
}

function closeMailbox(message) {
  forget();
  $("mailbox-messages").textContent = "";
  $("mailbox-input").value = "";
  show("view-start", "start-title");
  openStatus(message || "", false);
}

/* ---- 4. the second code (E12.7): its own connection, 1–20 s later, no chat ---- */
export async function requestDecoy() {
  await view();
  var btn = $("decoy-request");
  btn.disabled = true;
  setText("decoy-status", mt("making"));
  var delay = 1000 + (crypto.getRandomValues(new Uint32Array(1))[0] % 19001);
  await new Promise(function (resolve) { setTimeout(resolve, delay); });
  if (S.exiting) return;
  try {
    decoySocket = window.io("/visitor", {
      path: "/socket.io", transports: ["websocket"], withCredentials: false, forceNew: true
    });
    await new Promise(function (resolve) { decoySocket.once("connect", resolve); });
    var made = await createMailbox(decoySocket, null);
    decoySocket.disconnect();
    decoySocket = null;
    if (!made.code) {
      setText("decoy-status", errorText(made.ack));
      btn.disabled = false;
      return;
    }
    made.box = null;
    setText("decoy-status", "");
    setText("decoy-code", made.code);
    $("decoy-shown").hidden = false;
  } catch (e) {
    setText("decoy-status", t("err_generic"));
    btn.disabled = false;
  }
}

/* The safety information opened: its part about the second code comes now. */
export function prepare() {
  return view();
}

/* Drops the mailbox's keys and locator (leaving it, the quick exit). */
export function forget() {
  box = null;
}

/* The quick exit: keys, codes and texts go; the page shows nothing of them any more. */
export function wipeMailbox() {
  forget();
  S.returning = null;
  if (decoySocket) { try { decoySocket.disconnect(); } catch (e) { /* leaving anyway */ } }
  decoySocket = null;
  ["return-code", "decoy-code", "mailbox-messages"].forEach(function (id) {
    if ($(id)) $(id).textContent = "";
  });
  if ($("mailbox-input")) $("mailbox-input").value = "";
  $("return-code-input").value = "";
}
