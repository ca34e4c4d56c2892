/* The console's duty-to-report workflow (protocol E7): a child involved, the wording to
 * tell them, concern indicators (suggested locally from keywords, never sent), the
 * acute banner and the reporting decision; it also sets up a panel's other tools. */
import { INDICATORS, WF, el, t, label, errorMessage, fillSelect, notify } from "./config.js";
import { emit } from "./state.js";
import { setupComposerTools, setupTransfer } from "./composer-tools.js";
import { setupNotes } from "./notes.js";
import { submitClose } from "./closing.js";

export function indicatorLabel(id) {
  var found = INDICATORS.find(function (i) {
    return i.id === id;
  });
  return found ? found.label : id;
}

function textOfBody(body) {
  if (!body || typeof body !== "object") return "";
  return [body.text, body.label].filter(function (x) {
    return typeof x === "string";
  }).join(" ");
}

function normalize(text) {
  return String(text || "").normalize("NFKC").toLocaleLowerCase();
}

// Keywords of the visitor's language and its base language ("sv" for "sv-x-easy"; sv and
// en when none is stated) found in decrypted text mark indicators as *suggested*, here
// only: nothing is sent anywhere. An indicator's `exclude` phrases are cut out first
// ("ta livet av mig" is self-harm, not a threat to kill). The same rule in Python:
// counselor_console/keywords.py.
function keywordLangs(lang) {
  if (!lang) return ["sv", "en"];
  var base = lang.split("-")[0];
  return base === lang ? [lang] : [lang, base];
}

export function matchIndicators(text, lang) {
  var hay = normalize(text);
  if (!hay) return [];
  var langs = keywordLangs(lang);
  return INDICATORS.filter(function (ind) {
    var own = hay;
    var words = [];
    langs.forEach(function (l) {
      ((ind.exclude && ind.exclude[l]) || []).forEach(function (phrase) {
        if (phrase) own = own.split(normalize(phrase)).join(" ");
      });
      words = words.concat((ind.keywords && ind.keywords[l]) || []);
    });
    return words.some(function (w) {
      return w && own.indexOf(normalize(w)) !== -1;
    });
  }).map(function (ind) {
    return ind.id;
  });
}

export function suggestIndicators(chat, body) {
  var before = chat.suggested.size;
  matchIndicators(textOfBody(body), chat.meta && chat.meta.lang).forEach(function (id) {
    chat.suggested.add(id);
  });
  if (chat.suggested.size !== before) renderReport(chat);
}

function reportOf(chat) {
  return chat.report || { child: false, child_auto: false, informed: false, indicators: [],
    acute: false, decision: null, decision_required: false };
}

function applyReport(chat, res, failText) {
  if (res.ok && res.report) {
    chat.report = res.report;
  } else if (!res.ok) {
    notify(t(failText || "report_failed", { message: errorMessage(res) }), "error");
  }
  renderReport(chat);
}

// Which language the duty-to-report wording is in, and whether it is not the visitor's
// own (config/reporting.toml has one per visitor language; a new language may lack it).
function wordingLanguageNote(lang, wordingLang) {
  var text = lang && wordingLang !== lang
    ? t("wording_fallback", { language: label("languages", wordingLang), visitor: label("languages", lang) })
    : t("wording_language", { language: label("languages", wordingLang) });
  var note = el("p", "wf-wording-lang" + (lang && wordingLang !== lang ? " fallback" : ""), text);
  note.dataset.lang = wordingLang;
  return note;
}

// The duty (staff), the "bör" of everyone else and the police disclosure, as configured.
function legalText() {
  var parts = [t("legal_reference", { ref: WF.legal_reference || "" })];
  if (WF.others_reference) parts.push(t("others_reference", { ref: WF.others_reference }));
  if (WF.police_reference) parts.push(t("police_reference", { ref: WF.police_reference }));
  return parts.join(" · ");
}

