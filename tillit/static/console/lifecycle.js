/* The console's chat lifecycle: accept, take next, rejoin after a reload or reconnect
 * (new keys, missed messages, pending ones sent again), the chats held on arrival, and
 * the end of a chat. */
import { $, t, errorMessage, notify } from "./config.js";
import { ChatCrypto } from "../e2e.js";
import { byId } from "../chat-session.js";
import { app, emit } from "./state.js";
import { queueEntry, removeFromQueue, renderQueue } from "./queue.js";
import { dropChat, newChat, resetReady, setKeys } from "./chats.js";
import { chatTitle, isInView, openPanel, selectChat, updateBadge } from "./chat-panel.js";
import { appendSystem, handleEnvelope, prependSystemOnce, setTyping } from "./messages.js";
import { renderReport } from "./workflow.js";

export async function acceptChat(chatId) {
  if (app.acceptInFlight.has(chatId) || app.chats.has(chatId)) return;
  var entry = queueEntry(chatId);
  app.acceptInFlight.add(chatId);
  renderQueue();
  var chat = newChat(chatId, entry ? stripLocal(entry) : {});
  var res;
  try {
    var pub = await chat.cc.newKeyPair();
    res = await emit("chat:accept", { chat_id: chatId, pubkey: pub });
  } catch (e) {
    res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
  }
  app.acceptInFlight.delete(chatId);
  if (!res.ok) {
    chat.rejectReady(new Error("accept failed"));
    dropChat(chat);
    notify(t("accept_failed", { message: errorMessage(res) }), "error");
    renderQueue();
    return;
  }
  await afterAccept(chat, res);
}

async function afterAccept(chat, res) {
  if (res.meta && typeof res.meta === "object") chat.meta = res.meta;
  if (res.report) chat.report = res.report;
  removeFromQueue(chat.id);
  openPanel(chat);
  renderReport(chat);
  try {
    await setKeys(chat, res.epoch, res.visitor_pubkey);
    chat.resolveReady();
  } catch (e) {
    chat.rejectReady(e);
    notify(t("error", { message: e && e.message ? e.message : "crypto" }), "error");
  }
  selectChat(chat.id, true);
  renderQueue();
}

function stripLocal(entry) {
  var m = Object.assign({}, entry);
  delete m._at;
  delete m.chat_id;
  return m;
}

// The server picks the chat (E5): danger now, returned, children, my languages, wait.
var takingNext = false;
export async function takeNext() {
  if (takingNext) return;
  takingNext = true;
  $("take-next").disabled = true;
  var crypto = new ChatCrypto(null, "counselor");
  var res;
  try {
    var pub = await crypto.newKeyPair();
    res = await emit("chat:take_next", { pubkey: pub });
  } catch (e) {
    res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
  }
  takingNext = false;
  if (!res.ok || app.chats.has(res.chat_id)) {
    if (!res.ok) {
      var code = res.error && res.error.code;
      notify(code === "busy" ? t("busy") : t("accept_failed", { message: errorMessage(res) }), "error");
    }
    renderQueue();
    return;
  }
  var chat = newChat(res.chat_id, res.meta || {}, crypto);
  await afterAccept(chat, res);
}

// Re-key and rejoin a chat this counselor holds (after a reload, or a reconnect).
export async function rejoinChat(chat) {
  var res;
  try {
    var pub = await chat.cc.newKeyPair();
    res = await emit("chat:rejoin", { chat_id: chat.id, pubkey: pub, after_id: chat.session.lastId });
  } catch (e) {
    res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
  }
  if (!app.chats.has(chat.id)) return;
  if (!res.ok) {
    openPanel(chat);
    // With keys of earlier epochs still in memory (a reconnect) old messages still open.
    if (chat.epoch !== null) chat.resolveReady();
    else chat.rejectReady(new Error("rejoin failed"));
    appendSystem(chat, t("rejoin_failed", { message: errorMessage(res) }), "error");
    return;
  }
  openPanel(chat);
  if (res.report) {
    chat.report = res.report;
    renderReport(chat);
  }
  try {
    var hadKeys = chat.epoch !== null;
    await setKeys(chat, res.epoch, res.visitor_pubkey);
    chat.resolveReady();
    if (hadKeys) appendSystem(chat, t("own_key_changed"), "key-change");
  } catch (e) {
    chat.rejectReady(e);
    notify(t("error", { message: e && e.message ? e.message : "crypto" }), "error");
    return;
  }
  var missed = byId(res.missed);
  for (var i = 0; i < missed.length; i++) {
    await handleEnvelope(chat, missed[i], { quiet: !!chat.freshFromReload });
  }
  chat.freshFromReload = false;
  chat.session.resendAll(); // what was sent while the connection was down
}

