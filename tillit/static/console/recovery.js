/* The admin page's recovery with the team key (docs/protocol.md E12.5, E12.9): the team
 * key file is read with FileReader and opened with its passphrase in this page's memory
 * only (never stored); every mailbox with a message is listed, those whose messages the
 * holder cannot read first (a disabled account, no key, or a new key after a reset); a
 * transfer wraps each message's content key, opened with the team key, for the chosen
 * colleague's key (`rewrapFor`) and sends `mailbox:transfer`, which the server audits as
 * `mailbox.recover`. Leaving the page or "Forget" drops the key and the socket. */
import { rewrapFor, unwrapWithPassword } from "../mailbox-crypto.js";

var form = document.getElementById("recovery-unlock");
var d = form.dataset;
var statusNode = document.getElementById("recovery-status");
var team = null; // {privateKey, pubkey, kid}: in memory only
var socket = null;
var staff = [];
var boxes = []; // [{item, messages, unreadable}]

function say(text) { statusNode.textContent = text; }
function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? String(values[k]) : m; });
}

function readFile(file) {
  return new Promise(function (resolve, reject) {
    var reader = new FileReader();
    reader.onload = function () { resolve(String(reader.result)); };
    reader.onerror = function () { reject(reader.error); };
    reader.readAsText(file);
  });
}

function emit(event, payload) {
  return new Promise(function (resolve) {
    if (!socket) { resolve({ ok: false, error: { code: "offline", message: "offline" } }); return; }
    socket.timeout(30000).emit(event, payload, function (err, res) {
      resolve(err ? { ok: false, error: { code: "timeout", message: String(err) } }
        : res && typeof res === "object" ? res : { ok: false, error: { code: "bad_ack", message: "?" } });
    });
  });
}

function connect() {
  return new Promise(function (resolve, reject) {
    socket = window.io("/counselor", { path: "/socket.io", transports: ["websocket"] });
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

function forget() {
  team = null;
  boxes = [];
  staff = [];
  if (socket) { socket.disconnect(); socket = null; }
  document.getElementById("recovery-work").hidden = true;
  document.querySelector("#recovery-mailboxes tbody").textContent = "";
  document.getElementById("recovery-forget").hidden = true;
  document.getElementById("recovery-unlock-submit").disabled = false;
}

async function allMessages(id) {
  var out = [];
  var after = 0;
  for (var i = 0; i < 10; i++) {
    var res = await emit("mailbox:read", after ? { mailbox_id: id, after_seq: after } : { mailbox_id: id });
    if (!res.ok) throw new Error((res.error && res.error.message) || "read");
    out = out.concat(res.messages || []);
    if (!res.more || !out.length) break;
    after = out[out.length - 1].seq;
  }
  return out;
}

function holderOf(item) {
  return item.assigned ? staff.find(function (s) { return s.username === item.assigned; }) : null;
}

function unreadableBy(item, messages) {
  var holder = holderOf(item);
  var kids = holder ? [holder.kid] : item.assigned ? [] : staff.map(function (s) { return s.kid; });
  return messages.filter(function (env) {
    return !(env.keys || []).some(function (k) { return kids.indexOf(k.kid) >= 0; });
  }).length;
}

function render() {
  var tbody = document.querySelector("#recovery-mailboxes tbody");
  tbody.textContent = "";
  boxes.forEach(function (b) {
    var tr = document.createElement("tr");
    tr.className = "recovery-item" + (b.unreadable ? " needs-recovery" : "");
    tr.dataset.mailboxId = b.item.mailbox_id;
    var who = document.createElement("td");
    var name = b.item.assigned_name || b.item.assigned;
    who.textContent = !b.item.assigned ? d.holderNone
      : holderOf(b.item) ? name : fill(d.gone, { name: name });
    var count = document.createElement("td");
    count.className = "recovery-counts";
    count.textContent = fill(d.counts, { unreadable: b.unreadable, total: b.messages.length });
    var last = document.createElement("td");
    last.textContent = b.item.last_ts ? new Date(b.item.last_ts * 1000).toISOString().slice(0, 10) : "";
    var act = document.createElement("td");
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "recovery-give";
    btn.textContent = d.give;
    btn.disabled = !staff.length;
    btn.addEventListener("click", function () { give(b, btn); });
    act.appendChild(btn);
    tr.append(who, count, last, act);
    tbody.appendChild(tr);
  });
}

async function load() {
  var list = await emit("mailbox:list", {});
  var st = await emit("mailbox:staff", {});
  if (!list.ok || !st.ok) throw new Error(((list.error || st.error) || {}).message || "list");
  staff = st.staff || [];
  var select = document.getElementById("recovery-to");
  select.textContent = "";
  staff.forEach(function (s) {
    var o = document.createElement("option");
    o.value = s.username;
    o.textContent = s.display_name ? s.display_name + " (" + s.username + ")" : s.username;
    select.appendChild(o);
  });
  boxes = [];
  for (var item of list.mailboxes || []) {
    var messages = await allMessages(item.mailbox_id);
    boxes.push({ item: item, messages: messages, unreadable: unreadableBy(item, messages) });
  }
  boxes.sort(function (a, b) { return (b.unreadable ? 1 : 0) - (a.unreadable ? 1 : 0); });
  document.getElementById("recovery-work").hidden = false;
  render();
  return !boxes.length ? d.none : !staff.length ? d.noColleague : d.unlocked;
}

async function give(b, btn) {
  var to = staff.find(function (s) { return s.username === document.getElementById("recovery-to").value; });
  if (!team || !to) return;
  btn.disabled = true;
  say(d.working);
  try {
    var entries = [];
    for (var env of b.messages) {
      try {
        entries.push(await rewrapFor(env, b.item.mailbox_id, team, to.pubkey));
      } catch (e) { /* sealed for an older team key: not recoverable with this file */ }
    }
    var res = await emit("mailbox:transfer", { mailbox_id: b.item.mailbox_id, to: to.username, entries: entries });
    if (!res.ok) throw new Error((res.error && res.error.message) || "transfer");
    say(fill(d.done, { name: to.display_name || to.username, count: entries.length }));
    await load();
  } catch (e) {
    say(fill(d.failed, { message: String(e && e.message || e) }));
    btn.disabled = false;
  }
}

form.addEventListener("submit", async function (ev) {
  ev.preventDefault();
  var fileInput = document.getElementById("recovery-file");
  var pass = document.getElementById("recovery-passphrase");
  if (!fileInput.files.length || !pass.value) return;
  document.getElementById("recovery-unlock-submit").disabled = true;
  say(d.loading);
  var record;
  try {
    record = JSON.parse(await readFile(fileInput.files[0]));
  } catch (e) {
    say(d.badFile);
    document.getElementById("recovery-unlock-submit").disabled = false;
    return;
  }
  try {
    team = await unwrapWithPassword(record, pass.value, "team-key");
  } catch (e) {
    say(e instanceof TypeError ? d.badFile : d.wrong);
    document.getElementById("recovery-unlock-submit").disabled = false;
    return;
  } finally {
    pass.value = "";
    fileInput.value = "";
    record = null;
  }
  try {
    await connect();
    document.getElementById("recovery-forget").hidden = false;
    say(await load());
  } catch (e) {
    say(fill(d.failed, { message: String(e && e.message || e) }));
    forget();
  }
});

document.getElementById("recovery-forget").addEventListener("click", function () {
  forget();
  say(d.forgotten);
});
// Leaving the page (or the browser's back-forward cache keeping it) drops the key.
window.addEventListener("pagehide", forget);
