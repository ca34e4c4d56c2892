/* The counselor console's configuration (the JSON data island #tillit-config: texts,
 * vocabularies, workflow) and its small DOM helpers, shared by the console's modules. */

function readConfig() {
  try {
    var island = document.getElementById("tillit-config");
    return JSON.parse((island && island.textContent) || "{}") || {};
  } catch (e) {
    return {};
  }
}
export const CONFIG = readConfig();
var TEXTS = CONFIG.texts || {};
export const VOCAB = CONFIG.vocab || {};
export const CSRF = CONFIG.csrf_token || "";
export const WF = CONFIG.workflow || {};
export const INDICATORS = Array.isArray(WF.indicators) ? WF.indicators : [];

// Translated text by key, with {name} placeholders filled in. Falls back to the key.
export function t(key, vars) {
  var s = Object.prototype.hasOwnProperty.call(TEXTS, key) ? String(TEXTS[key]) : key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, function (m, name) {
      return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : m;
    });
  }
  return s;
}

var VOCAB_MAPS = {};
Object.keys(VOCAB).forEach(function (name) {
  var map = Object.create(null);
  (VOCAB[name] || []).forEach(function (entry) {
    if (entry && entry.id != null) map[entry.id] = entry.label != null ? entry.label : entry.id;
  });
  VOCAB_MAPS[name] = map;
});

// Label of an id in a vocabulary ("age_groups", "genders", "roles", "topics", "languages").
export function label(vocab, id) {
  if (id === null || id === undefined || id === "") return t("not_stated");
  var map = VOCAB_MAPS[vocab];
  if (map && map[id] !== undefined) return String(map[id]);
  return String(id);
}

// ---------------------------------------------------------------- DOM helpers
export function $(id) {
  return document.getElementById(id);
}

export function el(tag, className, text) {
  var node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function cloneTemplate(id) {
  var tpl = $(id);
  return tpl.content.firstElementChild.cloneNode(true);
}

export function formatDuration(totalSeconds) {
  var s = Math.max(0, Math.floor(totalSeconds));
  var h = Math.floor(s / 3600);
  var m = Math.floor((s % 3600) / 60);
  var sec = s % 60;
  var ss = sec < 10 ? "0" + sec : String(sec);
  if (h > 0) return h + ":" + (m < 10 ? "0" + m : m) + ":" + ss;
  return m + ":" + ss;
}

export function formatClock(ms) {
  var d = new Date(typeof ms === "number" ? ms : Date.now());
  var hh = d.getHours();
  var mm = d.getMinutes();
  return (hh < 10 ? "0" + hh : hh) + ":" + (mm < 10 ? "0" + mm : mm);
}

export function errorMessage(res) {
  if (res && res.error) return res.error.message || res.error.code || "?";
  return "?";
}

// Non-intrusive notices in the top strip; they fade out by themselves.
// `action` is an optional {label, run} for a button next to the text.
export function notify(text, kind, action) {
  var box = $("notices");
  if (!box) return null;
  var n = el("div", "notice notice-" + (kind || "info"));
  if (kind === "alert") n.setAttribute("role", "alert");
  n.appendChild(el("p", "notice-text", text));
  if (action) {
    var go = el("button", "notice-show", action.label);
    go.type = "button";
    go.addEventListener("click", function () {
      n.remove();
      action.run();
    });
    n.appendChild(go);
  }
  var dismiss = el("button", "notice-dismiss", "×");
  dismiss.type = "button";
  dismiss.setAttribute("aria-label", t("dismiss"));
  dismiss.addEventListener("click", function () {
    n.remove();
  });
  n.appendChild(dismiss);
  box.appendChild(n);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== "alert") {
    setTimeout(function () {
      n.remove();
    }, 8000);
  }
  return n;
}

export function setConnStatus(state) {
  var node = $("conn-status");
  if (!node) return;
  node.dataset.state = state;
  node.textContent = t(state);
}

export function fillSelect(select, entries, blank) {
  select.textContent = "";
  if (blank !== undefined) select.appendChild(new Option(blank, ""));
  entries.forEach(function (e) {
    select.appendChild(new Option(e.label, e.id));
  });
}