export function setupWorkflow(chat, panel) {
  var lang = (chat.meta && chat.meta.lang) || "";
  panel.querySelector(".wf-legal").textContent = legalText();
  var wordingLang = WF.inform_wording && WF.inform_wording[lang] ? lang : "en";
  var wording = (WF.inform_wording && WF.inform_wording[wordingLang]) || "";
  var quote = panel.querySelector(".wf-wording");
  quote.textContent = wording;
  quote.dir = "auto";
  quote.lang = wordingLang;
  quote.parentNode.insertBefore(wordingLanguageNote(lang, wordingLang), quote);

  // A child is involved (E7: chat:child)
  panel.querySelector(".wf-child-box").addEventListener("change", function (ev) {
    var box = ev.currentTarget;
    emit("chat:child", { chat_id: chat.id, involved: box.checked }).then(function (res) {
      applyReport(chat, res);
    });
  });
  panel.querySelector(".wf-use-wording").addEventListener("click", function () {
    var input = panel.querySelector(".message-input");
    input.value = wording;
    input.focus();
  });
  panel.querySelector(".wf-informed").addEventListener("click", function () {
    emit("chat:informed", { chat_id: chat.id }).then(function (res) {
      applyReport(chat, res);
    });
  });

  // Indicators, grouped, with acute ones marked
  var groupsBox = panel.querySelector(".wf-groups");
  (WF.indicator_groups || []).forEach(function (g) {
    var fs = el("fieldset", "wf-group wf-group-" + g.id);
    fs.appendChild(el("legend", null, g.label));
    INDICATORS.filter(function (i) {
      return i.group === g.id;
    }).forEach(function (ind) {
      var lab = el("label", "indicator" + (ind.acute ? " acute" : ""));
      lab.dataset.indicator = ind.id;
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = ind.id;
      box.className = "indicator-box";
      lab.appendChild(box);
      lab.appendChild(document.createTextNode(" " + ind.label + " "));
      lab.appendChild(el("span", "suggested-tag", t("suggested")));
      fs.appendChild(lab);
    });
    groupsBox.appendChild(fs);
  });
  groupsBox.addEventListener("change", function () {
    var ids = checkedIndicatorIds(panel);
    emit("chat:indicators", { chat_id: chat.id, indicators: ids }).then(function (res) {
      applyReport(chat, res);
    });
  });

  var routine = panel.querySelector(".wf-routine-steps");
  (WF.anonymous_routine || []).forEach(function (step) {
    routine.appendChild(el("li", null, step));
  });

  // The decision (E7: report:decision)
  var kind = panel.querySelector(".wf-decision-kind");
  fillSelect(kind, WF.decisions || [], t("choose"));
  fillSelect(panel.querySelector(".wf-decision-to"), WF.receivers || [], "—");
  fillSelect(panel.querySelector(".wf-decision-reason"), WF.reasons || [], "—");
  fillSelect(panel.querySelector(".wf-decision-channel"), WF.channels || [], "—");
  kind.addEventListener("change", function () {
    updateDecisionFields(panel);
  });
  updateDecisionFields(panel);
  panel.querySelector(".wf-record").addEventListener("click", function () {
    var value = function (cls) {
      var v = panel.querySelector(cls).value;
      return v ? v : null;
    };
    if (!kind.value) {
      kind.focus();
      return;
    }
    emit("report:decision", {
      chat_id: chat.id,
      decision: kind.value,
      to: value(".wf-decision-to"),
      reason: value(".wf-decision-reason"),
      channel: value(".wf-decision-channel"),
    }).then(function (res) {
      if (!res.ok) {
        panel.querySelector(".wf-decision-status").textContent = t("decision_invalid", { message: errorMessage(res) });
        return;
      }
      applyReport(chat, res);
    });
  });

  setupComposerTools(chat, panel, lang);
  setupTransfer(chat, panel);
  setupNotes(chat, panel);
  var closeForm = panel.querySelector(".close-form");
  closeForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submitClose(chat);
  });
  panel.querySelector(".close-cancel").addEventListener("click", function () {
    closeForm.hidden = true;
    panel.querySelector(".close-chat").focus();
  });
  renderReport(chat);
}

function checkedIndicatorIds(panel) {
  return Array.prototype.map.call(panel.querySelectorAll(".indicator-box:checked"), function (b) {
    return b.value;
  });
}

