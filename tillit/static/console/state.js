/* The console's shared state: the socket, the chats open on this page, and emit(). */
import { t } from "./config.js";

export const app = {
  socket: null,
  chats: new Map(), // chat_id -> chat state (chats.js newChat)
  acceptInFlight: new Set(), // chat_ids
  selectedChatId: null,
  chatCounter: 0,
  baseTitle: document.title,
};

/* An acknowledged emit as a Promise of the answer ({ok: false, error} when offline). */
export function emit(event, payload) {
  return new Promise(function (resolve) {
    if (!app.socket) {
      resolve({ ok: false, error: { code: "offline", message: t("reconnecting") } });
      return;
    }
    app.socket.emit(event, payload, function (res) {
      resolve(res && typeof res === "object" ? res : { ok: false, error: { code: "bad_ack", message: "?" } });
    });
  });
}
