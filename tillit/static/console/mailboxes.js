/* The console's mailboxes (docs/protocol.md E12): the counselor's key unlocked with their
 * password (made and stored wrapped the first time), the list of mailboxes (own first,
 * then unassigned), reading and answering end-to-end encrypted, proposing a time,
 * transferring to a colleague (rewrapping every message's content key) and case notes
 * that live as long as the mailbox. The private key stays in this page's memory only. */
import * as MC from "../mailbox-crypto.js";
import { $, el, t, errorMessage, formatClock } from "./config.js";
import { app, emit } from "./state.js";
import { showNote } from "./notes.js";

var me = null; // {privateKey, pubkey, kid}: the unlocked counselor key
var current = null; // the open mailbox: {id, pubkey, recipients, messages: [env], lastSeq}
var listed = [];

function status(id, text) {
  var node = $(id);
  if (node) node.textContent = text || "";
}

/* ---- 7. the counselor's key (E12.5) ---- */
async function unlock(ev, makeNew) {
  if (ev) ev.preventDefault();
  var input = $("mailbox-password");
  var password = input.value;
  if (!password) return;
  $("mailbox-unlock-submit").disabled = true;
  status("mailbox-unlock-status", t("mb_unlocking"));
  try {
    var keys = await emit("mailbox:keys", {});
    if (!keys.ok) throw new Error(errorMessage(keys));
    if (keys.key && !makeNew) {
      try {
        me = await MC.unwrapWithPassword(keys.key, password);
      } catch (e) {
        // The password does not open the stored key: a typo, or an admin's reset since
        // (E12.5: then a new key pair; older messages stay readable with the team key).
        $("mailbox-new-key").hidden = false;
        throw e;
      }
    } else {
      var made = await MC.createPasswordKeys(password, "counselor-key");
      var set = await emit("mailbox:keys", { set: made.record });
      if (!set.ok) throw new Error(errorMessage(set));
      me = { privateKey: made.privateKey, pubkey: made.pubkey, kid: made.kid };
    }
    input.value = "";
    $("mailbox-unlock").hidden = true;
    $("mailbox-new-key").hidden = true;
    status("mailbox-unlock-status", t("mb_unlocked"));
    await loadList();
    if (current) await openMailbox(current.id);
  } catch (e) {
    status("mailbox-unlock-status", t("mb_unlock_failed"));
  } finally {
    password = "";
    $("mailbox-unlock-submit").disabled = false;
  }
}

/* ---- 6. the list ---- */
export async function loadList() {
  var res = await emit("mailbox:list", {});
  if (!res.ok) {
    status("mailbox-list-status", t("error", { message: errorMessage(res) }));
    return;
  }
  listed = res.mailboxes || [];
  renderList();
}

function dayText(day) {
  return day ? String(day) : "";
}

function renderList() {
  var list = $("mailboxes");
  list.textContent = "";
  status("mailbox-list-status", listed.length ? "" : t("mb_none"));
  listed.forEach(function (m) {
    var li = el("li", "mailbox-item" + (m.mine ? " mine" : "") + (m.unread ? " has-unread" : ""));
    li.dataset.mailboxId = m.mailbox_id;
    var btn = el("button", "mailbox-open");
    btn.type = "button";
    var who = m.mine ? t("mb_mine") : m.assigned ? t("mb_assigned", { name: m.assigned_name || m.assigned })
      : t("mb_unassigned");
    btn.appendChild(el("span", "mb-who", who));
    btn.appendChild(el("span", "mb-count", t("mb_counts", { unread: m.unread || 0, total: m.messages || 0 })));
    btn.appendChild(el("span", "mb-expires", t("mb_expires", { day: dayText(m.expires_day) })));
    if (m.unread) btn.appendChild(el("span", "count unread-count", String(m.unread)));
    btn.addEventListener("click", function () { openMailbox(m.mailbox_id); });
    li.appendChild(btn);
    list.appendChild(li);
  });
}

function upsert(item) {
  if (!item || typeof item.mailbox_id !== "string") return;
  var i = listed.findIndex(function (m) { return m.mailbox_id === item.mailbox_id; });
  if (i >= 0) listed.splice(i, 1);
  listed.unshift(item);
  listed.sort(function (a, b) {
    var rank = function (m) { return m.mine ? 0 : m.assigned ? 2 : 1; };
    return rank(a) - rank(b) || (b.last_ts || 0) - (a.last_ts || 0);
  });
  renderList();
}

