/* The visitor page's end of a chat: "End chat" asked once more, the end screen with the
 * conversation (memory only), the resources that fit, feedback, and a new chat. */
import { $, t, S, emit, ours, show, setText, showError } from "./state.js";
import { session, showTyping, stopTyping } from "./chat.js";
import { prepareWork, resetMeta } from "./start.js";

/* Drops the chat's keys and messages from memory. */
export function wipe() {
  if (S.e2e) S.e2e.forget();
  S.e2e = null;
  S.resumeToken = null;
  S.startPayload = null;
  session.clear();
}

/* wipe() and forget which chat it was. */
export function forgetChat(nextState) {
  wipe();
  S.chatId = null;
  S.counselorName = "";
  S.state = nextState;
}

/* "End chat" asks once more; "Continue chatting" is the default (issue 12). The quick
   exit (static/quick-exit.js) never asks. */
export function askEnd() {
  if (S.state !== "active") { endChat(); return; }
  $("end-confirm").hidden = false;
  $("end-chat").setAttribute("aria-expanded", "true");
  $("end-continue").focus();
}

export function closeEndConfirm(refocus) {
  $("end-confirm").hidden = true;
  $("end-chat").setAttribute("aria-expanded", "false");
  if (refocus) $("end-chat").focus();
}

export function endChat() {
  if (S.state === "starting" && !S.chatId) { newChat(); return; }
  if (!S.chatId || S.state === "ended") return;
  var wasQueued = S.state === "queued" || S.state === "starting";
  emit("chat:end", { chat_id: S.chatId });
  endView(wasQueued ? "left_queue" : "visitor");
}

export function onEnded(d) {
  if (!ours(d) || S.state === "ended") return;
  endView(d.by === "visitor" || d.by === "counselor" || d.by === "timeout" ? d.by : null);
}

export function endView(by) {
  S.state = "ended";
  stopTyping();
  showTyping(false);
  wipe();
  closeEndConfirm(false);
  keepConversation();
  orderResources(S.chatTopics);
  placeReturnArea("ended-resources", true);
  setText("connection", "");
  setText("ended-text", t(by ? "ended_" + by : "ended_unknown"));
  var form = $("feedback-form");
  form.reset();
  form.hidden = by === "left_queue" || !S.chatId;
  $("send-feedback").disabled = false;
  setText("feedback-status", "");
  show("chat-ended", "ended-title");
}

/* The conversation stays readable on the end screen (issue 10): the shown messages move
   there, in memory only, and go with "new chat" or the quick exit. */
function keepConversation() {
  var from = $("messages");
  var to = $("ended-messages");
  to.textContent = "";
  var hasMessages = !!from.querySelector(".message");
  while (from.firstChild) to.appendChild(from.firstChild);
  $("ended-log").hidden = !hasMessages;
}

export function clearConversation() {
  $("messages").textContent = "";
  $("ended-messages").textContent = "";
  $("ended-log").hidden = true;
}

/* The return code (E12) goes along. */
export function placeReturnArea(before, canWrite) {
  $(before).before($("return-area"));
  $("return-area").classList.toggle("can-write", canWrite);
}

/* Resources whose `topics` (config/resources.toml) meet the chat's topics go first. The
   page has one list: it moves to the end screen, and back to the closed view in order. */
export function orderResources(topics, where) {
  var list = $("help-resources");
  if (!list) return;
  $(where || "ended-resources").appendChild(list);
  var items = Array.prototype.slice.call(list.children);
  items.forEach(function (li, i) { if (!li.dataset.order) li.dataset.order = String(i); });
  var fits = function (li) {
    var own = (li.getAttribute("data-topics") || "").split(" ");
    return topics.some(function (x) { return own.indexOf(x) >= 0; });
  };
  items.sort(function (a, b) {
    return (fits(b) - fits(a)) || (Number(a.dataset.order) - Number(b.dataset.order));
  });
  items.forEach(function (li) {
    li.classList.toggle("fits", topics.length > 0 && fits(li));
    list.appendChild(li);
  });
}

export function sendFeedback(ev) {
  ev.preventDefault();
  var form = $("feedback-form");
  var helped = form.querySelector("input[name=helped]:checked");
  var score = form.querySelector("input[name=score]:checked");
  if (!helped && !score) { setText("feedback-status", t("feedback_missing")); return; }
  var payload = { chat_id: S.chatId };
  if (helped) payload.helped = helped.value;
  if (score) payload.score = Number(score.value);
  $("send-feedback").disabled = true;
  emit("feedback", payload);
  setText("feedback-status", t("feedback_thanks"));
}

export function newChat() {
  forgetChat("start");
  clearConversation();
  resetMeta();
  $("message-input").value = "";
  showError("send-error", "");
  showError("start-error", "");
  $("start-form").reset();
  $("emergency").hidden = true;
  $("start-chat").disabled = false;
  placeReturnArea("end-chat", false);
  $("return-code-request").disabled = false;
  if ($("return-code-shown")) $("return-code-shown").hidden = true;
  setText("connection", "");
  show("view-start", "start-title");
  if (S.socket && S.socket.connected) prepareWork();
}
