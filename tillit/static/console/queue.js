/* The console's queue pane: who waits, in the server's order with danger first, each
 * with an Accept button; the wait times tick locally. */
import { $, el, t, label, cloneTemplate, formatDuration, errorMessage, notify } from "./config.js";
import { app, emit } from "./state.js";
import { roleText } from "./chats.js";
import { acceptChat } from "./lifecycle.js";
import { signalQueueChanges } from "./signals.js";

var queue = []; // entries as sent by the server, plus _at (local receive time, ms)
var queueItems = new Map(); // chat_id -> <li>

/* The queue entry of a chat, if it is waiting. */
export function queueEntry(chatId) {
  return queue.find(function (q) {
    return q.chat_id === chatId;
  });
}

// Danger now, or an acute indicator (e.g. suicide risk) marked before it came back.
function inDanger(q) {
  return !!(q.danger_now || q.acute);
}

function sortedQueue(list) {
  // The server orders the queue already (E4); keep its order but make sure danger is first.
  var danger = [];
  var rest = [];
  list.forEach(function (q) {
    (inDanger(q) ? danger : rest).push(q);
  });
  return danger.concat(rest);
}

export function setQueue(list) {
  var now = Date.now();
  queue = sortedQueue(
    (Array.isArray(list) ? list : []).filter(function (q) {
      return q && typeof q.chat_id === "string" && !app.chats.has(q.chat_id);
    })
  ).map(function (q) {
    var copy = Object.assign({}, q);
    copy._at = now;
    return copy;
  });
  renderQueue();
  signalQueueChanges(queue);
}

export function removeFromQueue(chatId) {
  var before = queue.length;
  queue = queue.filter(function (q) {
    return q.chat_id !== chatId;
  });
  if (queue.length !== before) renderQueue();
}

function waitedSeconds(q, now) {
  var base = typeof q.waiting_s === "number" ? q.waiting_s : 0;
  return base + (now - q._at) / 1000;
}

function queueSummary(q) {
  var parts = [];
  if (q.danger_now) parts.push(t("danger_now"));
  if (q.acute) parts.push(t("acute_marked"));
  parts.push(label("languages", q.lang), label("age_groups", q.age_group), label("roles", q.role));
  return parts.join(", ");
}

function buildQueueItem(q) {
  var li = cloneTemplate("tpl-queue-item");
  li.dataset.chatId = q.chat_id;
  var btn = li.querySelector(".accept");
  btn.addEventListener("click", function () {
    acceptChat(q.chat_id);
  });
  return li;
}

function fillQueueItem(li, q) {
  li.classList.toggle("danger", inDanger(q));
  li.querySelector(".qi-danger").hidden = !inDanger(q);
  li.querySelector(".qi-lang").textContent = label("languages", q.lang);
  li.querySelector(".qi-age").textContent = label("age_groups", q.age_group);
  li.querySelector(".qi-role").textContent = roleText(q);
  var topics = li.querySelector(".qi-topics");
  topics.textContent = "";
  (Array.isArray(q.topics) ? q.topics : []).forEach(function (id) {
    topics.appendChild(el("li", "topic", label("topics", id)));
  });
  topics.hidden = topics.children.length === 0;
  var btn = li.querySelector(".accept");
  var busy = app.acceptInFlight.has(q.chat_id);
  btn.disabled = busy;
  btn.textContent = busy ? t("accepting") : t("accept");
  btn.setAttribute("aria-label", t("accept_label", { summary: queueSummary(q) }));
}

export function renderQueue() {
  var list = $("queue-list");
  var active = document.activeElement;
  var focusedItem = active && active !== list && list.contains(active) ? active.closest(".queue-item") : null;
  var focusedId = focusedItem ? focusedItem.dataset.chatId : null;
  var wanted = new Set();
  queue.forEach(function (q, index) {
    wanted.add(q.chat_id);
    var li = queueItems.get(q.chat_id);
    if (!li) {
      li = buildQueueItem(q);
      queueItems.set(q.chat_id, li);
    }
    fillQueueItem(li, q);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
  queueItems.forEach(function (li, id) {
    if (!wanted.has(id)) {
      li.remove();
      queueItems.delete(id);
    }
  });
  if (focusedId) {
    var again = queueItems.get(focusedId);
    if (again && document.activeElement !== again.querySelector(".accept")) {
      again.querySelector(".accept").focus();
    } else if (!again) {
      // The item the counselor was on went away: keep focus in the queue.
      var first = list.querySelector(".accept");
      (first || $("take-next")).focus();
    }
  }
  $("queue-count").textContent = String(queue.length);
  $("queue-empty").hidden = queue.length > 0;
  $("take-next").disabled = !queue.some(function (q) {
    return !app.acceptInFlight.has(q.chat_id);
  });
  tickQueue();
}

export function tickQueue() {
  var now = Date.now();
  queue.forEach(function (q) {
    var li = queueItems.get(q.chat_id);
    if (li) li.querySelector(".wait-time").textContent = formatDuration(waitedSeconds(q, now));
  });
}

export function loadQueue() {
  emit("queue:list", {}).then(function (res) {
    if (res.ok) setQueue(res.queue);
    else notify(t("queue_failed", { message: errorMessage(res) }), "error");
  });
}