/* ---- reading ---- */
async function openMailbox(id) {
  var res = await emit("mailbox:read", { mailbox_id: id });
  if (!res.ok) {
    status("mailbox-list-status", t("error", { message: errorMessage(res) }));
    return;
  }
  current = { id: id, pubkey: res.mailbox.pubkey, box: res.mailbox, recipients: res.recipients,
    messages: [], lastSeq: 0 };
  $("mailbox-thread").textContent = "";
  $("mailbox-notes").textContent = "";
  $("mailbox-detail").hidden = false;
  status("mailbox-detail-status", me ? "" : t("mb_locked"));
  status("mailbox-expiry", t("mb_expires", { day: dayText(res.mailbox.expires_day) }));
  await showMessages(res.messages || []);
  var more = res.more;
  for (var i = 0; more && i < 10; i++) {
    var next = await emit("mailbox:read", { mailbox_id: id, after_seq: current.lastSeq });
    if (!next.ok) break;
    await showMessages(next.messages || []);
    more = next.more;
  }
  loadNotes();
  loadStaff();
  var item = listed.find(function (m) { return m.mailbox_id === id; });
  if (item) { item.unread = 0; renderList(); }
  $("mailbox-heading-detail").focus();
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString(document.documentElement.lang || undefined,
    { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

async function showMessages(list) {
  var ol = $("mailbox-thread");
  for (var env of MC.unseen(list, function () { return current; })) {
    current.messages.push(env);
    var li = el("li", "message " + (env.dir === "v2c" ? "from-visitor" : "from-counselor"));
    var meta = el("p", "message-meta");
    var text = el("p", "message-text");
    text.dir = "auto";
    if (!me) {
      meta.textContent = (env.dir === "v2c" ? t("mb_from_visitor") : t("mb_from_counselor")) + " · " + when(env.ts);
      text.textContent = t("mb_locked_message");
    } else {
      try {
        var body = await MC.openMessage(env, current.id, me);
        meta.textContent = (env.dir === "v2c" ? t("mb_from_visitor") : (body.name || t("mb_from_counselor"))) +
          " · " + when(env.ts);
        text.textContent = body.text;
        if (body.kind === "time_proposal") {
          li.appendChild(meta);
          li.appendChild(text);
          li.appendChild(el("p", "proposed-time", t("mb_proposed", { time: when(body.at), minutes: body.minutes })));
          ol.appendChild(li);
          continue;
        }
      } catch (e) {
        meta.textContent = when(env.ts);
        text.textContent = t("mb_unreadable");
      }
    }
    li.appendChild(meta);
    li.appendChild(text);
    ol.appendChild(li);
  }
}

/* ---- answering and proposing a time ---- */
async function refreshRecipients() {
  var res = await emit("mailbox:read", { mailbox_id: current.id, after_seq: current.lastSeq });
  if (!res.ok) return false;
  current.recipients = res.recipients;
  await showMessages(res.messages || []);
  return true;
}

async function seal(event, body) {
  if (!me || !current) {
    status("mailbox-detail-status", t("mb_locked"));
    return null;
  }
  body.sent = Math.floor(Date.now() / 1000);
  body.name = document.body.dataset.displayName || undefined;
  if (!body.name) delete body.name;
  for (var tries = 0; tries < 2; tries++) {
    var pubkeys = await MC.checkRecipients(current.recipients);
    var env = await MC.sealMessage(current.id, "c2v", body, pubkeys);
    var res = await emit(event, { mailbox_id: current.id, message: env });
    if (res.ok) {
      env.seq = res.seq;
      env.ts = res.ts;
      env.kind = event === "mailbox:propose_time" ? "proposal" : "message";
      await showMessages([env]);
      return res;
    }
    if (!(res.error && res.error.code === "conflict") || !(await refreshRecipients())) {
      status("mailbox-detail-status", t("error", { message: errorMessage(res) }));
      return null;
    }
  }
  status("mailbox-detail-status", t("error", { message: errorMessage(res) }));
  return null;
}

async function sendReply(ev) {
  ev.preventDefault();
  var input = $("mailbox-reply");
  var text = input.value.trim();
  if (!text) return;
  $("mailbox-send-reply").disabled = true;
  try {
    if (await seal("mailbox:reply", { kind: "text", text: text })) {
      input.value = "";
      status("mailbox-detail-status", t("mb_reply_sent"));
    }
  } finally {
    $("mailbox-send-reply").disabled = false;
  }
}

async function proposeTime(ev) {
  ev.preventDefault();
  var at = Date.parse($("mailbox-time").value);
  var minutes = Number($("mailbox-minutes").value) || 30;
  if (!Number.isFinite(at)) {
    status("mailbox-detail-status", t("mb_time_missing"));
    return;
  }
  var text = $("mailbox-time-text").value.trim();
  if (await seal("mailbox:propose_time", {
    kind: "time_proposal", text: text, at: Math.floor(at / 1000),
    minutes: Math.max(1, Math.min(240, Math.round(minutes)))
  })) {
    $("mailbox-time-text").value = "";
    status("mailbox-detail-status", t("mb_time_sent"));
  }
}

/* ---- transfer to a colleague (E12.9: rewrap every message this key opens) ---- */
var staff = [];
async function loadStaff() {
  var res = await emit("mailbox:staff", {});
  var select = $("mailbox-transfer-to");
  select.textContent = "";
  staff = res.ok ? (res.staff || []).filter(function (s) {
    return s.username !== document.body.dataset.username;
  }) : [];
  staff.forEach(function (s) {
    var o = el("option", null, s.display_name || s.username);
    o.value = s.username;
    select.appendChild(o);
  });
  $("mailbox-transfer").disabled = !staff.length;
}

async function transfer() {
  if (!me || !current) {
    status("mailbox-detail-status", t("mb_locked"));
    return;
  }
  var to = staff.find(function (s) { return s.username === $("mailbox-transfer-to").value; });
  if (!to) return;
  var entries = [];
  for (var i = 0; i < current.messages.length; i++) {
    try {
      entries.push(await MC.rewrapFor(current.messages[i], current.id, me, to.pubkey));
    } catch (e) { /* not a recipient of this one: the team key still opens it */ }
  }
  var res = await emit("mailbox:transfer", { mailbox_id: current.id, to: to.username, entries: entries });
  status("mailbox-detail-status", res.ok ? t("mb_transferred", { name: to.display_name || to.username })
    : t("error", { message: errorMessage(res) }));
  if (res.ok) loadList();
}

/* ---- case notes linked to the mailbox (live as long as it) ---- */
async function loadNotes() {
  if (!current) return;
  var res = await emit("mailbox:note_list", { mailbox_id: current.id });
  if (res.ok) (res.notes || []).forEach(function (n) { showNote($("mailbox-notes"), n); });
}

async function saveNote() {
  var input = $("mailbox-note-input");
  var text = input.value.trim();
  if (!text || !current) return;
  var res = await emit("mailbox:note_add", { mailbox_id: current.id, text: text });
  if (!res.ok) {
    status("mailbox-detail-status", t("note_failed", { message: errorMessage(res) }));
    return;
  }
  input.value = "";
  showNote($("mailbox-notes"), res.note);
}

/* The "returning contact" mark of a live chat, with the counselor's own case notes from
 * before (the server sends them in the chat's meta when the mailbox is theirs, E12.9). */
export function showReturning(panel, meta) {
  var badge = panel.querySelector(".returning-badge");
  if (!badge) return;
  badge.hidden = !meta.returning;
  var list = panel.querySelector(".returning-notes");
  list.textContent = "";
  (Array.isArray(meta.mailbox_notes) ? meta.mailbox_notes : []).forEach(function (n) { showNote(list, n); });
  list.hidden = !list.children.length;
}

function closeDetail() {
  current = null;
  $("mailbox-thread").textContent = "";
  $("mailbox-notes").textContent = "";
  $("mailbox-detail").hidden = true;
}

export function initMailboxes() {
  if (!$("mailbox-panel")) return;
  $("mailbox-unlock").addEventListener("submit", function (ev) { unlock(ev, false); });
  $("mailbox-new-key").addEventListener("click", function () { unlock(null, true); });
  $("mailbox-reply-form").addEventListener("submit", sendReply);
  $("mailbox-time-form").addEventListener("submit", proposeTime);
  $("mailbox-transfer").addEventListener("click", transfer);
  $("mailbox-note-save").addEventListener("click", saveNote);
  $("mailbox-close-detail").addEventListener("click", closeDetail);
  $("mailbox-refresh").addEventListener("click", loadList);
}

/* Socket events (socket-events.js wires them on every new socket). */
export function wireMailboxSocket(socket) {
  socket.on("connect", loadList);
  socket.on("mailbox:update", function (d) {
    if (!d || !d.mailbox) return;
    upsert(d.mailbox);
    if (current && d.mailbox.mailbox_id === current.id) refreshRecipients();
  });
  socket.on("mailbox:gone", function (d) {
    if (!d) return;
    listed = listed.filter(function (m) { return m.mailbox_id !== d.mailbox_id; });
    renderList();
    if (current && current.id === d.mailbox_id) closeDetail();
  });
  socket.on("chat:mailbox", function (d) {
    var chat = d && typeof d.mailbox_id === "string" && app.chats.get(d.chat_id);
    if (!chat || !chat.panel) return;
    var badge = chat.panel.querySelector(".returning-badge");
    badge.textContent = t("mb_made_in_chat");
    badge.hidden = false;
    var open = el("button", "chat-mailbox-open", t("mb_open"));
    open.type = "button";
    open.addEventListener("click", function () { openMailbox(d.mailbox_id); });
    badge.after(open);
  });
}
