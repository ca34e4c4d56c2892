/* The visitor page's message log: building message elements (text, feelings, resource
 * cards) and system notes, with createElement/textContent only. */
import { cfg, $, t } from "./state.js";

export function note(text) {
  var li = document.createElement("li");
  li.className = "system-note";
  li.textContent = text;
  $("messages").appendChild(li);
  scrollDown();
}

export function scrollDown() {
  var list = $("messages");
  list.scrollTop = list.scrollHeight;
}

export function timeOf(ms) {
  try {
    // A language the browser's Intl data lacks (so, ti, ckb, kmr, ps in Chromium) falls
    // back to Swedish (24-hour clock, as in Sweden) rather than to en-US "08:05 AM".
    return new Date(ms).toLocaleTimeString([cfg.lang, "sv"], { hour: "2-digit", minute: "2-digit" });
  } catch (e) { return ""; }
}

function safeUrl(u) {
  try {
    var url = new URL(String(u));
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch (e) { return null; }
}

/* ---- feelings board pictures: the page's inline sprite ---- */
var SVG_NS = "http://www.w3.org/2000/svg";
function picture(symbol, cls) {
  var svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (symbol) {
    var use = document.createElementNS(SVG_NS, "use");
    use.setAttribute("href", "#" + symbol);
    svg.appendChild(use);
  }
  return svg;
}
function symbolOf(feeling) {
  var btn = document.querySelector(".feeling[data-feeling='" + String(feeling).replace(/[^\w-]/g, "") + "']");
  return btn ? btn.getAttribute("data-symbol") : null;
}

function resourceBody(wrap, obj) {
  wrap.classList.add("resource-card");
  var title = document.createElement("strong");
  title.textContent = String(obj.title || "");
  wrap.appendChild(title);
  if (obj.phone) {
    var phone = String(obj.phone);
    var p = document.createElement("p");
    var a = document.createElement("a");
    a.href = "tel:" + phone.replace(/[^\d+]/g, "");
    a.textContent = phone;
    p.appendChild(a);
    wrap.appendChild(p);
  }
  if (obj.text) {
    var tx = document.createElement("p");
    tx.textContent = String(obj.text);
    wrap.appendChild(tx);
  }
  var href = obj.url && safeUrl(obj.url);
  if (href) {
    var link = document.createElement("a");
    link.href = href;
    link.rel = "noreferrer noopener";
    link.target = "_blank";
    link.textContent = href.replace(/^https?:\/\//, "").replace(/\/$/, "");
    wrap.appendChild(link);
  }
}

function bodyOf(obj) {
  var wrap = document.createElement("div");
  wrap.className = "message-body";
  if (obj.type === "resource") {
    resourceBody(wrap, obj);
  } else {
    if (obj.type === "feeling") wrap.appendChild(picture(symbolOf(obj.feeling), "feeling-pic"));
    var text = document.createElement("p");
    text.className = "message-text";
    text.dir = "auto"; // a Swedish line stays readable on an Arabic page, and back
    text.textContent = String(obj.text == null ? "" : obj.text);
    wrap.appendChild(text);
  }
  return wrap;
}

export function messageElement(from, obj, ts) {
  var li = document.createElement("li");
  li.className = "message from-" + from;
  if (obj && obj.type) li.dataset.type = String(obj.type);
  var who = document.createElement("span");
  who.className = "visually-hidden";
  who.textContent = (from === "visitor" ? t("label_you") : t("label_counselor")) + ": ";
  li.appendChild(who);
  li.appendChild(obj ? bodyOf(obj) : bodyOf({ type: "text", text: t("undecryptable") }));
  if (!obj) li.classList.add("undecryptable");
  var meta = document.createElement("span");
  meta.className = "message-meta";
  meta.textContent = ts ? timeOf(ts) : t("sending");
  li.appendChild(meta);
  return li;
}
