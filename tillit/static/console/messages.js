/* The console's messages: the log of each chat (placed by id), decrypting what comes in,
 * and sending through the chat's session (chat-session.js: pending, resend with
 * back-off, dedupe, order), with a retry button once a message has failed. */
import { CONFIG, el, t, errorMessage, formatClock, notify } from "./config.js";
import { app, emit } from "./state.js";
import { ChatSession, placeElement } from "../chat-session.js";
import { isInView, nearEnd, scrollToEnd, updateBadge } from "./chat-panel.js";
import { suggestIndicators } from "./workflow.js";

function insertById(chat, li, id) {
  var list = chat.panel.querySelector(".messages");
  var stick = nearEnd(list);
  placeElement(list, li, id);
  if (stick) scrollToEnd(chat);
}

export function appendSystem(chat, text, kind) {
  if (!chat.panel) return null;
  var list = chat.panel.querySelector(".messages");
  var stick = nearEnd(list);
  var li = el("li", "system-line" + (kind ? " " + kind : ""), text);
  list.appendChild(li);
  if (stick) scrollToEnd(chat);
  return li;
}

export function prependSystemOnce(chat, text) {
  if (chat.unavailableShown || !chat.panel) return;
  chat.unavailableShown = true;
  var list = chat.panel.querySelector(".messages");
  list.insertBefore(el("li", "system-line unavailable", text), list.firstChild);
}

function buildMessage(from, body, ts) {
  var li = el("li", "message " + (from === "visitor" ? "from-visitor" : "from-counselor"));
  var who = el("span", "visually-hidden", (from === "visitor" ? t("visitor") : t("you")) + ": ");
  li.appendChild(who);
  var type = body && typeof body.type === "string" ? body.type : "text";
  if (type === "feeling") {
    li.classList.add("feeling");
    var f = el("p", "message-text");
    f.appendChild(el("span", "feeling-tag", t("feeling") + ": "));
    f.appendChild(document.createTextNode(String(body.label || body.text || body.id || "")));
    li.appendChild(f);
    f.dir = "auto";
    if (body.label && body.text && body.text !== body.label) {
      var extra = el("p", "message-text", body.text);
      extra.dir = "auto";
      li.appendChild(extra);
    }
  } else if (type === "resource") {
    li.classList.add("resource");
    li.appendChild(buildResourceCard(body));
  } else {
    var p = el("p", "message-text", body && body.text != null ? body.text : "");
    p.dir = "auto";
    li.appendChild(p);
  }
  var time = el("span", "message-time", formatClock(body && typeof body.sent_at === "number" ? body.sent_at : ts));
  li.appendChild(time);
  return li;
}

function buildResourceCard(body) {
  var r = body.resource && typeof body.resource === "object" ? body.resource : body;
  var card = el("div", "resource-card");
  card.appendChild(el("p", "resource-kind", t("resource")));
  var title = r.title || r.name || r.label;
  if (title) card.appendChild(el("p", "resource-title", title));
  var desc = r.text || r.description;
  if (desc) card.appendChild(el("p", "resource-text", desc));
  if (r.phone) card.appendChild(el("p", "resource-phone", r.phone));
  if (r.hours) card.appendChild(el("p", "resource-hours", r.hours));
  if (typeof r.url === "string" && /^https:\/\//i.test(r.url)) {
    var a = el("a", "resource-url", r.url);
    a.href = r.url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    var p = el("p");
    p.appendChild(a);
    card.appendChild(p);
  }
  return card;
}

/* The chat's session: msg:send while connected ("offline" otherwise: sent again by
 * resendAll() after the rejoin), and what the page shows of each own message. */
export function chatSession(chat) {
  return new ChatSession("counselor", function (env) {
    if (!app.socket || !app.socket.connected) return { ok: false, error: { code: "offline" } };
    return emit("msg:send", env);
  }, {
    onConfirmed: function (entry, id, ts, duplicate) {
      var li = entry.view;
      if (duplicate || !chat.panel) {
        li.remove();
        return;
      }
      li.classList.remove("pending", "failed");
      var status = li.querySelector(".message-status");
      if (status) status.remove();
      insertById(chat, li, id);
    },
    onRetrying: function (entry) {
      entry.view.dataset.retries = String(entry.tries); // refused for now: sent again by itself
    },
    onFailed: function (entry, code, ack) {
      showFailed(chat, entry, ack);
    },
  });
}

