/* The console's tools beside the message box: canned responses and referral cards in the
 * visitor's language (a line closed right now says so), and the transfer (E6). */
import { WF, t, errorMessage, fillSelect, notify } from "./config.js";
import { emit } from "./state.js";
import { dropChat } from "./chats.js";
import { chatTitle } from "./chat-panel.js";
import { sendBody } from "./messages.js";

var WEEKDAYS = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

// Is a line with set hours (config/resources.toml, `open`) closed at this moment, in its
// own time zone (Europe/Stockholm), as chat_server/opening_hours.py decides it?
function resourceClosedNow(r, now) {
  if (!r || !r.open) return false;
  var parts = {};
  new Intl.DateTimeFormat("en-GB", {
    timeZone: r.open.timezone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(now || new Date()).forEach(function (p) {
    parts[p.type] = p.value;
  });
  var minute = Number(parts.hour) * 60 + Number(parts.minute);
  var ranges = r.open.week[WEEKDAYS[parts.weekday]] || [];
  return !ranges.some(function (span) {
    return span[0] <= minute && minute < span[1];
  });
}

function refreshResourceOptions(select) {
  Array.prototype.forEach.call(select.options, function (opt) {
    var r = (WF.resources || []).find(function (x) {
      return x.id === opt.value;
    });
    if (!r) return;
    var closed = resourceClosedNow(r);
    opt.dataset.closedNow = closed ? "true" : "false";
    opt.textContent = closed ? t("resource_closed", { label: r.label, hours: r.hours }) : r.hours ? r.label + " (" + r.hours + ")" : r.label;
  });
}

export function setupComposerTools(chat, panel, lang) {
  // Canned responses and referral cards, in the visitor's language
  var canned = panel.querySelector(".canned-select");
  (WF.canned || []).forEach(function (c) {
    canned.appendChild(new Option(c.label, c.id));
  });
  canned.addEventListener("change", function () {
    var c = (WF.canned || []).find(function (x) {
      return x.id === canned.value;
    });
    canned.value = "";
    if (!c) return;
    var text = c.text[lang] || c.text[WF.canned_fallback] || "";
    var input = panel.querySelector(".message-input");
    input.value = input.value ? input.value + " " + text : text;
    input.focus();
  });
  var cardSelect = panel.querySelector(".card-select");
  var sendCard = panel.querySelector(".send-card");
  (WF.resources || []).forEach(function (r) {
    cardSelect.appendChild(new Option(r.label, r.id));
  });
  refreshResourceOptions(cardSelect);
  // The console stays open for hours: tell "closed now" afresh when it is opened.
  cardSelect.addEventListener("focus", function () {
    refreshResourceOptions(cardSelect);
  });
  cardSelect.addEventListener("change", function () {
    sendCard.disabled = !cardSelect.value || chat.ended;
  });
  sendCard.addEventListener("click", async function () {
    var cards = (WF.cards && (WF.cards[lang] || WF.cards.en)) || [];
    var entry = cards.find(function (c) {
      return c.id === cardSelect.value;
    });
    if (!entry || chat.ended) return;
    var body = Object.assign({}, entry.card, { sent_at: Date.now() });
    if (await sendBody(chat, body)) {
      chat.referrals.add(entry.id);
      cardSelect.value = "";
      sendCard.disabled = true;
    }
  });
}

export function setupTransfer(chat, panel) {
  // Transfer (E6)
  var transferTo = panel.querySelector(".transfer-to");
  fillSelect(transferTo, [{ id: "queue", label: t("back_to_queue") }]);
  panel.querySelector(".transfer-refresh").addEventListener("click", function () {
    emit("staff:online", {}).then(function (res) {
      if (!res.ok) return notify(t("error", { message: errorMessage(res) }), "error");
      var list = [{ id: "queue", label: t("back_to_queue") }].concat(
        (res.staff || []).map(function (s) {
          return { id: s.username, label: s.display_name };
        })
      );
      fillSelect(transferTo, list);
    });
  });
  panel.querySelector(".transfer-go").addEventListener("click", function () {
    emit("chat:transfer", { chat_id: chat.id, to: transferTo.value }).then(function (res) {
      if (!res.ok) return notify(t("transfer_failed", { message: errorMessage(res) }), "error");
      notify(t("transferred", { chat: chatTitle(chat) }));
      dropChat(chat);
    });
  });
}
