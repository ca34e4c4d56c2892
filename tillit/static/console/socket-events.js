/* The console's Socket.IO connection on /counselor and what each server event does. */
import { setConnStatus, t, notify } from "./config.js";
import { app } from "./state.js";
import { loadQueue, removeFromQueue, setQueue } from "./queue.js";
import { dropChat, newChat, onChatMeta, setKeys } from "./chats.js";
import { chatTitle, selectChat } from "./chat-panel.js";
import { appendSystem, handleEnvelope, prependSystemOnce, setTyping } from "./messages.js";
import { loadMine, markEnded, rejoinChat } from "./lifecycle.js";
import { renderReport } from "./workflow.js";
import { wireMailboxSocket } from "./mailboxes.js";

function isTransportError(err) {
  var msg = String((err && err.message) || "");
  return /websocket error|xhr poll error|xhr post error|timeout|transport/i.test(msg);
}

export function connect() {
  var socket = window.io("/counselor", { path: "/socket.io", transports: ["websocket"] });
  app.socket = socket;
  wireMailboxSocket(socket);

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
    app.chats.forEach(function (c) {
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
    // Accepts close together share one event: `accepted` lists them all (protocol E4).
    var all = data && Array.isArray(data.accepted) ? data.accepted : [data];
    all.forEach(function (one) {
      if (one && typeof one.chat_id === "string" && !app.acceptInFlight.has(one.chat_id)) {
        removeFromQueue(one.chat_id);
      }
    });
  });

  socket.on("msg:new", function (env) {
    if (!env || typeof env.chat_id !== "string") return;
    var chat = app.chats.get(env.chat_id);
    if (!chat) return;
    handleEnvelope(chat, env);
  });

  socket.on("typing", function (data) {
    if (!data) return;
    var chat = app.chats.get(data.chat_id);
    if (chat) setTyping(chat, !!data.on);
  });

  socket.on("key:update", async function (data) {
    if (!data || data.from === "counselor") return;
    var chat = app.chats.get(data.chat_id);
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
    var chat = data && app.chats.get(data.chat_id);
    if (chat && data.report) {
      chat.report = data.report;
      renderReport(chat);
    }
  });

  // The chat went back to the queue or to a colleague: it is not ours any more.
  socket.on("chat:returned", function (data) {
    var chat = data && app.chats.get(data.chat_id);
    if (!chat) return;
    if (data.why === "counselor_gone") notify(t("returned", { chat: chatTitle(chat) }), "error");
    dropChat(chat);
  });

  // A colleague handed us a chat: re-key it (new epoch) like after a reload.
  socket.on("chat:transferred", function (data) {
    if (!data || typeof data.chat_id !== "string" || app.chats.has(data.chat_id)) return;
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
    var chat = app.chats.get(data.chat_id);
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