function updateDecisionFields(panel) {
  var kind = panel.querySelector(".wf-decision-kind").value;
  var rule = (WF.decisions || []).find(function (d) {
    return d.id === kind;
  }) || { to: "optional", reason: "optional" };
  var set = function (cls, mode) {
    var select = panel.querySelector(cls);
    select.disabled = !kind || mode === "none";
    if (select.disabled) select.value = "";
    select.required = mode === "required";
    select.closest(".wf-field").classList.toggle("required", mode === "required");
  };
  set(".wf-decision-to", rule.to);
  set(".wf-decision-reason", rule.reason);
  set(".wf-decision-channel", kind === "report_made" ? "optional" : "none");
}

// The acute banner's numbers: those marked `acute` in config/resources.toml, then the
// resources of each marked acute indicator (Självmordslinjen for self-harm; BRIS only
// when a child is involved).
function renderAcuteNumbers(list, r, marked) {
  var seen = new Set();
  var entries = (WF.acute_numbers || []).slice();
  INDICATORS.forEach(function (ind) {
    if (ind.acute && marked.has(ind.id)) entries = entries.concat(ind.resources || []);
  });
  list.textContent = "";
  entries.forEach(function (n) {
    if (seen.has(n.id) || (n.audience === "under_18" && !r.child)) return;
    seen.add(n.id);
    var li = el("li", "acute-number", n.label + (n.phone && n.label.indexOf(n.phone) === -1 ? " – " + n.phone : ""));
    li.dataset.resource = n.id;
    list.appendChild(li);
  });
}

export function renderReport(chat) {
  var panel = chat.panel;
  if (!panel) return;
  var r = reportOf(chat);
  var box = panel.querySelector(".wf-child-box");
  box.checked = !!r.child;
  box.disabled = !!r.child_auto || chat.ended && !r.child;
  panel.querySelector(".wf-child-auto").hidden = !r.child_auto;
  panel.querySelector(".wf-inform").hidden = !r.child;
  panel.querySelector(".wf-informed").hidden = !!r.informed;
  panel.querySelector(".wf-informed-done").hidden = !r.informed;
  var marked = new Set(r.indicators || []);
  panel.querySelectorAll(".indicator").forEach(function (lab) {
    var id = lab.dataset.indicator;
    lab.querySelector(".indicator-box").checked = marked.has(id);
    var suggested = chat.suggested.has(id) && !marked.has(id);
    lab.classList.toggle("suggested", suggested);
  });
  panel.querySelector(".wf-suggest-hint").hidden = !Array.from(chat.suggested).some(function (id) {
    return !marked.has(id);
  });
  var acute = panel.querySelector(".acute-banner");
  renderAcuteNumbers(panel.querySelector(".acute-numbers"), r, marked);
  var wasHidden = acute.hidden;
  acute.hidden = !r.acute;
  panel.classList.toggle("acute", !!r.acute);
  if (r.acute && wasHidden && chat.tab) chat.tab.classList.add("acute");
  var prompts = panel.querySelector(".wf-prompts");
  prompts.textContent = "";
  (WF.indicator_groups || []).forEach(function (g) {
    var any = INDICATORS.some(function (i) {
      return i.group === g.id && marked.has(i.id);
    });
    if (any && g.prompt && g.id !== "acute") prompts.appendChild(el("li", "wf-prompt", g.prompt));
  });
  var due = !!r.decision_required && !r.decision;
  panel.querySelector(".wf-required").hidden = !due;
  panel.querySelector(".wf-routine").hidden = !(r.child && marked.size > 0);
  panel.classList.toggle("decision-due", due);
  panel.dataset.decision = r.decision ? r.decision.decision : "";
  var status = panel.querySelector(".wf-decision-status");
  if (r.decision) {
    var d = (WF.decisions || []).find(function (x) {
      return x.id === r.decision.decision;
    });
    status.textContent = t("decision_recorded", { decision: d ? d.label : r.decision.decision });
  } else {
    status.textContent = "";
  }
}