export function loadMine() {
  emit("chat:mine", {}).then(function (res) {
    if (!res.ok) {
      notify(t("error", { message: errorMessage(res) }), "error");
      return;
    }
    var held = Array.isArray(res.chats) ? res.chats : [];
    var heldIds = new Set();
    held.forEach(function (info) {
      if (!info || typeof info.chat_id !== "string") return;
      heldIds.add(info.chat_id);
      removeFromQueue(info.chat_id);
      var chat = app.chats.get(info.chat_id);
      if (chat && app.acceptInFlight.has(info.chat_id)) return; // the accept path handles it
      if (!chat) {
        chat = newChat(info.chat_id, info.meta || {});
        chat.freshFromReload = true;
      } else if (info.meta) {
        chat.meta = info.meta;
      }
      if (info.report) chat.report = info.report;
      if (info.state === "ended") {
        openPanel(chat);
        if (!chat.ended) markEnded(chat, { by: "other" });
        if (chat.epoch === null) {
          chat.resolveReady();
          if (typeof info.last_id === "number" && info.last_id > 0) {
            prependSystemOnce(chat, t("earlier_unavailable"));
          }
        }
        return;
      }
      if (chat.epoch !== null) {
        // Reconnect with keys in memory: decryption waits for the new epoch's keys.
        resetReady(chat);
      }
      rejoinChat(chat);
    });
    // Chats open here that the server no longer gives us (ended while we were away).
    app.chats.forEach(function (chat) {
      if (!heldIds.has(chat.id) && !app.acceptInFlight.has(chat.id) && chat.panel && !chat.ended) {
        markEnded(chat, { by: "other" });
        appendSystem(chat, t("chat_gone"));
      }
    });
  });
}

export function markEnded(chat, info) {
  chat.ended = true;
  var by = info && info.by;
  var reason = info && info.reason;
  var text;
  var quick = reason === "quick_exit";
  if (quick) text = t("ended_quick_exit");
  else if (by === "visitor") text = t("ended_visitor");
  else if (by === "timeout") text = t("ended_timeout");
  else if (by === "counselor") text = t("ended_counselor");
  else text = t("ended_other");
  if (!chat.panel) openPanel(chat);
  var panel = chat.panel;
  panel.classList.add("ended");
  panel.classList.toggle("quick-exit", quick);
  panel.dataset.endedBy = by || "";
  if (quick) panel.dataset.reason = "quick_exit";
  var status = panel.querySelector(".chat-status");
  status.textContent = text;
  status.hidden = false;
  status.classList.toggle("quick-exit", quick);
  setTyping(chat, false);
  var input = panel.querySelector(".message-input");
  input.disabled = true;
  panel.querySelector(".send").disabled = true;
  panel.querySelector(".send-card").disabled = true;
  panel.querySelector(".close-chat").classList.add("primary");
  chat.tab.classList.add("ended");
  chat.tab.classList.toggle("quick-exit", quick);
  chat.tab.querySelector(".tab-flag").textContent = quick ? "!" : t("ended_short");
  clearTimeout(chat.typingOffTimer);
  chat.typingOn = false;
  // Give up on messages that were never stored.
  chat.session.giveUp().forEach(function (p) {
    p.view.classList.add("failed");
    var retry = p.view.querySelector(".retry");
    if (retry) retry.remove();
  });
  if (quick) {
    // Very visible at once, without stealing the counselor's focus from another chat.
    var note = notify(t("quick_exit_notice", { chat: chatTitle(chat) }), "alert", {
      label: t("show"),
      run: function () {
        if (app.chats.has(chat.id)) selectChat(chat.id, true);
      },
    });
    chat.quickNotice = note;
  }
  if (!isInView(chat)) {
    chat.unread += 1;
    updateBadge(chat);
  }
}
