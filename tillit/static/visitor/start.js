/* The visitor page's start: the danger question, the chat:start proof-of-work solved in
 * the background, and the optional questions answered while waiting (issue 8). */
import { cfg, $, t, S, serial, emit, show, setText, showError } from "./state.js";
import { connect, onQueue } from "./chat.js";
import { orderResources, placeReturnArea } from "./ending.js";

/* ---- start: only the danger question comes before the queue (issue 8) ---- */
function collectAnswers() {
  var out = collectMeta();
  delete out.chat_id;
  var danger = $("start-form").querySelector("input[name=danger_now]:checked");
  if (danger) out.danger_now = danger.value === "yes";
  return out;
}

/* ---- the optional questions, answered while waiting (chat:update_meta) ---- */
var metaTimer = null;
var metaDirty = false;

function collectMeta() {
  var form = $("meta-form");
  var out = { chat_id: S.chatId, lang: form.elements.namedItem("lang").value || cfg.lang };
  ["age_group", "gender", "role", "sector", "contact"].forEach(function (name) {
    var v = form.elements.namedItem(name).value;
    if (v) out[name] = v;
  });
  if (out.role !== "professional") delete out.sector;
  var topics = [];
  form.querySelectorAll("input[name=topics]:checked").forEach(function (el) { topics.push(el.value); });
  if (topics.length) out.topics = topics;
  S.chatTopics = topics;
  return out;
}

function showSector() {
  var pro = $("q-role").value === "professional";
  $("sector-field").hidden = !pro;
  if (!pro) $("q-sector").value = "";
}

export function onMetaChange(ev) {
  if (ev && ev.target && ev.target.name === "role") showSector();
  metaDirty = true;
  setText("meta-status", "");
  clearTimeout(metaTimer);
  metaTimer = setTimeout(sendMeta, 400);
}

/* Sends the answers once the chat exists and is waiting or has just begun. */
export function sendMeta() {
  clearTimeout(metaTimer);
  if (!metaDirty || S.chatId === null || (S.state !== "queued" && S.state !== "active")) return;
  metaDirty = false;
  emit("chat:update_meta", collectMeta(), function (ack) {
    if (ack.ok) setText("meta-status", t("answers_sent"));
    else if (!(ack.error && ack.error.code === "conflict")) metaDirty = true;
  });
}

export function resetMeta() {
  clearTimeout(metaTimer);
  metaDirty = false;
  S.chatTopics = [];
  $("meta-form").reset();
  $("q-lang").value = cfg.lang;
  setText("meta-status", "");
  showSector();
}

export function canChat() {
  return !!(window.crypto && window.crypto.subtle && window.io);
}

export function startChat(ev) {
  ev.preventDefault();
  if (S.state !== "start") return;
  showError("start-error", "");
  if (!canChat()) {
    showError("start-error", t("no_crypto"));
    return;
  }
  S.state = "starting";
  $("start-chat").disabled = true;
  loadCrypto().then(function (E2E) {
    if (S.state !== "starting") return null;
    S.e2e = new E2E.ChatCrypto(null, "visitor");
    return S.e2e.newKeyPair();
  }).then(function (pubkey) {
    if (!pubkey) return;
    S.startPayload = collectAnswers();
    S.startPayload.pubkey = pubkey;
    if (S.returning) S.startPayload.mailbox = S.returning;
    setText("queue-position", t("connecting"));
    setText("est-wait", "");
    $("queue-status").setAttribute("aria-busy", "true");  // until the server has the chat
    show("view-queue", "queue-title");
    connect();
  }).catch(function () {
    failStart(S.e2e ? t("no_crypto") : t("err_start")); // no key pair, or no e2e.js
  });
}

/* ../e2e.js comes with the socket, like the solver below (loadSolver). */
var e2eModule = null;
export function loadCrypto() {
  if (!e2eModule) {
    e2eModule = import("../e2e.js");
    e2eModule.catch(function () { e2eModule = null; });
  }
  return e2eModule;
}

/* ---- chat:start's proof of work (docs/protocol.md E11), solved in the background from
 * the moment the visitor turns to the start form; nothing is shown. ---- */
var work = null;        // {challenge, nonce, expires}: solved, not yet used
var working = null;     // the solve in progress (a Promise)
var workTimer = null;
var workTries = 0;      // fresh solves for the current start
var WORK_MARGIN_S = 20; // a solution this close to its expiry is solved anew

function freshWork() {
  return work && work.expires - Date.now() / 1000 > WORK_MARGIN_S ? work : null;
}

function askChallenge() {
  return new Promise(function (resolve) {
    if (!emit("pow:challenge", {}, resolve)) resolve({});
  });
}

/* The solver (static/proof-of-work.js, a classic script that defines window.TillitPow) is
 * fetched when the visitor turns to the start form, with the socket: a visitor who only
 * reads the page never downloads it. */
