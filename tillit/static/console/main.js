/* Tillit counselor console (docs/protocol.md sections 5 and E4), the entry module.
 *
 * Talks Socket.IO on the /counselor namespace, decrypts and encrypts locally with
 * ../e2e.js, and builds the DOM with createElement/textContent only (strict CSP, never
 * innerHTML with data). Translated texts and vocabularies arrive in the JSON data island
 * #tillit-config (config.js); larger pieces of markup come from <template> elements in
 * console.html so that their texts go through gettext on the server. */
import { $, CSRF, t, notify, setConnStatus } from "./config.js";
import { app } from "./state.js";
import { renderQueue, tickQueue } from "./queue.js";
import { updateChatsEmpty, watchVisibility } from "./chat-panel.js";
import { takeNext } from "./lifecycle.js";
import { connect } from "./socket-events.js";
import { initSignals } from "./signals.js";
import { initMailboxes } from "./mailboxes.js";

function logout() {
  var btn = $("logout");
  btn.disabled = true;
  fetch("/api/console/logout", {
    method: "POST",
    headers: { "X-CSRF-Token": CSRF },
    credentials: "same-origin",
  })
    .then(function () {
      app.chats.forEach(function (c) {
        try {
          c.cc.forget();
        } catch (e) {
          /* ignore */
        }
      });
      if (app.socket) app.socket.disconnect();
      location.assign("/console/login");
    })
    .catch(function () {
      btn.disabled = false;
      notify(t("logout_failed"), "error");
    });
}

function init() {
  initSignals();
  initMailboxes();
  watchVisibility();
  $("logout").addEventListener("click", logout);
  $("take-next").addEventListener("click", takeNext);
  updateChatsEmpty();
  renderQueue();
  setInterval(tickQueue, 1000);
  if (!window.crypto || !window.crypto.subtle) {
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
