/* The visitor page's chat: the socket and its events, the queue, keys and safety code,
 * sending (through the shared chat session: pending, resend, dedupe, order), typing and
 * the resume after a dropped connection. */
import { ChatSession, byId, formatSafetyCode, placeElement } from "../chat-session.js";
import { cfg, $, t, tn, num, S, serial, emit, ours, show, setText, flash, stopFlash, showError } from "./state.js";
import { messageElement, note, scrollDown, timeOf } from "./messages.js";
import { adoptChat, prepareWork, sendMeta, sendStart } from "./start.js";
import { endView, onEnded } from "./ending.js";

/* The messages of the current chat; cleared with the chat (ending.js wipe()). */
export const session = new ChatSession("visitor", function (env) {
  return new Promise(function (resolve) {
    if (!emit("msg:send", env, resolve)) resolve({ ok: false, error: { code: "offline" } });
  });
}, {
  onConfirmed: function (entry, id, ts, duplicate) {
    var li = entry.view;
    if (entry.tries) showError("send-error", "");
    if (duplicate) { li.remove(); return; }
    li.classList.remove("pending");
    li.querySelector(".message-meta").textContent = timeOf(ts || Date.now());
    placeElement($("messages"), li, id);
  },
  onRetrying: function () { showError("send-error", t("err_busy")); },
  onFailed: function (entry, code) {
    var li = entry.view;
    li.classList.remove("pending");
    li.classList.add("failed");
    li.querySelector(".message-meta").textContent = t("not_sent");
    showError("send-error", code === "rate_limited" ? t("err_rate_limited")
      : code === "too_large" ? t("err_too_large") : t("err_generic"));
  },
});

/* ---- socket ---- */
export function connect() {
  if (!S.socket) {
    var socket = window.io("/visitor", {
      path: "/socket.io",
      transports: ["websocket"],
      withCredentials: false,
      autoConnect: false
    });
    S.socket = socket;
    socket.on("connect", onConnect);
    socket.on("disconnect", onDisconnect);
    socket.on("connect_error", function () {
      if (!S.exiting && S.state !== "start" && S.state !== "ended") setText("connection", t("connection_lost"));
    });
    socket.on("queue:update", function (d) { serial(function () { onQueue(d); }); });
    socket.on("chat:assigned", function (d) { serial(function () { return onAssigned(d); }); });
    socket.on("chat:requeued", function (d) { serial(function () { onRequeued(d); }); });
    socket.on("key:update", function (d) { serial(function () { return onKeyUpdate(d); }); });
    socket.on("msg:new", function (d) { serial(function () { return onMessage(d); }); });
    socket.on("typing", onTyping);
    socket.on("chat:ended", function (d) { serial(function () { onEnded(d); }); });
  }
  if (S.socket.connected) onConnect();
  // Already connecting (the page warms up when the visitor turns to the form): a
  // second connect() would send the namespace a second CONNECT packet mid-handshake.
  else if (!S.socket.active) S.socket.connect();
}

var wasDisconnected = false;
function onConnect() {
  if (S.exiting) return;
  if (wasDisconnected) {
    wasDisconnected = false;
    flash(t("connection_back"));
  }
  if (S.resumeToken) resume();
  else if (S.state === "starting" && S.startPayload) sendStart();
  else if (S.state === "start") prepareWork();
}

function onDisconnect(reason) {
  if (S.exiting || S.state === "start" || S.state === "ended") return;
  wasDisconnected = true;
  stopFlash();
  setText("connection", t("connection_lost"));
  if (reason === "io server disconnect") S.socket.connect();
}

/* ---- queue ---- */
export function onQueue(d) {
  if (d.chat_id && !ours(d)) return;
  if (S.state !== "queued") return;
  var pos = d.position;
  setText("queue-position",
    typeof pos === "number" && pos >= 1 ? (pos === 1 ? t("queue_next") : t("queue_position", { n: num(pos) })) : t("queue_waiting"));
  var s = d.est_wait_s;
  setText("est-wait", typeof s === "number" && s >= 0 ? tn("wait_minutes", Math.max(1, Math.ceil(s / 60))) : t("wait_unknown"));
}

/* The counselor left (transfer to the queue, or gone past the grace period): wait again. */
function onRequeued(d) {
  if (!ours(d) || S.state !== "active") return;
  S.state = "queued";
  showTyping(false);
  note(t("requeued"));
  flash(t("requeued"));
  onQueue(d);
  show("view-queue", "queue-title");
}