var solver = null;
export function loadSolver() {
  if (!solver) {
    solver = new Promise(function (resolve) {
      if (window.TillitPow) { resolve(window.TillitPow); return; }
      var tag = document.createElement("script");
      tag.src = "/static/proof-of-work.js";
      tag.onload = function () { resolve(window.TillitPow || null); };
      tag.onerror = function () { solver = null; resolve(null); };
      document.head.appendChild(tag);
    });
  }
  return solver;
}

/* Resolves to a fresh solution, or null (no socket, no WebCrypto, a refusal). */
export function prepareWork() {
  if (freshWork()) return Promise.resolve(work);
  if (working) return working;
  if (!S.socket || !S.socket.connected) return Promise.resolve(null);
  working = Promise.all([loadSolver(), askChallenge()]).then(function (both) {
    var pow = both[0];
    var ch = both[1];
    if (!pow || !ch.ok || typeof ch.challenge !== "string") return null;
    return pow.solve(ch.challenge, ch.bits, function () { return S.exiting; })
      .then(function (nonce) {
        work = { challenge: ch.challenge, nonce: nonce, expires: ch.expires };
        clearTimeout(workTimer);
        // Keep a fresh one ready while the visitor fills in the form.
        workTimer = setTimeout(function () {
          if (S.state === "start") prepareWork();
        }, Math.max(5, ch.expires - Date.now() / 1000 - WORK_MARGIN_S) * 1000);
        return work;
      });
  }).catch(function () { return null; }).then(function (done) {
    working = null;
    return done;
  });
  return working;
}

var awaitingWork = false;
/* `solved`: a solution just made, sent even if this device's clock calls it stale. */
export function sendStart(solved) {
  var ready = solved || freshWork();
  if (!ready) {
    if (awaitingWork) return;
    if (workTries >= 3) { failStart(t("err_start")); return; }
    awaitingWork = true;
    workTries += 1;
    prepareWork().then(function (done) {
      awaitingWork = false;
      if (S.state !== "starting" || !S.startPayload) return;
      if (done) sendStart(done);
      else if (S.socket && S.socket.connected) {
        // No challenge or no solver this time (a dropped request): try again shortly,
        // and only after three tries say that the chat could not start.
        if (workTries < 3) {
          setTimeout(function () {
            if (S.state === "starting" && S.startPayload) sendStart();
          }, 500 * workTries);
        } else {
          serial(function () { failStart(t("err_start")); });
        }
      }
      // (not connected: onConnect sends the start again)
    });
    return;
  }
  work = null; // one chat per solution
  S.startPayload.pow = { challenge: ready.challenge, nonce: ready.nonce };
  emit("chat:start", S.startPayload, function (ack) {
    serial(function () { onStarted(ack); });
  });
}

function onStarted(ack) {
  if (S.state !== "starting") {
    // Left before the server answered: do not leave a chat waiting in the queue.
    if (ack.ok && ack.chat_id) emit("chat:end", { chat_id: ack.chat_id });
    return;
  }
  var code = ack.error && ack.error.code;
  if (!ack.ok && code && code.indexOf("pow_") === 0 && workTries < 3) {
    sendStart(); // expired, harder now, or the server restarted: solve anew
    return;
  }
  workTries = 0;
  $("queue-status").removeAttribute("aria-busy");
  if (!ack.ok && (code === "closed" || code === "busy")) { showClosed(code, true); return; }
  if (!ack.ok) {
    failStart(code === "rate_limited" ? t("err_rate_limited") : t("err_start"));
    return;
  }
  adoptChat(ack.chat_id);
  S.resumeToken = ack.resume_token;
  S.startPayload = null;
  S.state = "queued";
  onQueue(ack);
  sendMeta(); // answers given while the server was still starting the chat
}

export function adoptChat(id) {
  S.chatId = id;
  S.e2e.setChatId(id);
}

/* No chat after all: the keys go, and the start button works again. */
function backToStart() {
  S.returning = null;
  if (S.e2e) S.e2e.forget();
  S.e2e = null;
  S.startPayload = null;
  S.state = "start";
  $("start-chat").disabled = false;
}

function failStart(text) {
  workTries = 0;
  backToStart();
  $("queue-status").removeAttribute("aria-busy");
  show("view-start");
  showError("start-error", text);
  $("start-error").focus();
}

/* ---- out of hours, or the queue is full: hours and resources (issue 7) ---- */
export function showClosed(kind, focus) {
  backToStart();
  placeReturnArea("closed-resources", true);
  orderResources([], "closed-resources");
  ["closed-title", "closed-text"].forEach(function (id) {
    setText(id, $(id).getAttribute(kind === "busy" ? "data-busy" : "data-closed"));
  });
  show("view-closed", focus ? "closed-title" : null);
}
