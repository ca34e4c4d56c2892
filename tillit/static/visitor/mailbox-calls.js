/* The visitor mailbox's calls to the server (docs/protocol.md E12.9): the socket, an
 * acknowledged emit with a timeout, the proof of work (E12.8) and making a new mailbox.
 * Kept apart from mailbox.js (the screens) so that each stays small; loaded with it. */
import * as MC from "../mailbox-crypto.js";
import { S } from "./state.js";
import { connect } from "./chat.js";
import { loadSolver } from "./start.js";

export function ensureSocket() {
  return new Promise(function (resolve) {
    connect();
    if (S.socket.connected) { resolve(S.socket); return; }
    S.socket.once("connect", function () { resolve(S.socket); });
  });
}

export function call(socket, event, payload) {
  return new Promise(function (resolve) {
    if (!socket || !socket.connected) { resolve({ ok: false, error: { code: "offline" } }); return; }
    socket.timeout(30000).emit(event, payload, function (err, ack) {
      resolve(err ? { ok: false, error: { code: "offline" } } : (ack || {}));
    });
  });
}

/* A proof of work for a mailbox event (E12.8), solved in this page. */
async function solveFor(socket) {
  var pow = await loadSolver();
  var ch = await call(socket, "pow:challenge", { for: "mailbox" });
  if (!pow || !ch.ok || typeof ch.challenge !== "string") return null;
  var nonce = await pow.solve(ch.challenge, ch.bits, function () { return S.exiting; });
  return { challenge: ch.challenge, nonce: nonce };
}

/* Sends a mailbox event with a fresh proof of work, solving again after a pow_ refusal. */
export async function withWork(socket, event, payload) {
  for (var tries = 0; tries < 3; tries++) {
    var pow = await solveFor(socket);
    if (!pow) return { ok: false, error: { code: "unavailable" } };
    payload.pow = pow;
    var ack = await call(socket, event, payload);
    var code = ack.error && ack.error.code;
    if (ack.ok || !code || code.indexOf("pow_") !== 0) return ack;
  }
  return ack;
}

/* Makes a new mailbox on `socket`: {code (display), box}; the code's bytes are zeroed. */
export async function createMailbox(socket, chatId) {
  var bytes = MC.generateCode();
  var code = MC.formatCode(bytes);
  var derived = await MC.deriveMailbox(bytes);
  bytes.fill(0);
  var keys = await MC.createMailboxKeys(derived);
  var payload = { locator: derived.locator, pubkey: keys.pubkey, wrapped_key: keys.wrappedKey };
  if (chatId) payload.chat_id = chatId;
  var ack = await withWork(socket, "mailbox:create", payload);
  if (!ack.ok) return { ack: ack };
  return {
    ack: ack,
    code: code,
    box: {
      locator: derived.locator, mailboxId: derived.mailboxId,
      own: { privateKey: keys.privateKey, pubkey: keys.pubkey },
      recipients: ack.recipients, lastSeq: 0, counselorName: null, idleDays: ack.idle_days
    }
  };
}
