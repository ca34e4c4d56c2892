/* The console's chat panels and their tabs (an ARIA tab list), unread badges and the
 * page title's count. */
import { $, el, t, label, cloneTemplate } from "./config.js";
import { app } from "./state.js";
import { fillPanelMeta, showCode } from "./chats.js";
import { onOwnTyping, sendText, stopOwnTyping } from "./messages.js";
import { openCloseForm } from "./closing.js";
import { setupWorkflow } from "./workflow.js";

export function updateChatsEmpty() {
  var any = false;
  app.chats.forEach(function (c) {
    if (c.panel) any = true;
  });
  $("chats-empty").hidden = any;
  $("chat-tabs").hidden = !any;
}

export function chatTitle(chat) {
  return t("chat_label", { n: chat.n });
}

export function openPanel(chat) {
  if (chat.panel) return chat.panel;
  var m = chat.meta || {};
  var panel = cloneTemplate("tpl-chat-panel");
  var pid = "chat-panel-" + chat.n;
  var tid = "chat-tab-" + chat.n;
  panel.id = pid;
  panel.dataset.chatId = chat.id;
  panel.setAttribute("aria-labelledby", tid);
  panel.querySelector(".chat-title").textContent = chatTitle(chat);
  panel.querySelector(".chat-danger").hidden = !m.danger_now;
  panel.classList.toggle("danger", !!m.danger_now);
  fillPanelMeta(panel, m);

  var input = panel.querySelector(".message-input");
  input.id = "chat-input-" + chat.n;
  panel.querySelector(".composer-label").setAttribute("for", input.id);
  panel.querySelector(".messages").setAttribute("aria-labelledby", tid);

  panel.querySelector(".composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    sendText(chat);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      sendText(chat);
    }
  });
  input.addEventListener("input", function () {
    onOwnTyping(chat);
  });
  input.addEventListener("blur", function () {
    stopOwnTyping(chat);
  });
  panel.querySelector(".close-chat").addEventListener("click", function () {
    openCloseForm(chat);
  });
  setupWorkflow(chat, panel);

  var tab = el("button", "chat-tab");
  tab.type = "button";
  tab.id = tid;
  tab.dataset.chatId = chat.id;
  tab.setAttribute("role", "tab");
  tab.setAttribute("aria-controls", pid);
  tab.setAttribute("aria-selected", "false");
  tab.tabIndex = -1;
  var tabName = el("span", "tab-name", chatTitle(chat));
  var tabMeta = el("span", "tab-meta");
  tabMeta.appendChild(el("bdi", null, label("languages", m.lang)));
  tabMeta.appendChild(document.createTextNode(" · "));
  tabMeta.appendChild(el("bdi", null, label("age_groups", m.age_group)));
  var tabFlag = el("span", "tab-flag");
  var badge = el("span", "unread-badge");
  badge.hidden = true;
  tab.appendChild(tabName);
  tab.appendChild(tabMeta);
  tab.appendChild(tabFlag);
  tab.appendChild(badge);
  if (m.danger_now) tab.classList.add("danger");
  tab.addEventListener("click", function () {
    selectChat(chat.id, false);
  });
  tab.addEventListener("keydown", onTabKeydown);

  panel.hidden = true;
  $("chat-tabs").appendChild(tab);
  $("chat-panels").appendChild(panel);
  chat.panel = panel;
  chat.tab = tab;
  if (chat.cc && chat.epoch !== null) showCode(chat, chat.cc.code);
  updateChatsEmpty();
  if (app.selectedChatId === null || !app.chats.has(app.selectedChatId)) selectChat(chat.id, false);
  return panel;
}

function onTabKeydown(ev) {
  var tabs = Array.prototype.slice.call($("chat-tabs").querySelectorAll(".chat-tab"));
  var i = tabs.indexOf(ev.currentTarget);
  var j = -1;
  if (ev.key === "ArrowRight" || ev.key === "ArrowDown") j = (i + 1) % tabs.length;
  else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") j = (i - 1 + tabs.length) % tabs.length;
  else if (ev.key === "Home") j = 0;
  else if (ev.key === "End") j = tabs.length - 1;
  if (j < 0) return;
  ev.preventDefault();
  selectChat(tabs[j].dataset.chatId, false);
  tabs[j].focus();
}

export function selectChat(chatId, focusInput) {
  var target = app.chats.get(chatId);
  if (!target || !target.panel) return;
  app.selectedChatId = chatId;
  app.chats.forEach(function (c) {
    if (!c.panel) return;
    var on = c.id === chatId;
    c.panel.hidden = !on;
    c.tab.setAttribute("aria-selected", on ? "true" : "false");
    c.tab.tabIndex = on ? 0 : -1;
    c.tab.classList.toggle("selected", on);
  });
  target.unread = 0;
  updateBadge(target);
  scrollToEnd(target);
  if (focusInput) {
    var input = target.panel.querySelector(".message-input");
    if (!input.disabled) input.focus();
    else target.panel.querySelector(".close-chat").focus();
  }
}

export function isInView(chat) {
  return app.selectedChatId === chat.id && document.visibilityState !== "hidden";
}

export function updateBadge(chat) {
  if (!chat.tab) return;
  var badge = chat.tab.querySelector(".unread-badge");
  badge.hidden = chat.unread === 0;
  badge.textContent = String(chat.unread);
  badge.setAttribute("aria-label", t("unread", { n: chat.unread }));
  chat.tab.classList.toggle("has-unread", chat.unread > 0);
  updateTitle();
}

export function updateTitle() {
  var total = 0;
  app.chats.forEach(function (c) {
    total += c.unread;
  });
  document.title = total > 0 ? "(" + total + ") " + app.baseTitle : app.baseTitle;
}

/* Back to a chat's tab: what it showed is read. */
export function watchVisibility() {
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && app.selectedChatId && app.chats.has(app.selectedChatId)) {
      var c = app.chats.get(app.selectedChatId);
      c.unread = 0;
      updateBadge(c);
    }
  });
}

export function scrollToEnd(chat) {
  var list = chat.panel && chat.panel.querySelector(".messages");
  if (list) list.scrollTop = list.scrollHeight;
}

export function nearEnd(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}
