/* Tillit visitor page: start, queue, chat, end, feedback in one document (the entry
 * module; visitor.html preloads the others). Everything lives in memory only. */
import { cfg, $, t, S, live, show, stopFlash, showError } from "./state.js";
import { canChat, loadCrypto, loadSolver, onMetaChange, sendMeta, showClosed, startChat } from "./start.js";
import { connect, dropTypingTimers, onInput, sealAndSend, sendMessage } from "./chat.js";
import { askEnd, clearConversation, closeEndConfirm, endChat, forgetChat, newChat, sendFeedback } from "./ending.js";

/* ---- quick exit: static/quick-exit.js does the leaving; it asks us for these ---- */
var exitHooks = {
  token: function () { return live() ? S.resumeToken : null; },
  socketEnder: function () {
    if (!live() || !S.socket || !S.socket.connected) return null;
    var s = S.socket;
    var id = S.chatId;
    return function () { s.emit("chat:end", { chat_id: id, reason: "quick_exit" }, function () {}); };
  },
  wipe: function () {
    S.exiting = true;
    forgetChat("ended");
    dropTypingTimers();
    stopFlash();
    clearConversation();
    var input = $("message-input");
    if (input) input.value = "";
    $("return-code-input").value = "";
    if (mb) mb.then(function (m) { m.wipeMailbox(); });
  }
};
if (window.TillitQuickExit) window.TillitQuickExit.register(exitHooks);

/* ---- feelings board: a picture sent as words (issue 7) ---- */
function toggleFeelings(open) {
  $("feelings-board").hidden = !open;
  $("feelings-toggle").setAttribute("aria-expanded", open ? "true" : "false");
}
function sendFeeling(btn) {
  if (S.state !== "active" || !S.e2e) return;
  showError("send-error", "");
  sealAndSend({
    type: "feeling",
    feeling: btn.getAttribute("data-feeling"),
    text: btn.querySelector(".feeling-label").textContent,
    sent_at: Date.now()
  });
}
$("feelings-toggle").addEventListener("click", function () {
  toggleFeelings($("feelings-board").hidden);
});
$("feelings-board").addEventListener("click", function (ev) {
  var btn = ev.target.closest ? ev.target.closest(".feeling") : null;
  if (btn) sendFeeling(btn);
});
if (document.body.classList.contains("easy-read")) toggleFeelings(true);

/* ---- language switch: replaces the page, adds no history entry, sets nothing ---- */
$("lang-switch").addEventListener("click", function (ev) {
  var a = ev.target.closest ? ev.target.closest("a[href]") : null;
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
  ev.preventDefault();
  if (S.state === "queued" || S.state === "active" || S.state === "starting") return;
  window.location.replace(a.href);
});
$("closed-back").addEventListener("click", function () { show("view-start", "start-title"); });
if (cfg.open_now === false) showClosed("closed", false);

/* ---- mailbox (E12), loaded when needed ---- */
var mb = null;
function mailbox(name) {
  return function (ev) {
    if (ev && ev.type === "submit") ev.preventDefault();
    if (!mb) {
      mb = import("./mailbox.js");
      mb.catch(function () { mb = null; });
    }
    mb.then(function (m) { return name && m[name](); }).catch(function () {
      showError("return-code-open-error", t("err_generic"));
    });
  };
}
$("return-code-form").addEventListener("submit", mailbox("openWithCode"));
$("return-code-input").addEventListener("focus", mailbox(null));
$("return-code-request").addEventListener("click", mailbox("requestCode"));
$("decoy-request").addEventListener("click", mailbox("requestDecoy"));
$("safety-info").addEventListener("toggle", mailbox("prepare"));

/* ---- wiring ---- */
$("start-form").addEventListener("submit", startChat);
$("start-form").addEventListener("change", function (ev) {
  if (ev.target.name === "danger_now") $("emergency").hidden = ev.target.value !== "yes";
});
$("leave-queue").addEventListener("click", endChat);
$("end-chat").addEventListener("click", askEnd);
$("end-continue").addEventListener("click", function () { closeEndConfirm(true); });
$("end-confirmed").addEventListener("click", function () { closeEndConfirm(false); endChat(); });
$("end-confirm").addEventListener("keydown", function (ev) {
  if (ev.key === "Escape") closeEndConfirm(true);
});
$("meta-form").addEventListener("change", onMetaChange);
$("meta-form").addEventListener("submit", function (ev) { ev.preventDefault(); sendMeta(); });
$("compose").addEventListener("submit", sendMessage);
$("message-input").addEventListener("input", onInput);
$("message-input").addEventListener("keydown", function (ev) {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) sendMessage(ev);
});
$("feedback-form").addEventListener("submit", sendFeedback);
$("new-chat").addEventListener("click", newChat);
// The work for the first chat:start, in the background as soon as the visitor turns
// to the start form (not at load: a page that never opened a socket stays as light as
// before, for a reader and for the back/forward cache alike).
function warmUp() {
  if (S.state !== "start") return;
  loadSolver();
  loadCrypto().catch(function () {});
  if (!S.socket && canChat()) connect();
}
["focusin", "pointerdown", "input"].forEach(function (name) {
  $("start-form").addEventListener(name, warmUp);
});
document.documentElement.setAttribute("data-ready", "true");