function showFailed(chat, entry, ack) {
  var li = entry.view;
  li.classList.add("failed");
  var status = li.querySelector(".message-status");
  if (status) status.remove();
  if (chat.ended) return;
  status = el("span", "message-status", t("send_failed", { message: errorMessage(ack) }) + " ");
  var retry = el("button", "retry quiet", t("retry"));
  retry.type = "button";
  retry.addEventListener("click", function () {
    retry.disabled = true;
    status.firstChild.textContent = t("sending") + " ";
    li.classList.remove("failed");
    // Same envelope, same seq: the server acknowledges the first id (E2).
    chat.session.retry(entry.key);
  });
  status.appendChild(retry);
  li.appendChild(status);
}

// An incoming or echoed envelope (msg:new, or from `missed`).
export async function handleEnvelope(chat, env, opts) {
  var got = chat.session.receive(env);
  if (got.kind !== "new") return;
  try {
    await chat.ready;
  } catch (e) {
    return;
  }
  if (!app.chats.has(chat.id) || !chat.panel) return;

  var body;
  try {
    body = got.own ? await chat.cc.openOwn(env) : await chat.cc.open(env);
  } catch (e) {
    if (chat.firstEpoch !== null && env.epoch < chat.firstEpoch) {
      prependSystemOnce(chat, t("earlier_unavailable"));
    } else {
      var bad = el("li", "system-line undecryptable", t("undecryptable"));
      insertById(chat, bad, env.id);
    }
    return;
  }
  if (!app.chats.has(chat.id) || !chat.panel) return;
  var li = buildMessage(env.from, body, env.ts);
  insertById(chat, li, env.id);
  if (!got.own) {
    suggestIndicators(chat, body);
    setTyping(chat, false);
    if (!(opts && opts.quiet) && !isInView(chat)) {
      chat.unread += 1;
      updateBadge(chat);
    }
  }
}

/* The longest message the server takes (chat.max_text_chars, in the page's config). */
export function maxTextChars() {
  return CONFIG.max_text_chars;
}

export async function sendText(chat) {
  if (chat.ended || !chat.panel) return;
  var input = chat.panel.querySelector(".message-input");
  var text = input.value;
  if (!text.trim()) return;
  if (maxTextChars() && text.length > maxTextChars()) text = text.slice(0, maxTextChars());
  var body = { type: "text", text: text, sent_at: Date.now() };
  if (await sendBody(chat, body)) {
    input.value = "";
    stopOwnTyping(chat);
  }
}

// Encrypt and send one plaintext object (text or a referral card); true once queued.
export async function sendBody(chat, body) {
  try {
    await chat.ready;
  } catch (e) {
    return false;
  }
  var envelope;
  try {
    envelope = await chat.cc.seal(body);
  } catch (e) {
    notify(t("error", { message: e && e.message ? e.message : "encrypt" }), "error");
    return false;
  }
  var li = buildMessage("counselor", body, body.sent_at);
  li.classList.add("pending");
  li.appendChild(el("span", "message-status", t("sending")));
  chat.panel.querySelector(".messages").appendChild(li);
  scrollToEnd(chat);
  chat.session.submit(envelope, li);
  return true;
}

/* ---- typing ---- */
export function onOwnTyping(chat) {
  if (chat.ended) return;
  var now = Date.now();
  if (!chat.typingOn || now - chat.typingSentAt > 3000) {
    chat.typingOn = true;
    chat.typingSentAt = now;
    emit("typing", { chat_id: chat.id, on: true });
  }
  clearTimeout(chat.typingOffTimer);
  chat.typingOffTimer = setTimeout(function () {
    stopOwnTyping(chat);
  }, 4000);
}

export function stopOwnTyping(chat) {
  clearTimeout(chat.typingOffTimer);
  if (!chat.typingOn) return;
  chat.typingOn = false;
  if (!chat.ended) emit("typing", { chat_id: chat.id, on: false });
}

export function setTyping(chat, on) {
  if (!chat.panel) return;
  chat.panel.querySelector(".typing").hidden = !on || chat.ended;
  clearTimeout(chat.typingTimer);
  if (on) {
    chat.typingTimer = setTimeout(function () {
      setTyping(chat, false);
    }, 10000);
  }
}
