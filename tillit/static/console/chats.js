/* The console's chats: one state object per chat open on this page (keys, messages,
 * reporting state), the safety code, and the visitor's answers. */
import { $, t, label } from "./config.js";
import { ChatCrypto } from "../e2e.js";
import { formatSafetyCode } from "../chat-session.js";
import { app } from "./state.js";
import { selectChat, updateChatsEmpty, updateTitle } from "./chat-panel.js";
import { chatSession } from "./messages.js";
import { showReturning } from "./mailboxes.js";

export function newChat(chatId, meta, crypto) {
  if (crypto) crypto.setChatId(chatId);
  var chat = {
    id: chatId,
    n: ++app.chatCounter,
    meta: meta || {},
    cc: crypto || new ChatCrypto(chatId, "counselor"),
    report: null, // the reporting state as the server last told it (E7)
    suggested: new Set(), // indicator ids suggested by local keyword matching (never sent)
    referrals: new Set(), // resource ids sent as cards in this chat
    firstEpoch: null, // first epoch this page holds keys for
    epoch: null,
    ready: null, // promise resolved once the keys are set
    session: null, // pending, resend, dedupe and order of its messages (chat-session.js)
    unread: 0,
    ended: false,
    panel: null,
    tab: null,
    typingTimer: null,
    typingOn: false,
    typingSentAt: 0,
    typingOffTimer: null,
    unavailableShown: false,
  };
  chat.session = chatSession(chat);
  resetReady(chat);
  app.chats.set(chatId, chat);
  return chat;
}

// A fresh "keys are set" promise: decryption waits on it while a (re-)key is under way.
export function resetReady(chat) {
  chat.ready = new Promise(function (res, rej) {
    chat.resolveReady = res;
    chat.rejectReady = rej;
  });
  chat.ready.catch(function () {});
}

export function dropChat(chat) {
  try {
    chat.cc.forget();
  } catch (e) {
    /* nothing to forget */
  }
  chat.session.clear();
  clearTimeout(chat.typingTimer);
  clearTimeout(chat.typingOffTimer);
  if (chat.panel) chat.panel.remove();
  if (chat.tab) chat.tab.remove();
  if (chat.quickNotice) chat.quickNotice.remove();
  app.chats.delete(chat.id);
  if (app.selectedChatId === chat.id) {
    app.selectedChatId = null;
    var nextOpen = null;
    app.chats.forEach(function (c) {
      if (!nextOpen && c.panel) nextOpen = c;
    });
    if (nextOpen) selectChat(nextOpen.id, true);
    else {
      var take = $("take-next");
      if (!take.disabled) take.focus();
      else $("chats").focus();
    }
  }
  updateChatsEmpty();
  updateTitle();
}

export async function setKeys(chat, epoch, visitorPubkey) {
  var code = await chat.cc.setEpoch(epoch, visitorPubkey);
  if (chat.firstEpoch === null) chat.firstEpoch = epoch;
  chat.epoch = epoch;
  showCode(chat, code);
  return code;
}

export function showCode(chat, code) {
  if (!chat.panel) return;
  var c = String(code == null ? "" : code);
  var node = chat.panel.querySelector(".safety-code");
  node.textContent = formatSafetyCode(c);
  node.dataset.code = c;
}
// ------------------------------------------------ the visitor's answers (chat:update_meta)
// A professional's sector goes with the role: "I ask as a professional (School)".
export function roleText(m) {
  var text = label("roles", m.role);
  if (m.role === "professional" && m.sector) text += " (" + label("sectors", m.sector) + ")";
  return text;
}

export function fillPanelMeta(panel, m) {
  panel.querySelector(".meta-lang").textContent = label("languages", m.lang);
  panel.querySelector(".meta-age").textContent = label("age_groups", m.age_group);
  panel.querySelector(".meta-gender").textContent = label("genders", m.gender);
  panel.querySelector(".meta-role").textContent = roleText(m);
  panel.querySelector(".meta-contact").textContent = label("contact", m.contact);
  var topics = Array.isArray(m.topics) ? m.topics : [];
  panel.querySelector(".meta-topics").textContent = topics.length
    ? topics.map(function (id) { return label("topics", id); }).join(", ")
    : t("not_stated");
  showReturning(panel, m);
}

// The visitor answered the optional questions after we took the chat.
export function onChatMeta(data) {
  var chat = data && typeof data.chat_id === "string" && app.chats.get(data.chat_id);
  if (!chat || !data.meta || typeof data.meta !== "object") return;
  var keep = chat.meta && chat.meta.waited_s;
  chat.meta = Object.assign({}, chat.meta || {}, data.meta);
  if (keep !== undefined) chat.meta.waited_s = keep;
  if (chat.panel) fillPanelMeta(chat.panel, chat.meta);
}