/* ---- keys ---- */
async function onAssigned(d) {
  if (S.chatId === null && S.state === "starting" && d && d.chat_id) adoptChat(d.chat_id);
  if (!ours(d) || !S.e2e || S.state === "ended") return;
  var before = S.e2e.code;
  await S.e2e.setEpoch(d.epoch, d.pubkey);
  var first = S.state !== "active";
  S.state = "active";
  S.counselorName = d.counselor_name || t("counselor_default");
  setText("chat-title", t("chatting_with", { name: S.counselorName }));
  setText("safety-code", formatSafetyCode(S.e2e.code));
  if (first) {
    show("view-chat", "chat-title");
    // "X has joined" sits in the message log, where the conversation is (issue 13).
    note(t("counselor_joined", { name: S.counselorName }));
  } else if (S.e2e.code !== before) {
    note(t("key_changed", { code: formatSafetyCode(S.e2e.code) }));
  }
}

async function onKeyUpdate(d) {
  if (!ours(d) || !S.e2e || d.from === "visitor") return;
  var before = S.e2e.code;
  await S.e2e.setEpoch(d.epoch, d.pubkey);
  setText("safety-code", formatSafetyCode(S.e2e.code));
  if (S.e2e.code !== before) note(t("key_changed", { code: formatSafetyCode(S.e2e.code) }));
}

/* ---- messages ---- */
async function onMessage(d) {
  if (!ours(d) || !S.e2e) return;
  var got = session.receive(d);
  if (got.kind !== "new") return;
  var obj = null;
  try {
    obj = got.own ? await S.e2e.openOwn(d) : await S.e2e.open(d);
  } catch (e) {
    obj = null;
  }
  if (!S.e2e) return;
  if (!obj && got.own) return; // our own, from before a reload
  var li = messageElement(got.own ? "visitor" : "counselor", obj, d.ts);
  placeElement($("messages"), li, d.id);
  if (!got.own) showTyping(false);
  scrollDown();
}

export function sendMessage(ev) {
  ev.preventDefault();
  var input = $("message-input");
  var text = input.value.trim();
  if (!text || S.state !== "active" || !S.e2e) return;
  if (text.length > cfg.max_text_chars) { showError("send-error", t("err_too_large")); return; }
  showError("send-error", "");
  input.value = "";
  stopTyping();
  sealAndSend({ type: "text", text: text, sent_at: Date.now() });
}

/* Encrypt one plaintext, show it as pending, and send it until stored. */
export function sealAndSend(obj) {
  serial(function () {
    return S.e2e.seal(obj).then(function (env) {
      var li = messageElement("visitor", obj, null);
      li.classList.add("pending");
      $("messages").appendChild(li);
      scrollDown();
      session.submit(env, li);
    });
  });
}

/* ---- typing ---- */
var typingSentAt = 0;
var typingStop = null;
var typingHide = null;

export function onInput() {
  if (S.state !== "active") return;
  var now = Date.now();
  if (now - typingSentAt > 3000) {
    typingSentAt = now;
    emit("typing", { chat_id: S.chatId, on: true });
  }
  clearTimeout(typingStop);
  typingStop = setTimeout(stopTyping, 4000);
}

export function stopTyping() {
  clearTimeout(typingStop);
  if (typingSentAt) {
    typingSentAt = 0;
    if (S.state === "active") emit("typing", { chat_id: S.chatId, on: false });
  }
}

export function showTyping(on) {
  var el = $("typing");
  clearTimeout(typingHide);
  el.textContent = on ? t("typing") : "";
  el.hidden = !on;
  if (on) typingHide = setTimeout(function () { showTyping(false); }, 15000);
}

function onTyping(d) {
  if (!S.exiting && ours(d) && S.state === "active") showTyping(!!d.on);
}

/* ---- resume after a dropped connection ---- */
function resume() {
  emit("chat:resume", { resume_token: S.resumeToken, after_id: session.lastId }, function (ack) {
    serial(async function () {
      if (!ack.ok) {
        if (S.state !== "ended") endView("timeout");
        return;
      }
      if (!ours(ack) || !S.e2e) return;
      if (ack.state === "ended") { endView(null); return; }
      if (ack.state === "queued") {
        S.state = "queued";
        onQueue(ack);
        sendMeta();
        return;
      }
      if (ack.counselor_pubkey && ack.epoch &&
          (ack.epoch !== S.e2e.epoch || ack.counselor_pubkey !== S.e2e.peerPublicKey)) {
        await onAssigned({
          chat_id: S.chatId, epoch: ack.epoch, pubkey: ack.counselor_pubkey,
          counselor_name: ack.counselor_name || S.counselorName
        });
      }
      var missed = byId(ack.missed);
      for (var i = 0; i < missed.length; i++) await onMessage(missed[i]);
      session.resendAll();
    });
  });
}

/* The quick exit: no timer may touch the page afterwards. */
export function dropTypingTimers() {
  clearTimeout(typingStop);
  clearTimeout(typingHide);
}
