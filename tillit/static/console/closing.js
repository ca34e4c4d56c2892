/* The console's closing form (protocol E9): outcome, topics and referrals, checked
 * against the reporting decision by the server. */
import { VOCAB, WF, el, t, errorMessage, fillSelect } from "./config.js";
import { emit } from "./state.js";
import { dropChat } from "./chats.js";
import { stopOwnTyping } from "./messages.js";
import { indicatorLabel } from "./workflow.js";

function checkboxList(fieldset, name, entries, checked) {
  fieldset.querySelectorAll(".check-item").forEach(function (n) {
    n.remove();
  });
  entries.forEach(function (e) {
    var lab = el("label", "check-item");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = name;
    box.value = e.id;
    box.checked = checked.has(e.id);
    lab.appendChild(box);
    lab.appendChild(document.createTextNode(" " + e.label));
    fieldset.appendChild(lab);
  });
}

function defaultOutcome(chat) {
  var p = chat.panel;
  if (!chat.ended || p.dataset.endedBy === "counselor") return "completed";
  return p.dataset.reason === "quick_exit" ? "quick_exit" : "visitor_left";
}

export function openCloseForm(chat) {
  var form = chat.panel.querySelector(".close-form");
  fillSelect(form.querySelector(".close-outcome"), WF.outcomes || []);
  form.querySelector(".close-outcome").value = defaultOutcome(chat);
  checkboxList(form.querySelector(".close-topics"), "topics", VOCAB.topics || [],
    new Set(Array.isArray(chat.meta.topics) ? chat.meta.topics : []));
  checkboxList(form.querySelector(".close-referrals"), "referrals", WF.resources || [], chat.referrals);
  var marked = (chat.report && chat.report.indicators) || [];
  form.querySelector(".close-indicators").textContent = t("close_indicators", {
    list: marked.length ? marked.map(indicatorLabel).join(", ") : t("none"),
  });
  form.querySelector(".close-error").hidden = true;
  form.hidden = false;
  form.querySelector(".close-outcome").focus();
}

function checkedValues(root, name) {
  return Array.prototype.map.call(root.querySelectorAll("input[name=" + name + "]:checked"), function (b) {
    return b.value;
  });
}

export async function submitClose(chat) {
  var form = chat.panel.querySelector(".close-form");
  var btn = form.querySelector(".close-submit");
  btn.disabled = true;
  stopOwnTyping(chat);
  var payload = {
    outcome: form.querySelector(".close-outcome").value || null,
    topics: checkedValues(form, "topics"),
    referrals: checkedValues(form, "referrals"),
  };
  var res = await emit("chat:close", { chat_id: chat.id, form: payload });
  btn.disabled = false;
  if (res.ok || (res.error && res.error.code === "not_found")) {
    dropChat(chat);
    return;
  }
  var line = form.querySelector(".close-error");
  var conflict = res.error && res.error.code === "conflict";
  line.textContent = conflict ? t("close_conflict") : t("close_failed", { message: errorMessage(res) });
  line.hidden = false;
  if (conflict) {
    var kind = chat.panel.querySelector(".wf-decision-kind");
    kind.scrollIntoView({ block: "nearest" });
    kind.focus();
  }
}
