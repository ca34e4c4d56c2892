// Tillit counselor console (docs/protocol.md sections 5 and E4).
//
// Talks Socket.IO on the /counselor namespace, decrypts and encrypts locally with
// window.TillitE2E (static/e2e.js), and builds the DOM with createElement/textContent only
// (strict CSP, never innerHTML with data). Translated texts and vocabularies arrive in the
// JSON data island #tillit-config; larger pieces of markup come from <template> elements
// in console.html so that their texts go through gettext on the server.
(function () {
  "use strict";

  // ---------------------------------------------------------------- config & texts
  var CONFIG = {};
  try {
    var island = document.getElementById("tillit-config");
    CONFIG = JSON.parse((island && island.textContent) || "{}") || {};
  } catch (e) {
    CONFIG = {};
  }
  var TEXTS = CONFIG.texts || {};
  var VOCAB = CONFIG.vocab || {};
  var CSRF = CONFIG.csrf_token || "";
  var WF = CONFIG.workflow || {};
  var INDICATORS = Array.isArray(WF.indicators) ? WF.indicators : [];

  // Translated text by key, with {name} placeholders filled in. Falls back to the key.
  function t(key, vars) {
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
  function label(vocab, id) {
    if (id === null || id === undefined || id === "") return t("not_stated");
    var map = VOCAB_MAPS[vocab];
    if (map && map[id] !== undefined) return String(map[id]);
    return String(id);
  }

  // ---------------------------------------------------------------- DOM helpers
  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cloneTemplate(id) {
    var tpl = $(id);
    return tpl.content.firstElementChild.cloneNode(true);
  }

  function formatDuration(totalSeconds) {
    var s = Math.max(0, Math.floor(totalSeconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var ss = sec < 10 ? "0" + sec : String(sec);
    if (h > 0) return h + ":" + (m < 10 ? "0" + m : m) + ":" + ss;
    return m + ":" + ss;
  }

  function formatClock(ms) {
    var d = new Date(typeof ms === "number" ? ms : Date.now());
    var hh = d.getHours();
    var mm = d.getMinutes();
    return (hh < 10 ? "0" + hh : hh) + ":" + (mm < 10 ? "0" + mm : mm);
  }

  function errorMessage(res) {
    if (res && res.error) return res.error.message || res.error.code || "?";
    return "?";
  }

  // Non-intrusive notices in the top strip; they fade out by themselves.
  // `action` is an optional {label, run} for a button next to the text.
  function notify(text, kind, action) {
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

  function setConnStatus(state) {
    var node = $("conn-status");
    if (!node) return;
    node.dataset.state = state;
    node.textContent = t(state);
  }

  // ---------------------------------------------------------------- state
  var socket = null;
  var queue = []; // entries as sent by the server, plus _at (local receive time, ms)
  var queueItems = new Map(); // chat_id -> <li>
  var acceptInFlight = new Set(); // chat_ids
  var chats = new Map(); // chat_id -> chat state (see newChat)
  var chatCounter = 0;
  var selectedChatId = null;
  var baseTitle = document.title;

  function emit(event, payload) {
    return new Promise(function (resolve) {
      if (!socket) {
        resolve({ ok: false, error: { code: "offline", message: t("reconnecting") } });
        return;
      }
      socket.emit(event, payload, function (res) {
        resolve(res && typeof res === "object" ? res : { ok: false, error: { code: "bad_ack", message: "?" } });
      });
    });
  }

  // ---------------------------------------------------------------- queue
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

  function setQueue(list) {
    var now = Date.now();
    queue = sortedQueue(
      (Array.isArray(list) ? list : []).filter(function (q) {
        return q && typeof q.chat_id === "string" && !chats.has(q.chat_id);
      })
    ).map(function (q) {
      var copy = Object.assign({}, q);
      copy._at = now;
      return copy;
    });
    renderQueue();
    signalQueueChanges(queue);
  }

  function removeFromQueue(chatId) {
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
    var busy = acceptInFlight.has(q.chat_id);
    btn.disabled = busy;
    btn.textContent = busy ? t("accepting") : t("accept");
    btn.setAttribute("aria-label", t("accept_label", { summary: queueSummary(q) }));
  }

  function renderQueue() {
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
      return !acceptInFlight.has(q.chat_id);
    });
    tickQueue();
  }

  function tickQueue() {
    var now = Date.now();
    queue.forEach(function (q) {
      var li = queueItems.get(q.chat_id);
      if (li) li.querySelector(".wait-time").textContent = formatDuration(waitedSeconds(q, now));
    });
  }

  function loadQueue() {
    emit("queue:list", {}).then(function (res) {
      if (res.ok) setQueue(res.queue);
      else notify(t("queue_failed", { message: errorMessage(res) }), "error");
    });
  }

  // ---------------------------------------------------------------- chats: state
  function newChat(chatId, meta, crypto) {
    if (crypto) crypto.setChatId(chatId);
    var chat = {
      id: chatId,
      n: ++chatCounter,
      meta: meta || {},
      cc: crypto || new window.TillitE2E.ChatCrypto(chatId, "counselor"),
      report: null, // the reporting state as the server last told it (E7)
      suggested: new Set(), // indicator ids suggested by local keyword matching (never sent)
      referrals: new Set(), // resource ids sent as cards in this chat
      firstEpoch: null, // first epoch this page holds keys for
      epoch: null,
      ready: null, // promise resolved once the keys are set
      seen: new Set(), // message ids shown (or being decrypted)
      seenSeq: new Set(), // "epoch:from:seq"
      pending: new Map(), // "epoch:seq" -> {li, envelope, text}
      maxId: 0,
      unread: 0,
      ended: false,
      panel: null,
      tab: null,
      typingTimer: null,
      typingOn: false,
      typingSentAt: 0,
      typingOffTimer: null,
      unavailableShown: false,
    };
    resetReady(chat);
    chats.set(chatId, chat);
    return chat;
  }

  // A fresh "keys are set" promise: decryption waits on it while a (re-)key is under way.
  function resetReady(chat) {
    chat.ready = new Promise(function (res, rej) {
      chat.resolveReady = res;
      chat.rejectReady = rej;
    });
    chat.ready.catch(function () {});
  }

  function dropChat(chat) {
    try {
      chat.cc.forget();
    } catch (e) {
      /* nothing to forget */
    }
    clearTimeout(chat.typingTimer);
    clearTimeout(chat.typingOffTimer);
    if (chat.panel) chat.panel.remove();
    if (chat.tab) chat.tab.remove();
    if (chat.quickNotice) chat.quickNotice.remove();
    chats.delete(chat.id);
    if (selectedChatId === chat.id) {
      selectedChatId = null;
      var nextOpen = null;
      chats.forEach(function (c) {
        if (!nextOpen && c.panel) nextOpen = c;
      });
      if (nextOpen) selectChat(nextOpen.id, true);
      else {
        var take = $("take-next");
        if (!take.disabled) take.focus();
        else $("chats").focus();
      }
    }
    updateChatsEmpty();
    updateTitle();
  }

  async function setKeys(chat, epoch, visitorPubkey) {
    var code = await chat.cc.setEpoch(epoch, visitorPubkey);
    if (chat.firstEpoch === null) chat.firstEpoch = epoch;
    chat.epoch = epoch;
    showCode(chat, code);
    return code;
  }

  function showCode(chat, code) {
    if (!chat.panel) return;
    var c = String(code == null ? "" : code);
    var node = chat.panel.querySelector(".safety-code");
    node.textContent = formatSafetyCode(c);
    node.dataset.code = c;
  }

  // The safety code as both pages show it: "737 392" (visitor.js formats it the same way).
  function formatSafetyCode(code) {
    var c = String(code == null ? "" : code);
    return /^\d{6}$/.test(c) ? c.slice(0, 3) + " " + c.slice(3) : c;
  }

  // ------------------------------------------------ the visitor's answers (chat:update_meta)
  // A professional's sector goes with the role: "I ask as a professional (School)".
  function roleText(m) {
    var text = label("roles", m.role);
    if (m.role === "professional" && m.sector) text += " (" + label("sectors", m.sector) + ")";
    return text;
  }

  function fillPanelMeta(panel, m) {
    panel.querySelector(".meta-lang").textContent = label("languages", m.lang);
    panel.querySelector(".meta-age").textContent = label("age_groups", m.age_group);
    panel.querySelector(".meta-gender").textContent = label("genders", m.gender);
    panel.querySelector(".meta-role").textContent = roleText(m);
    panel.querySelector(".meta-contact").textContent = label("contact", m.contact);
    var topics = Array.isArray(m.topics) ? m.topics : [];
    panel.querySelector(".meta-topics").textContent = topics.length
      ? topics.map(function (id) { return label("topics", id); }).join(", ")
      : t("not_stated");
  }

  // The visitor answered the optional questions after we took the chat.
  function onChatMeta(data) {
    var chat = data && typeof data.chat_id === "string" && chats.get(data.chat_id);
    if (!chat || !data.meta || typeof data.meta !== "object") return;
    var keep = chat.meta && chat.meta.waited_s;
    chat.meta = Object.assign({}, chat.meta || {}, data.meta);
    if (keep !== undefined) chat.meta.waited_s = keep;
    if (chat.panel) fillPanelMeta(chat.panel, chat.meta);
  }

  // ---------------------------------------------------------------- chats: panels & tabs
  function updateChatsEmpty() {
    var any = false;
    chats.forEach(function (c) {
      if (c.panel) any = true;
    });
    $("chats-empty").hidden = any;
    $("chat-tabs").hidden = !any;
  }

  function chatTitle(chat) {
    return t("chat_label", { n: chat.n });
  }

  function openPanel(chat) {
    if (chat.panel) return chat.panel;
    var m = chat.meta || {};
    var panel = cloneTemplate("tpl-chat-panel");
    var pid = "chat-panel-" + chat.n;
    var tid = "chat-tab-" + chat.n;
    panel.id = pid;
    panel.dataset.chatId = chat.id;
    panel.setAttribute("aria-labelledby", tid);
    panel.querySelector(".chat-title").textContent = chatTitle(chat);
    panel.querySelector(".chat-danger").hidden = !m.danger_now;
    panel.classList.toggle("danger", !!m.danger_now);
    fillPanelMeta(panel, m);

    var input = panel.querySelector(".message-input");
    input.id = "chat-input-" + chat.n;
    panel.querySelector(".composer-label").setAttribute("for", input.id);
    panel.querySelector(".messages").setAttribute("aria-labelledby", tid);

    panel.querySelector(".composer").addEventListener("submit", function (ev) {
      ev.preventDefault();
      sendText(chat);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        ev.preventDefault();
        sendText(chat);
      }
    });
    input.addEventListener("input", function () {
      onOwnTyping(chat);
    });
    input.addEventListener("blur", function () {
      stopOwnTyping(chat);
    });
    panel.querySelector(".close-chat").addEventListener("click", function () {
      openCloseForm(chat);
    });
    setupWorkflow(chat, panel);

    var tab = el("button", "chat-tab");
    tab.type = "button";
    tab.id = tid;
    tab.dataset.chatId = chat.id;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", pid);
    tab.setAttribute("aria-selected", "false");
    tab.tabIndex = -1;
    var tabName = el("span", "tab-name", chatTitle(chat));
    var tabMeta = el("span", "tab-meta");
    tabMeta.appendChild(el("bdi", null, label("languages", m.lang)));
    tabMeta.appendChild(document.createTextNode(" · "));
    tabMeta.appendChild(el("bdi", null, label("age_groups", m.age_group)));
    var tabFlag = el("span", "tab-flag");
    var badge = el("span", "unread-badge");
    badge.hidden = true;
    tab.appendChild(tabName);
    tab.appendChild(tabMeta);
    tab.appendChild(tabFlag);
    tab.appendChild(badge);
    if (m.danger_now) tab.classList.add("danger");
    tab.addEventListener("click", function () {
      selectChat(chat.id, false);
    });
    tab.addEventListener("keydown", onTabKeydown);

    panel.hidden = true;
    $("chat-tabs").appendChild(tab);
    $("chat-panels").appendChild(panel);
    chat.panel = panel;
    chat.tab = tab;
    if (chat.cc && chat.epoch !== null) showCode(chat, chat.cc.code);
    updateChatsEmpty();
    if (selectedChatId === null || !chats.has(selectedChatId)) selectChat(chat.id, false);
    return panel;
  }

  function onTabKeydown(ev) {
    var tabs = Array.prototype.slice.call($("chat-tabs").querySelectorAll(".chat-tab"));
    var i = tabs.indexOf(ev.currentTarget);
    var j = -1;
    if (ev.key === "ArrowRight" || ev.key === "ArrowDown") j = (i + 1) % tabs.length;
    else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") j = (i - 1 + tabs.length) % tabs.length;
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = tabs.length - 1;
    if (j < 0) return;
    ev.preventDefault();
    selectChat(tabs[j].dataset.chatId, false);
    tabs[j].focus();
  }

  function selectChat(chatId, focusInput) {
    var target = chats.get(chatId);
    if (!target || !target.panel) return;
    selectedChatId = chatId;
    chats.forEach(function (c) {
      if (!c.panel) return;
      var on = c.id === chatId;
      c.panel.hidden = !on;
      c.tab.setAttribute("aria-selected", on ? "true" : "false");
      c.tab.tabIndex = on ? 0 : -1;
      c.tab.classList.toggle("selected", on);
    });
    target.unread = 0;
    updateBadge(target);
    scrollToEnd(target);
    if (focusInput) {
      var input = target.panel.querySelector(".message-input");
      if (!input.disabled) input.focus();
      else target.panel.querySelector(".close-chat").focus();
    }
  }

  function isInView(chat) {
    return selectedChatId === chat.id && document.visibilityState !== "hidden";
  }

  function updateBadge(chat) {
    if (!chat.tab) return;
    var badge = chat.tab.querySelector(".unread-badge");
    badge.hidden = chat.unread === 0;
    badge.textContent = String(chat.unread);
    badge.setAttribute("aria-label", t("unread", { n: chat.unread }));
    chat.tab.classList.toggle("has-unread", chat.unread > 0);
    updateTitle();
  }

  function updateTitle() {
    var total = 0;
    chats.forEach(function (c) {
      total += c.unread;
    });
    document.title = total > 0 ? "(" + total + ") " + baseTitle : baseTitle;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && selectedChatId && chats.has(selectedChatId)) {
      var c = chats.get(selectedChatId);
      c.unread = 0;
      updateBadge(c);
    }
  });

  function scrollToEnd(chat) {
    var list = chat.panel && chat.panel.querySelector(".messages");
    if (list) list.scrollTop = list.scrollHeight;
  }

  function nearEnd(list) {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  // ---------------------------------------------------------------- messages
  function insertById(chat, li, id) {
    var list = chat.panel.querySelector(".messages");
    var stick = nearEnd(list);
    li.dataset.id = String(id);
    var children = list.children;
    var before = null;
    for (var i = children.length - 1; i >= 0; i--) {
      var cid = children[i].dataset.id;
      if (cid === undefined || cid === "") continue; // pending or system lines stay at the end
      if (Number(cid) > id) before = children[i];
      else break;
    }
    if (!before) {
      // Keep pending own messages at the very end, after every stored one.
      var firstPending = list.querySelector(".message.pending");
      if (firstPending && firstPending !== li) before = firstPending;
    }
    list.insertBefore(li, before);
    if (stick) scrollToEnd(chat);
  }

  function appendSystem(chat, text, kind) {
    if (!chat.panel) return null;
    var list = chat.panel.querySelector(".messages");
    var stick = nearEnd(list);
    var li = el("li", "system-line" + (kind ? " " + kind : ""), text);
    list.appendChild(li);
    if (stick) scrollToEnd(chat);
    return li;
  }

  function prependSystemOnce(chat, text) {
    if (chat.unavailableShown || !chat.panel) return;
    chat.unavailableShown = true;
    var list = chat.panel.querySelector(".messages");
    list.insertBefore(el("li", "system-line unavailable", text), list.firstChild);
  }

  function buildMessage(from, body, ts) {
    var li = el("li", "message " + (from === "visitor" ? "from-visitor" : "from-counselor"));
    var who = el("span", "visually-hidden", (from === "visitor" ? t("visitor") : t("you")) + ": ");
    li.appendChild(who);
    var type = body && typeof body.type === "string" ? body.type : "text";
    if (type === "feeling") {
      li.classList.add("feeling");
      var f = el("p", "message-text");
      f.appendChild(el("span", "feeling-tag", t("feeling") + ": "));
      f.appendChild(document.createTextNode(String(body.label || body.text || body.id || "")));
      li.appendChild(f);
      f.dir = "auto";
      if (body.label && body.text && body.text !== body.label) {
        var extra = el("p", "message-text", body.text);
        extra.dir = "auto";
        li.appendChild(extra);
      }
    } else if (type === "resource") {
      li.classList.add("resource");
      li.appendChild(buildResourceCard(body));
    } else {
      var p = el("p", "message-text", body && body.text != null ? body.text : "");
      p.dir = "auto";
      li.appendChild(p);
    }
    var time = el("span", "message-time", formatClock(body && typeof body.sent_at === "number" ? body.sent_at : ts));
    li.appendChild(time);
    return li;
  }

  function buildResourceCard(body) {
    var r = body.resource && typeof body.resource === "object" ? body.resource : body;
    var card = el("div", "resource-card");
    card.appendChild(el("p", "resource-kind", t("resource")));
    var title = r.title || r.name || r.label;
    if (title) card.appendChild(el("p", "resource-title", title));
    var desc = r.text || r.description;
    if (desc) card.appendChild(el("p", "resource-text", desc));
    if (r.phone) card.appendChild(el("p", "resource-phone", r.phone));
    if (r.hours) card.appendChild(el("p", "resource-hours", r.hours));
    if (typeof r.url === "string" && /^https:\/\//i.test(r.url)) {
      var a = el("a", "resource-url", r.url);
      a.href = r.url;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      var p = el("p");
      p.appendChild(a);
      card.appendChild(p);
    }
    return card;
  }

  // An incoming or echoed envelope (msg:new, or from `missed`).
  async function handleEnvelope(chat, env, opts) {
    if (!env || typeof env.id !== "number") return;
    if (chat.seen.has(env.id)) return;
    chat.seen.add(env.id);
    if (env.id > chat.maxId) chat.maxId = env.id;
    var seqKey = env.epoch + ":" + env.from + ":" + env.seq;
    if (chat.seenSeq.has(seqKey)) return;
    chat.seenSeq.add(seqKey);

    // Our own message that is still pending here: we have its plaintext already.
    if (env.from === "counselor") {
      var pend = chat.pending.get(env.epoch + ":" + env.seq);
      if (pend) {
        promotePending(chat, pend, env.id, env.epoch + ":" + env.seq);
        return;
      }
    }

    try {
      await chat.ready;
    } catch (e) {
      return;
    }
    if (!chats.has(chat.id) || !chat.panel) return;

    var body;
    try {
      body = env.from === "visitor" ? await chat.cc.open(env) : await chat.cc.openOwn(env);
    } catch (e) {
      if (chat.firstEpoch !== null && env.epoch < chat.firstEpoch) {
        prependSystemOnce(chat, t("earlier_unavailable"));
      } else {
        var bad = el("li", "system-line undecryptable", t("undecryptable"));
        insertById(chat, bad, env.id);
      }
      return;
    }
    if (!chats.has(chat.id) || !chat.panel) return;
    var li = buildMessage(env.from, body, env.ts);
    insertById(chat, li, env.id);
    if (env.from === "visitor") {
      suggestIndicators(chat, body);
      setTyping(chat, false);
      if (!(opts && opts.quiet) && !isInView(chat)) {
        chat.unread += 1;
        updateBadge(chat);
      }
    }
  }

  function promotePending(chat, pend, id, key) {
    chat.pending.delete(key);
    pend.li.classList.remove("pending", "failed");
    var status = pend.li.querySelector(".message-status");
    if (status) status.remove();
    insertById(chat, pend.li, id);
  }

  async function sendText(chat) {
    if (chat.ended || !chat.panel) return;
    var input = chat.panel.querySelector(".message-input");
    var text = input.value;
    if (!text.trim()) return;
    if (text.length > 2000) text = text.slice(0, 2000);
    try {
      await chat.ready;
    } catch (e) {
      return;
    }
    var body = { type: "text", text: text, sent_at: Date.now() };
    if (await sendBody(chat, body)) {
      input.value = "";
      stopOwnTyping(chat);
    }
  }

  // Encrypt and send one plaintext object (text or a referral card); true once queued.
  async function sendBody(chat, body) {
    try {
      await chat.ready;
    } catch (e) {
      return false;
    }
    var envelope;
    try {
      envelope = await chat.cc.seal(body);
    } catch (e) {
      notify(t("error", { message: e && e.message ? e.message : "encrypt" }), "error");
      return false;
    }
    var key = envelope.epoch + ":" + envelope.seq;
    var li = buildMessage("counselor", body, body.sent_at);
    li.classList.add("pending");
    li.appendChild(el("span", "message-status", t("sending")));
    var list = chat.panel.querySelector(".messages");
    list.appendChild(li);
    scrollToEnd(chat);
    var pend = { li: li, envelope: envelope };
    chat.pending.set(key, pend);
    deliver(chat, pend, key);
    return true;
  }

  function deliver(chat, pend, key) {
    emit("msg:send", pend.envelope).then(function (res) {
      if (!chat.pending.has(key)) return; // the echo came first
      if (res.ok && typeof res.id === "number") {
        if (chat.seen.has(res.id) && chat.panel) {
          // Shown already (should not happen, the echo path promotes); drop the copy.
          chat.pending.delete(key);
          pend.li.remove();
          return;
        }
        chat.seen.add(res.id);
        chat.seenSeq.add(pend.envelope.epoch + ":counselor:" + pend.envelope.seq);
        if (res.id > chat.maxId) chat.maxId = res.id;
        promotePending(chat, pend, res.id, key);
      } else {
        pend.li.classList.add("failed");
        var status = pend.li.querySelector(".message-status");
        if (status) status.remove();
        status = el("span", "message-status", t("send_failed", { message: errorMessage(res) }) + " ");
        var retry = el("button", "retry quiet", t("retry"));
        retry.type = "button";
        retry.addEventListener("click", function () {
          retry.disabled = true;
          status.firstChild.textContent = t("sending") + " ";
          pend.li.classList.remove("failed");
          // Same envelope, same seq: the server acknowledges the first id (E2).
          deliver(chat, pend, key);
        });
        status.appendChild(retry);
        pend.li.appendChild(status);
      }
    });
  }

  // ---------------------------------------------------------------- typing
  function onOwnTyping(chat) {
    if (chat.ended) return;
    var now = Date.now();
    if (!chat.typingOn || now - chat.typingSentAt > 3000) {
      chat.typingOn = true;
      chat.typingSentAt = now;
      emit("typing", { chat_id: chat.id, on: true });
    }
    clearTimeout(chat.typingOffTimer);
    chat.typingOffTimer = setTimeout(function () {
      stopOwnTyping(chat);
    }, 4000);
  }

  function stopOwnTyping(chat) {
    clearTimeout(chat.typingOffTimer);
    if (!chat.typingOn) return;
    chat.typingOn = false;
    if (!chat.ended) emit("typing", { chat_id: chat.id, on: false });
  }

  function setTyping(chat, on) {
    if (!chat.panel) return;
    chat.panel.querySelector(".typing").hidden = !on || chat.ended;
    clearTimeout(chat.typingTimer);
    if (on) {
      chat.typingTimer = setTimeout(function () {
        setTyping(chat, false);
      }, 10000);
    }
  }

  // ---------------------------------------------------------------- lifecycle
  async function acceptChat(chatId) {
    if (acceptInFlight.has(chatId) || chats.has(chatId)) return;
    var entry = queue.find(function (q) {
      return q.chat_id === chatId;
    });
    acceptInFlight.add(chatId);
    renderQueue();
    var chat = newChat(chatId, entry ? stripLocal(entry) : {});
    var res;
    try {
      var pub = await chat.cc.newKeyPair();
      res = await emit("chat:accept", { chat_id: chatId, pubkey: pub });
    } catch (e) {
      res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
    }
    acceptInFlight.delete(chatId);
    if (!res.ok) {
      chat.rejectReady(new Error("accept failed"));
      dropChat(chat);
      notify(t("accept_failed", { message: errorMessage(res) }), "error");
      renderQueue();
      return;
    }
    await afterAccept(chat, res);
  }

  async function afterAccept(chat, res) {
    if (res.meta && typeof res.meta === "object") chat.meta = res.meta;
    if (res.report) chat.report = res.report;
    removeFromQueue(chat.id);
    openPanel(chat);
    renderReport(chat);
    try {
      await setKeys(chat, res.epoch, res.visitor_pubkey);
      chat.resolveReady();
    } catch (e) {
      chat.rejectReady(e);
      notify(t("error", { message: e && e.message ? e.message : "crypto" }), "error");
    }
    selectChat(chat.id, true);
    renderQueue();
  }

  function stripLocal(entry) {
    var m = Object.assign({}, entry);
    delete m._at;
    delete m.chat_id;
    return m;
  }

  // The server picks the chat (E5): danger now, returned, children, my languages, wait.
  var takingNext = false;
  async function takeNext() {
    if (takingNext) return;
    takingNext = true;
    $("take-next").disabled = true;
    var crypto = new window.TillitE2E.ChatCrypto(null, "counselor");
    var res;
    try {
      var pub = await crypto.newKeyPair();
      res = await emit("chat:take_next", { pubkey: pub });
    } catch (e) {
      res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
    }
    takingNext = false;
    if (!res.ok || chats.has(res.chat_id)) {
      if (!res.ok) {
        var code = res.error && res.error.code;
        notify(code === "busy" ? t("busy") : t("accept_failed", { message: errorMessage(res) }), "error");
      }
      renderQueue();
      return;
    }
    var chat = newChat(res.chat_id, res.meta || {}, crypto);
    await afterAccept(chat, res);
  }

  // Re-key and rejoin a chat this counselor holds (after a reload, or a reconnect).
  async function rejoinChat(chat) {
    var res;
    try {
      var pub = await chat.cc.newKeyPair();
      res = await emit("chat:rejoin", { chat_id: chat.id, pubkey: pub, after_id: chat.maxId });
    } catch (e) {
      res = { ok: false, error: { code: "crypto", message: e && e.message ? e.message : "crypto" } };
    }
    if (!chats.has(chat.id)) return;
    if (!res.ok) {
      openPanel(chat);
      // With keys of earlier epochs still in memory (a reconnect) old messages still open.
      if (chat.epoch !== null) chat.resolveReady();
      else chat.rejectReady(new Error("rejoin failed"));
      appendSystem(chat, t("rejoin_failed", { message: errorMessage(res) }), "error");
      return;
    }
    openPanel(chat);
    if (res.report) {
      chat.report = res.report;
      renderReport(chat);
    }
    try {
      var hadKeys = chat.epoch !== null;
      await setKeys(chat, res.epoch, res.visitor_pubkey);
      chat.resolveReady();
      if (hadKeys) appendSystem(chat, t("own_key_changed"), "key-change");
    } catch (e) {
      chat.rejectReady(e);
      notify(t("error", { message: e && e.message ? e.message : "crypto" }), "error");
      return;
    }
    var missed = Array.isArray(res.missed) ? res.missed.slice() : [];
    missed.sort(function (a, b) {
      return a.id - b.id;
    });
    for (var i = 0; i < missed.length; i++) {
      await handleEnvelope(chat, missed[i], { quiet: !!chat.freshFromReload });
    }
    chat.freshFromReload = false;
  }

  function loadMine() {
    emit("chat:mine", {}).then(function (res) {
      if (!res.ok) {
        notify(t("error", { message: errorMessage(res) }), "error");
        return;
      }
      var held = Array.isArray(res.chats) ? res.chats : [];
      var heldIds = new Set();
      held.forEach(function (info) {
        if (!info || typeof info.chat_id !== "string") return;
        heldIds.add(info.chat_id);
        removeFromQueue(info.chat_id);
        var chat = chats.get(info.chat_id);
        if (chat && acceptInFlight.has(info.chat_id)) return; // the accept path handles it
        if (!chat) {
          chat = newChat(info.chat_id, info.meta || {});
          chat.freshFromReload = true;
        } else if (info.meta) {
          chat.meta = info.meta;
        }
        if (info.report) chat.report = info.report;
        if (info.state === "ended") {
          openPanel(chat);
          if (!chat.ended) markEnded(chat, { by: "other" });
          if (chat.epoch === null) {
            chat.resolveReady();
            if (typeof info.last_id === "number" && info.last_id > 0) {
              prependSystemOnce(chat, t("earlier_unavailable"));
            }
          }
          return;
        }
        if (chat.epoch !== null) {
          // Reconnect with keys in memory: decryption waits for the new epoch's keys.
          resetReady(chat);
        }
        rejoinChat(chat);
      });
      // Chats open here that the server no longer gives us (ended while we were away).
      chats.forEach(function (chat) {
        if (!heldIds.has(chat.id) && !acceptInFlight.has(chat.id) && chat.panel && !chat.ended) {
          markEnded(chat, { by: "other" });
          appendSystem(chat, t("chat_gone"));
        }
      });
    });
  }

  function markEnded(chat, info) {
    chat.ended = true;
    var by = info && info.by;
    var reason = info && info.reason;
    var text;
    var quick = reason === "quick_exit";
    if (quick) text = t("ended_quick_exit");
    else if (by === "visitor") text = t("ended_visitor");
    else if (by === "timeout") text = t("ended_timeout");
    else if (by === "counselor") text = t("ended_counselor");
    else text = t("ended_other");
    if (!chat.panel) openPanel(chat);
    var panel = chat.panel;
    panel.classList.add("ended");
    panel.classList.toggle("quick-exit", quick);
    panel.dataset.endedBy = by || "";
    if (quick) panel.dataset.reason = "quick_exit";
    var status = panel.querySelector(".chat-status");
    status.textContent = text;
    status.hidden = false;
    status.classList.toggle("quick-exit", quick);
    setTyping(chat, false);
    var input = panel.querySelector(".message-input");
    input.disabled = true;
    panel.querySelector(".send").disabled = true;
    panel.querySelector(".send-card").disabled = true;
    panel.querySelector(".close-chat").classList.add("primary");
    chat.tab.classList.add("ended");
    chat.tab.classList.toggle("quick-exit", quick);
    chat.tab.querySelector(".tab-flag").textContent = quick ? "!" : t("ended_short");
    clearTimeout(chat.typingOffTimer);
    chat.typingOn = false;
    // Give up on messages that were never stored.
    chat.pending.forEach(function (p) {
      p.li.classList.add("failed");
      var retry = p.li.querySelector(".retry");
      if (retry) retry.remove();
    });
    if (quick) {
      // Very visible at once, without stealing the counselor's focus from another chat.
      var note = notify(t("quick_exit_notice", { chat: chatTitle(chat) }), "alert", {
        label: t("show"),
        run: function () {
          if (chats.has(chat.id)) selectChat(chat.id, true);
        },
      });
      chat.quickNotice = note;
    }
    if (!isInView(chat)) {
      chat.unread += 1;
      updateBadge(chat);
    }
  }

  // ---------------------------------------------------------------- closing form (E9)
  function fillSelect(select, entries, blank) {
    select.textContent = "";
    if (blank !== undefined) select.appendChild(new Option(blank, ""));
    entries.forEach(function (e) {
      select.appendChild(new Option(e.label, e.id));
    });
  }

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

  function openCloseForm(chat) {
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

  async function submitClose(chat) {
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

  // ---------------------------------------------------------------- reporting workflow (E7)
  function indicatorLabel(id) {
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

  function matchIndicators(text, lang) {
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

  function suggestIndicators(chat, body) {
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

  // ------------------------------------------------------------ referral lines' hours
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

  function setupWorkflow(chat, panel) {
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

    // Notes (E8)
    var noteInput = panel.querySelector(".note-input");
    noteInput.id = "note-input-" + chat.n;
    noteInput.maxLength = WF.max_note_chars || 1000;
    panel.querySelector(".note-label").setAttribute("for", noteInput.id);
    panel.querySelector(".note-save").addEventListener("click", function () {
      var text = noteInput.value.trim();
      if (!text) return;
      emit("note:add", { chat_id: chat.id, text: text }).then(function (res) {
        if (!res.ok) return notify(t("note_failed", { message: errorMessage(res) }), "error");
        noteInput.value = "";
        showNote(panel, res.note);
      });
    });
    emit("note:list", { chat_id: chat.id }).then(function (res) {
      if (res.ok) (res.notes || []).forEach(function (n) {
        showNote(panel, n);
      });
    });

    // Closing form
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

  function showNote(panel, note) {
    if (!note) return;
    var li = el("li", "note");
    li.appendChild(el("span", "note-time", formatClock((note.at || 0) * 1000)));
    var p = el("p", "note-text", note.text);
    p.dir = "auto";
    li.appendChild(p);
    panel.querySelector(".notes-list").appendChild(li);
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

  function renderReport(chat) {
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

  // ---------------------------------------------------------------- socket
  function isTransportError(err) {
    var msg = String((err && err.message) || "");
    return /websocket error|xhr poll error|xhr post error|timeout|transport/i.test(msg);
  }

  function connect() {
    socket = window.io("/counselor", { path: "/socket.io", transports: ["websocket"] });

    socket.on("connect", function () {
      setConnStatus("connected");
      loadQueue();
      loadMine();
    });

    socket.on("connect_error", function (err) {
      if (isTransportError(err)) {
        setConnStatus("reconnecting");
        return;
      }
      // Refused by the server: no (valid) session.
      location.assign("/console/login");
    });

    socket.on("disconnect", function (reason) {
      setConnStatus("reconnecting");
      chats.forEach(function (c) {
        setTyping(c, false);
      });
      if (reason === "io server disconnect") {
        // The server dropped us (session ended?). Try once more; a refusal goes to login.
        setTimeout(function () {
          socket.connect();
        }, 1000);
      }
    });

    socket.on("queue:update", function (data) {
      var list = Array.isArray(data) ? data : data && data.queue;
      setQueue(list);
    });

    socket.on("chat:accepted", function (data) {
      if (data && typeof data.chat_id === "string" && !acceptInFlight.has(data.chat_id)) {
        removeFromQueue(data.chat_id);
      }
    });

    socket.on("msg:new", function (env) {
      if (!env || typeof env.chat_id !== "string") return;
      var chat = chats.get(env.chat_id);
      if (!chat) return;
      handleEnvelope(chat, env);
    });

    socket.on("typing", function (data) {
      if (!data) return;
      var chat = chats.get(data.chat_id);
      if (chat) setTyping(chat, !!data.on);
    });

    socket.on("key:update", async function (data) {
      if (!data || data.from === "counselor") return;
      var chat = chats.get(data.chat_id);
      if (!chat) return;
      try {
        await chat.ready;
        await setKeys(chat, data.epoch, data.pubkey);
        appendSystem(chat, t("key_changed"), "key-change");
      } catch (e) {
        notify(t("error", { message: e && e.message ? e.message : "crypto" }), "error");
      }
    });

    socket.on("chat:meta", onChatMeta);

    socket.on("report:update", function (data) {
      var chat = data && chats.get(data.chat_id);
      if (chat && data.report) {
        chat.report = data.report;
        renderReport(chat);
      }
    });

    // The chat went back to the queue or to a colleague: it is not ours any more.
    socket.on("chat:returned", function (data) {
      var chat = data && chats.get(data.chat_id);
      if (!chat) return;
      if (data.why === "counselor_gone") notify(t("returned", { chat: chatTitle(chat) }), "error");
      dropChat(chat);
    });

    // A colleague handed us a chat: re-key it (new epoch) like after a reload.
    socket.on("chat:transferred", function (data) {
      if (!data || typeof data.chat_id !== "string" || chats.has(data.chat_id)) return;
      var chat = newChat(data.chat_id, data.meta || {});
      chat.report = data.report || null;
      chat.freshFromReload = true;
      notify(t("transferred_to_me", { name: data.from || "" }));
      rejoinChat(chat).then(function () {
        prependSystemOnce(chat, t("earlier_unavailable"));
        selectChat(chat.id, false);
      });
    });

    socket.on("chat:ended", function (data) {
      if (!data) return;
      var chat = chats.get(data.chat_id);
      if (!chat) {
        removeFromQueue(data.chat_id);
        return;
      }
      if (data.by === "counselor" && !data.reason) {
        // Closed by this counselor (maybe in another tab): nothing left to do here.
        dropChat(chat);
        return;
      }
      markEnded(chat, data);
    });
  }

  // ---------------------------------------------------------------- logout & boot
  function logout() {
    var btn = $("logout");
    btn.disabled = true;
    fetch("/api/console/logout", {
      method: "POST",
      headers: { "X-CSRF-Token": CSRF },
      credentials: "same-origin",
    })
      .then(function () {
        chats.forEach(function (c) {
          try {
            c.cc.forget();
          } catch (e) {
            /* ignore */
          }
        });
        if (socket) socket.disconnect();
        location.assign("/console/login");
      })
      .catch(function () {
        btn.disabled = false;
        notify(t("logout_failed"), "error");
      });
  }

  // ---------------------------------------------------------------- new-chat signals (issue 15)
  // Opt-in, off by default: a chime made with WebAudio (no audio file) and a desktop
  // notification. Permission is asked only when the counselor ticks the box (a click).
  // A notification says "New chat waiting" or "Urgent chat waiting" and nothing else: no
  // chat id, language or text, since it shows outside the page (lock screen, other apps).
  var SIGNAL_KEY = "tillit-console-signals";
  var signals = { sound: false, notify: false, primed: false, known: new Map(), audio: null };

  function saveSignals() {
    try {
      localStorage.setItem(SIGNAL_KEY, JSON.stringify({ sound: signals.sound, notify: signals.notify }));
    } catch (e) {
      /* private mode or storage off: the choice lasts for this page only */
    }
  }

  function notificationsAllowed() {
    return "Notification" in window && window.Notification.permission === "granted";
  }

  function audioContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!signals.audio) signals.audio = new Ctx();
    if (signals.audio.state === "suspended" && signals.audio.resume) {
      signals.audio.resume().catch(function () {});
    }
    return signals.audio;
  }

  function playChime(urgent) {
    var ctx = audioContext();
    if (!ctx) return;
    // Two soft notes for a new chat; three higher, quicker ones for danger now.
    var notes = urgent ? [880, 1175, 880] : [660, 880];
    var step = urgent ? 0.16 : 0.22;
    var start = ctx.currentTime + 0.02;
    notes.forEach(function (freq, i) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      var t0 = start + i * step;
      osc.type = "sine";
      osc.frequency.setValueAtTime(freq, t0);
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(urgent ? 0.3 : 0.18, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + step * 0.95);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t0);
      osc.stop(t0 + step);
    });
  }

  function showNewChatNotification(urgent) {
    if (!notificationsAllowed()) return;
    try {
      var n = new window.Notification(t(urgent ? "signal_urgent" : "signal_new"), {
        tag: urgent ? "tillit-urgent-chat" : "tillit-new-chat",
        renotify: true,
        requireInteraction: urgent,
        silent: signals.sound,
        icon: "/static/favicon.svg",
      });
      n.onclick = function () {
        window.focus();
        n.close();
      };
    } catch (e) {
      /* some browsers only allow notifications from a service worker: the chime remains */
    }
  }

  // Called with every new queue: signals chats that were not in it before, and chats that
  // turned into danger now. The first queue after loading the page only sets the baseline.
  function signalQueueChanges(list) {
    var fresh = false;
    var urgent = false;
    var next = new Map();
    list.forEach(function (q) {
      var before = signals.known.get(q.chat_id);
      next.set(q.chat_id, !!q.danger_now);
      if (before === undefined) fresh = true;
      if (q.danger_now && before !== true) urgent = true;
    });
    signals.known = next;
    if (!signals.primed) {
      signals.primed = true;
      return;
    }
    if (!fresh && !urgent) return;
    if (signals.sound) playChime(urgent);
    if (signals.notify) showNewChatNotification(urgent);
  }

  function initSignals() {
    var soundBox = $("signal-sound");
    var notifyBox = $("signal-notify");
    if (!soundBox || !notifyBox) return;
    var saved = {};
    try {
      saved = JSON.parse(localStorage.getItem(SIGNAL_KEY) || "{}") || {};
    } catch (e) {
      saved = {};
    }
    signals.sound = saved.sound === true;
    signals.notify = saved.notify === true && notificationsAllowed();
    soundBox.checked = signals.sound;
    notifyBox.checked = signals.notify;
    if (!("Notification" in window)) {
      notifyBox.disabled = true;
      notifyBox.closest("label").title = t("signal_unsupported");
    }
    soundBox.addEventListener("change", function () {
      signals.sound = soundBox.checked;
      if (signals.sound) audioContext(); // created within the click, so it may play
      saveSignals();
    });
    notifyBox.addEventListener("change", function () {
      if (!notifyBox.checked) {
        signals.notify = false;
        saveSignals();
        return;
      }
      var N = window.Notification;
      var answer = N.permission === "default" ? N.requestPermission() : Promise.resolve(N.permission);
      Promise.resolve(answer).then(function (permission) {
        signals.notify = permission === "granted";
        notifyBox.checked = signals.notify;
        if (!signals.notify) notify(t("signal_blocked"), "error");
        saveSignals();
      });
    });
    if (signals.sound) {
      // A page may start audio only after a gesture: resume on the first one.
      document.addEventListener("pointerdown", function () {
        audioContext();
      }, { once: true });
    }
  }

  function init() {
    initSignals();
    $("logout").addEventListener("click", logout);
    $("take-next").addEventListener("click", takeNext);
    updateChatsEmpty();
    renderQueue();
    setInterval(tickQueue, 1000);
    if (!window.TillitE2E || !window.crypto || !window.crypto.subtle) {
      setConnStatus("no_crypto");
      notify(t("no_crypto"), "alert");
      return;
    }
    if (typeof window.io !== "function") {
      setConnStatus("reconnecting");
      return;
    }
    setConnStatus("connecting");
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
