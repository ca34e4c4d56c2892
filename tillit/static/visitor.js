/* Tillit visitor page: start, queue, chat, end, feedback in one document.
 * Everything lives in memory only: no cookies, no storage APIs, no history entries. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("tillit-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var E2E = window.TillitE2E;

  /* ---- texts ---- */
  function fill(text, vars) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) {
      return vars && vars[k] != null ? String(vars[k]) : m;
    });
  }
  function t(key, vars) { return fill(cfg.texts[key] || key, vars); }
  function num(n) {
    try { return new Intl.NumberFormat(cfg.lang).format(n); } catch (e) { return String(n); }
  }
  function tn(key, n) {
    var idx = cfg.plural_index;
    var form = idx[n < idx.length ? n : 100 + (n % 100)];
    var forms = cfg.plurals[key];
    return fill(forms[form] || forms[forms.length - 1], { n: num(n) });
  }

  /* ---- state (memory only) ---- */
  var socket = null;
  var e2e = null;
  var chatId = null;
  var resumeToken = null;
  var state = "start"; // start | starting | queued | active | ended
  var startPayload = null;
  var lastId = 0;
  var shownIds = new Set();
  var shownSeqs = new Set();
  var pending = new Map(); // "epoch|seq" -> {env, li, sent}
  var counselorName = "";
  var chain = Promise.resolve();
  var typingSentAt = 0;
  var typingStop = null;
  var typingHide = null;
  var exiting = false;

  /* Socket events touching keys are handled strictly one after the other. */
  function serial(fn) {
    chain = chain.then(function () { if (!exiting) return fn(); }).catch(function (err) { if (window.console) console.warn(err); });
    return chain;
  }

  function emit(event, payload, onAck) {
    if (!socket || !socket.connected) return false;
    socket.emit(event, payload, function (ack) { if (onAck) onAck(ack || {}); });
    return true;
  }

  /* ---- views ---- */
  var VIEWS = ["view-start", "view-queue", "view-chat", "chat-ended", "view-closed"];
  function show(view, focusId) {
    VIEWS.forEach(function (id) { $(id).hidden = id !== view; });
    // Switching language reloads the page: offered only while no chat would be lost.
    $("lang-switch").hidden = view === "view-queue" || view === "view-chat";
    if (focusId) {
      var el = $(focusId);
      if (el) el.focus();
    }
  }
  function setText(id, text) { $(id).textContent = text || ""; }
  var flashTimer = null;
  function flash(text) {
    clearTimeout(flashTimer);
    setText("connection", text);
    flashTimer = setTimeout(function () { setText("connection", ""); }, 8000);
  }
  function showError(id, text) {
    var el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }

  /* ---- quick exit: static/quick-exit.js does the leaving; it asks us for these ---- */
  function live() { return chatId !== null && (state === "queued" || state === "active"); }
  var exitHooks = {
    token: function () { return live() ? resumeToken : null; },
    socketEnder: function () {
      if (!live() || !socket || !socket.connected) return null;
      var s = socket;
      var id = chatId;
      return function () { s.emit("chat:end", { chat_id: id, reason: "quick_exit" }, function () {}); };
    },
    wipe: function () {
      exiting = true;
      wipe();
      chatId = null;
      counselorName = "";
      state = "ended";
      clearTimeout(typingStop);
      clearTimeout(typingHide);
      clearTimeout(flashTimer);
      clearConversation();
      var input = $("message-input");
      if (input) input.value = "";
    }
  };
  if (window.TillitQuickExit) window.TillitQuickExit.register(exitHooks);

  function wipe() {
    if (e2e) e2e.forget();
    e2e = null;
    resumeToken = null;
    startPayload = null;
    pending.clear();
    shownIds.clear();
    shownSeqs.clear();
  }

  /* ---- socket ---- */
  function connect() {
    if (!socket) {
      socket = window.io("/visitor", {
        path: "/socket.io",
        transports: ["websocket"],
        withCredentials: false,
        autoConnect: false
      });
      socket.on("connect", onConnect);
      socket.on("disconnect", onDisconnect);
      socket.on("connect_error", function () {
        if (!exiting && state !== "start" && state !== "ended") setText("connection", t("connection_lost"));
      });
      socket.on("queue:update", function (d) { serial(function () { onQueue(d); }); });
      socket.on("chat:assigned", function (d) { serial(function () { return onAssigned(d); }); });
      socket.on("chat:requeued", function (d) { serial(function () { onRequeued(d); }); });
      socket.on("key:update", function (d) { serial(function () { return onKeyUpdate(d); }); });
      socket.on("msg:new", function (d) { serial(function () { return onMessage(d); }); });
      socket.on("typing", onTyping);
      socket.on("chat:ended", function (d) { serial(function () { onEnded(d); }); });
    }
    if (socket.connected) onConnect();
    // Already connecting (the page warms up when the visitor turns to the form): a
    // second connect() would send the namespace a second CONNECT packet mid-handshake.
    else if (!socket.active) socket.connect();
  }

  var wasDisconnected = false;
  function onConnect() {
    if (exiting) return;
    if (wasDisconnected) {
      wasDisconnected = false;
      flash(t("connection_back"));
    }
    if (resumeToken) resume();
    else if (state === "starting" && startPayload) sendStart();
    else if (state === "start") prepareWork();
  }

  function onDisconnect(reason) {
    if (exiting || state === "start" || state === "ended") return;
    wasDisconnected = true;
    clearTimeout(flashTimer);
    setText("connection", t("connection_lost"));
    if (reason === "io server disconnect") socket.connect();
  }

  function ours(d) { return d && chatId !== null && d.chat_id === chatId; }

  /* ---- start: only the danger question comes before the queue (issue 8) ---- */
  function collectAnswers() {
    var out = collectMeta();
    delete out.chat_id;
    var danger = $("start-form").querySelector("input[name=danger_now]:checked");
    if (danger) out.danger_now = danger.value === "yes";
    return out;
  }

  /* ---- the optional questions, answered while waiting (chat:update_meta, issue 8) ---- */
  var metaTimer = null;
  var metaDirty = false;
  var chatTopics = []; // for the end screen's resources (memory only)

  function collectMeta() {
    var form = $("meta-form");
    var out = { chat_id: chatId, lang: form.elements.namedItem("lang").value || cfg.lang };
    ["age_group", "gender", "role", "sector", "contact"].forEach(function (name) {
      var v = form.elements.namedItem(name).value;
      if (v) out[name] = v;
    });
    if (out.role !== "professional") delete out.sector;
    var topics = [];
    form.querySelectorAll("input[name=topics]:checked").forEach(function (el) { topics.push(el.value); });
    if (topics.length) out.topics = topics;
    chatTopics = topics;
    return out;
  }

  function showSector() {
    var pro = $("q-role").value === "professional";
    $("sector-field").hidden = !pro;
    if (!pro) $("q-sector").value = "";
  }

  function onMetaChange(ev) {
    if (ev && ev.target && ev.target.name === "role") showSector();
    metaDirty = true;
    setText("meta-status", "");
    clearTimeout(metaTimer);
    metaTimer = setTimeout(sendMeta, 400);
  }

  /* Sends the answers once the chat exists and is waiting or has just begun. */
  function sendMeta() {
    clearTimeout(metaTimer);
    if (!metaDirty || chatId === null || (state !== "queued" && state !== "active")) return;
    metaDirty = false;
    emit("chat:update_meta", collectMeta(), function (ack) {
      if (ack.ok) setText("meta-status", t("answers_sent"));
      else if (!(ack.error && ack.error.code === "conflict")) metaDirty = true;
    });
  }

  function resetMeta() {
    clearTimeout(metaTimer);
    metaDirty = false;
    chatTopics = [];
    $("meta-form").reset();
    $("q-lang").value = cfg.lang;
    setText("meta-status", "");
    showSector();
  }

  function startChat(ev) {
    ev.preventDefault();
    if (state !== "start") return;
    showError("start-error", "");
    if (!E2E || !window.crypto || !window.crypto.subtle || !window.io) {
      showError("start-error", t("no_crypto"));
      return;
    }
    state = "starting";
    $("start-chat").disabled = true;
    e2e = new E2E.ChatCrypto(null, "visitor");
    e2e.newKeyPair().then(function (pubkey) {
      startPayload = collectAnswers();
      startPayload.pubkey = pubkey;
      setText("queue-position", t("connecting"));
      setText("est-wait", "");
      $("queue-status").setAttribute("aria-busy", "true");  // until the server has the chat
      show("view-queue", "queue-title");
      connect();
    }).catch(function () {
      failStart(t("no_crypto"));
    });
  }

  /* ---- the proof-of-work of chat:start (docs/protocol.md E11): asked for and solved in
   * the background as soon as the visitor turns to the start form, so that pressing
   * start sends at once; nothing is shown (a slow solve looks like "connecting"). ---- */
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

  /* The solver (static/proof-of-work.js) is fetched when the visitor turns to the start
   * form, with the socket: a visitor who only reads the page never downloads it. */
  var solver = null;
  function loadSolver() {
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
  function prepareWork() {
    if (freshWork()) return Promise.resolve(work);
    if (working) return working;
    if (!socket || !socket.connected) return Promise.resolve(null);
    working = Promise.all([loadSolver(), askChallenge()]).then(function (both) {
      var pow = both[0];
      var ch = both[1];
      if (!pow || !ch.ok || typeof ch.challenge !== "string") return null;
      return pow.solve(ch.challenge, ch.bits, function () { return exiting; })
        .then(function (nonce) {
          work = { challenge: ch.challenge, nonce: nonce, expires: ch.expires };
          clearTimeout(workTimer);
          // Keep a fresh one ready while the visitor fills in the form.
          workTimer = setTimeout(function () {
            if (state === "start") prepareWork();
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
  function sendStart(solved) {
    var ready = solved || freshWork();
    if (!ready) {
      if (awaitingWork) return;
      if (workTries >= 3) { failStart(t("err_start")); return; }
      awaitingWork = true;
      workTries += 1;
      prepareWork().then(function (done) {
        awaitingWork = false;
        if (state !== "starting" || !startPayload) return;
        if (done) sendStart(done);
        else if (socket && socket.connected) {
          // No challenge or no solver this time (a dropped request): try again shortly,
          // and only after three tries say that the chat could not start.
          if (workTries < 3) {
            setTimeout(function () {
              if (state === "starting" && startPayload) sendStart();
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
    startPayload.pow = { challenge: ready.challenge, nonce: ready.nonce };
    emit("chat:start", startPayload, function (ack) {
      serial(function () {
        if (state !== "starting") {
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
        resumeToken = ack.resume_token;
        startPayload = null;
        state = "queued";
        onQueue(ack);
        sendMeta(); // answers given while the server was still starting the chat
      });
    });
  }

  function adoptChat(id) {
    chatId = id;
    e2e.setChatId(id);
  }

  function failStart(text) {
    workTries = 0;
    if (e2e) e2e.forget();
    e2e = null;
    startPayload = null;
    state = "start";
    $("start-chat").disabled = false;
    $("queue-status").removeAttribute("aria-busy");
    show("view-start");
    showError("start-error", text);
    $("start-error").focus();
  }

  /* ---- out of hours, or the queue is full: hours and resources (issue 7) ---- */
  function showClosed(kind, focus) {
    if (e2e) e2e.forget();
    e2e = null;
    startPayload = null;
    state = "start";
    $("start-chat").disabled = false;
    orderResources([], "closed-resources");
    ["closed-title", "closed-text"].forEach(function (id) {
      setText(id, $(id).getAttribute(kind === "busy" ? "data-busy" : "data-closed"));
    });
    show("view-closed", focus ? "closed-title" : null);
  }

  /* ---- queue ---- */
  function onQueue(d) {
    if (d.chat_id && !ours(d)) return;
    if (state !== "queued") return;
    var pos = d.position;
    setText("queue-position",
      typeof pos === "number" && pos >= 1 ? (pos === 1 ? t("queue_next") : t("queue_position", { n: num(pos) })) : t("queue_waiting"));
    var s = d.est_wait_s;
    setText("est-wait", typeof s === "number" && s >= 0 ? tn("wait_minutes", Math.max(1, Math.ceil(s / 60))) : t("wait_unknown"));
  }

  /* The counselor left (transfer to the queue, or gone past the grace period): wait again. */
  function onRequeued(d) {
    if (!ours(d) || state !== "active") return;
    state = "queued";
    showTyping(false);
    note(t("requeued"));
    flash(t("requeued"));
    onQueue(d);
    show("view-queue", "queue-title");
  }

  /* ---- chat ---- */
  // The safety code as both pages show it: "737 392" (console.js formats it the same way).
  function formatSafetyCode(code) {
    var c = String(code == null ? "" : code);
    return /^\d{6}$/.test(c) ? c.slice(0, 3) + " " + c.slice(3) : c;
  }

  async function onAssigned(d) {
    if (chatId === null && state === "starting" && d && d.chat_id) adoptChat(d.chat_id);
    if (!ours(d) || !e2e || state === "ended") return;
    var before = e2e.code;
    await e2e.setEpoch(d.epoch, d.pubkey);
    var first = state !== "active";
    state = "active";
    counselorName = d.counselor_name || t("counselor_default");
    setText("chat-title", t("chatting_with", { name: counselorName }));
    setText("safety-code", formatSafetyCode(e2e.code));
    if (first) {
      show("view-chat", "chat-title");
      joinedNote(counselorName);
    } else if (e2e.code !== before) {
      note(t("key_changed", { code: formatSafetyCode(e2e.code) }));
    }
  }

  async function onKeyUpdate(d) {
    if (!ours(d) || !e2e || d.from === "visitor") return;
    var before = e2e.code;
    await e2e.setEpoch(d.epoch, d.pubkey);
    setText("safety-code", formatSafetyCode(e2e.code));
    if (e2e.code !== before) note(t("key_changed", { code: formatSafetyCode(e2e.code) }));
  }

  /* "X has joined" sits in the message log, where the conversation is (issue 13). */
  function joinedNote(name) {
    note(t("counselor_joined", { name: name }));
  }

  function note(text) {
    var li = document.createElement("li");
    li.className = "system-note";
    li.textContent = text;
    $("messages").appendChild(li);
    scrollDown();
  }

  function scrollDown() {
    var list = $("messages");
    list.scrollTop = list.scrollHeight;
  }

  function timeOf(ms) {
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

  function bodyOf(obj) {
    var wrap = document.createElement("div");
    wrap.className = "message-body";
    if (obj.type === "resource") {
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

  function messageElement(from, obj, ts) {
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

  /* Places an element with an id among the shown ones, in id order. */
  function place(li, id) {
    li.dataset.id = String(id);
    var list = $("messages");
    var items = list.querySelectorAll("li.message[data-id]");
    for (var i = 0; i < items.length; i++) {
      if (items[i] !== li && Number(items[i].dataset.id) > id) {
        list.insertBefore(li, items[i]);
        return;
      }
    }
    var firstUnsent = list.querySelector("li.message:not([data-id])");
    if (firstUnsent && firstUnsent !== li) list.insertBefore(li, firstUnsent);
    else if (li.parentNode !== list || li.nextSibling) list.appendChild(li);
  }

  function markShown(id, env, dir) {
    shownIds.add(id);
    if (id > lastId) lastId = id;
    shownSeqs.add(env.epoch + "|" + dir + "|" + env.seq);
  }

  function confirmSent(key, id, ts) {
    var entry = pending.get(key);
    if (!entry) return;
    pending.delete(key);
    var li = entry.li;
    if (shownIds.has(id)) { li.remove(); return; }
    markShown(id, entry.env, "v2c");
    li.classList.remove("pending");
    li.querySelector(".message-meta").textContent = timeOf(ts || Date.now());
    place(li, id);
  }

  async function onMessage(d) {
    if (!ours(d) || !e2e || typeof d.id !== "number") return;
    if (shownIds.has(d.id)) return;
    var own = d.from === "visitor";
    var dir = own ? "v2c" : "c2v";
    var key = d.epoch + "|" + d.seq;
    if (own && pending.has(key)) { confirmSent(key, d.id, d.ts); return; }
    if (shownSeqs.has(d.epoch + "|" + dir + "|" + d.seq)) { shownIds.add(d.id); return; }
    var obj = null;
    try {
      obj = own ? await e2e.openOwn(d) : await e2e.open(d);
    } catch (e) {
      obj = null;
    }
    if (!e2e || shownIds.has(d.id)) return;
    if (!obj && own) { shownIds.add(d.id); return; } // our own, from before a reload
    markShown(d.id, d, dir);
    var li = messageElement(own ? "visitor" : "counselor", obj, d.ts);
    place(li, d.id);
    if (!own) showTyping(false);
    scrollDown();
  }

  function sendMessage(ev) {
    ev.preventDefault();
    var input = $("message-input");
    var text = input.value.trim();
    if (!text || state !== "active" || !e2e) return;
    if (text.length > cfg.max_text_chars) { showError("send-error", t("err_too_large")); return; }
    showError("send-error", "");
    input.value = "";
    stopTyping();
    sealAndSend({ type: "text", text: text, sent_at: Date.now() });
  }

  /* Encrypt one plaintext, show it as pending, and send it until acknowledged. */
  function sealAndSend(obj) {
    serial(function () {
      return e2e.seal(obj).then(function (env) {
        var li = messageElement("visitor", obj, null);
        li.classList.add("pending");
        $("messages").appendChild(li);
        scrollDown();
        var key = env.epoch + "|" + env.seq;
        pending.set(key, { env: env, li: li });
        transmit(key);
      });
    });
  }

  /* Past capacity the server answers busy (or unavailable while its store restarts):
     the same envelope goes again a little later, so it is never stored twice. */
  var RETRY_LATER = { busy: true, unavailable: true };
  var RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  function transmit(key) {
    var entry = pending.get(key);
    if (!entry) return;
    emit("msg:send", entry.env, function (ack) {
      if (ack.ok && typeof ack.id === "number") {
        if (entry.retries) showError("send-error", "");
        serial(function () { confirmSent(key, ack.id); });
        return;
      }
      if (!pending.has(key)) return;
      var code = ack.error && ack.error.code;
      entry.retries = entry.retries || 0;
      if (RETRY_LATER[code] && entry.retries < RETRY_DELAYS_MS.length) {
        showError("send-error", t("err_busy"));
        // Spread over 0.5x..1.5x, so that pages refused together do not return together.
        setTimeout(function () { transmit(key); },
          RETRY_DELAYS_MS[entry.retries] * (0.5 + Math.random()));
        entry.retries += 1;
        return;
      }
      pending.delete(key);
      entry.li.classList.remove("pending");
      entry.li.classList.add("failed");
      entry.li.querySelector(".message-meta").textContent = t("not_sent");
      showError("send-error", code === "rate_limited" ? t("err_rate_limited") : code === "too_large" ? t("err_too_large") : t("err_generic"));
    });
  }

  /* ---- typing ---- */
  function onInput() {
    if (state !== "active") return;
    var now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      emit("typing", { chat_id: chatId, on: true });
    }
    clearTimeout(typingStop);
    typingStop = setTimeout(stopTyping, 4000);
  }

  function stopTyping() {
    clearTimeout(typingStop);
    if (typingSentAt) {
      typingSentAt = 0;
      if (state === "active") emit("typing", { chat_id: chatId, on: false });
    }
  }

  function showTyping(on) {
    var el = $("typing");
    clearTimeout(typingHide);
    el.textContent = on ? t("typing") : "";
    el.hidden = !on;
    if (on) typingHide = setTimeout(function () { showTyping(false); }, 15000);
  }

  function onTyping(d) {
    if (!exiting && ours(d) && state === "active") showTyping(!!d.on);
  }

  /* ---- resume after a dropped connection ---- */
  function resume() {
    emit("chat:resume", { resume_token: resumeToken, after_id: lastId }, function (ack) {
      serial(async function () {
        if (!ack.ok) {
          if (state !== "ended") endView("timeout");
          return;
        }
        if (!ours(ack) || !e2e) return;
        if (ack.state === "ended") { endView(null); return; }
        if (ack.state === "queued") {
          state = "queued";
          onQueue(ack);
          sendMeta();
          return;
        }
        if (ack.counselor_pubkey && ack.epoch &&
            (ack.epoch !== e2e.epoch || ack.counselor_pubkey !== e2e.peerPublicKey)) {
          await onAssigned({
            chat_id: chatId, epoch: ack.epoch, pubkey: ack.counselor_pubkey,
            counselor_name: ack.counselor_name || counselorName
          });
        }
        var missed = (ack.missed || []).slice().sort(function (a, b) { return a.id - b.id; });
        for (var i = 0; i < missed.length; i++) await onMessage(missed[i]);
        pending.forEach(function (entry, key) { transmit(key); });
      });
    });
  }

  /* ---- end ---- */
  /* "End chat" asks once more; "Continue chatting" is the default (issue 12). The quick
     exit (static/quick-exit.js) never asks. */
  function askEnd() {
    if (state !== "active") { endChat(); return; }
    $("end-confirm").hidden = false;
    $("end-chat").setAttribute("aria-expanded", "true");
    $("end-continue").focus();
  }

  function closeEndConfirm(refocus) {
    $("end-confirm").hidden = true;
    $("end-chat").setAttribute("aria-expanded", "false");
    if (refocus) $("end-chat").focus();
  }

  function endChat() {
    if (state === "starting" && !chatId) { newChat(); return; }
    if (!chatId || state === "ended") return;
    var wasQueued = state === "queued" || state === "starting";
    emit("chat:end", { chat_id: chatId });
    endView(wasQueued ? "left_queue" : "visitor");
  }

  function onEnded(d) {
    if (!ours(d) || state === "ended") return;
    endView(d.by === "visitor" || d.by === "counselor" || d.by === "timeout" ? d.by : null);
  }

  function endView(by) {
    state = "ended";
    stopTyping();
    showTyping(false);
    wipe();
    closeEndConfirm(false);
    keepConversation();
    orderResources(chatTopics);
    setText("connection", "");
    setText("ended-text", t(by ? "ended_" + by : "ended_unknown"));
    var form = $("feedback-form");
    form.reset();
    form.hidden = by === "left_queue" || !chatId;
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

  function clearConversation() {
    $("messages").textContent = "";
    $("ended-messages").textContent = "";
    $("ended-log").hidden = true;
  }

  /* Resources whose `topics` (config/resources.toml) meet the chat's topics go first. The
     page has one list: it moves to the end screen, and back to the closed view in order. */
  function orderResources(topics, where) {
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

  function sendFeedback(ev) {
    ev.preventDefault();
    var form = $("feedback-form");
    var helped = form.querySelector("input[name=helped]:checked");
    var score = form.querySelector("input[name=score]:checked");
    if (!helped && !score) { setText("feedback-status", t("feedback_missing")); return; }
    var payload = { chat_id: chatId };
    if (helped) payload.helped = helped.value;
    if (score) payload.score = Number(score.value);
    $("send-feedback").disabled = true;
    emit("feedback", payload);
    setText("feedback-status", t("feedback_thanks"));
  }

  function newChat() {
    wipe();
    chatId = null;
    lastId = 0;
    counselorName = "";
    state = "start";
    clearConversation();
    resetMeta();
    $("message-input").value = "";
    showError("send-error", "");
    showError("start-error", "");
    $("start-form").reset();
    $("emergency").hidden = true;
    $("start-chat").disabled = false;
    setText("connection", "");
    show("view-start", "start-title");
    if (socket && socket.connected) prepareWork();
  }

  /* ---- feelings board: a picture sent as words (issue 7) ---- */
  var SVG_NS = "http://www.w3.org/2000/svg";
  function picture(symbol, cls) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", cls);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (symbol) {
      var use = document.createElementNS(SVG_NS, "use");
      use.setAttribute("href", "#" + symbol);  // the page's inline sprite
      svg.appendChild(use);
    }
    return svg;
  }
  function symbolOf(feeling) {
    var btn = document.querySelector(".feeling[data-feeling='" + String(feeling).replace(/[^\w-]/g, "") + "']");
    return btn ? btn.getAttribute("data-symbol") : null;
  }
  function toggleFeelings(open) {
    $("feelings-board").hidden = !open;
    $("feelings-toggle").setAttribute("aria-expanded", open ? "true" : "false");
  }
  function sendFeeling(btn) {
    if (state !== "active" || !e2e) return;
    var obj = {
      type: "feeling",
      feeling: btn.getAttribute("data-feeling"),
      text: btn.querySelector(".feeling-label").textContent,
      sent_at: Date.now()
    };
    showError("send-error", "");
    sealAndSend(obj);
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
    if (state === "queued" || state === "active" || state === "starting") return;
    window.location.replace(a.href);
  });
  $("closed-back").addEventListener("click", function () { show("view-start", "start-title"); });
  if (cfg.open_now === false) showClosed("closed", false);

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
    if (state !== "start") return;
    loadSolver();
    if (!socket && E2E && window.crypto && window.crypto.subtle && window.io) connect();
  }
  ["focusin", "pointerdown", "input"].forEach(function (name) {
    $("start-form").addEventListener(name, warmUp);
  });
  document.documentElement.setAttribute("data-ready", "true");
})();
