/* One chat's message bookkeeping, shared by the visitor page and the console (no DOM):
 * own messages waiting for the server (pending), sent again with back-off while the
 * server answers busy or unavailable and after every reconnect, dropped duplicates by id
 * and by (epoch, dir, seq) (docs/protocol.md section 2: a triple is never reused), and the
 * place of a message among the shown ones, by id. Tested in Node: tests/js/. */

/* Error codes that mean "later": the same envelope goes again, so it is stored once (E2). */
export const RETRY_LATER = new Set(["busy", "unavailable"]);
/* The waits before each new try, each spread over 0.5x..1.5x so that pages refused
 * together do not come back together; after the last, the message has failed. */
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];

const DIRS = { visitor: ["v2c", "c2v"], counselor: ["c2v", "v2c"] };

function pendingKey(epoch, seq) { return epoch + "|" + seq; }
function seqKey(epoch, dir, seq) { return epoch + "|" + dir + "|" + seq; }

/* Where a message with `id` goes among a list's items, given in page order as their ids:
 * a number for a stored message, null for an own message not yet stored (pending, kept
 * last), anything else (a system line) is passed over. Returns the index to insert
 * before (items.length: at the end). */
export function placeById(items, id) {
  for (let i = 0; i < items.length; i++) {
    if (typeof items[i] === "number" && items[i] > id) return i;
  }
  const firstPending = items.indexOf(null);
  return firstPending >= 0 ? firstPending : items.length;
}

/* Puts `li` (a message with `id`) into `list` by placeById: page items with a data-id
 * are stored messages, `.message` items without one are own messages not yet stored. */
export function placeElement(list, li, id) {
  li.dataset.id = String(id);
  const items = Array.prototype.filter.call(list.children, (x) => x !== li);
  const ids = items.map((x) => (x.dataset.id ? Number(x.dataset.id)
    : x.classList.contains("message") ? null : undefined));
  list.insertBefore(li, items[placeById(ids, id)] || null);
}

/* The safety code as both pages show it: "737 392". */
export function formatSafetyCode(code) {
  const c = String(code == null ? "" : code);
  return /^\d{6}$/.test(c) ? c.slice(0, 3) + " " + c.slice(3) : c;
}

/* A missed list (chat:resume, chat:rejoin) in id order, for showing one by one. */
export function byId(list) {
  return (Array.isArray(list) ? list.slice() : []).sort((a, b) => a.id - b.id);
}

export class ChatSession {
  /* side: "visitor" or "counselor" (whose messages are "own").
   * send(envelope) -> Promise of the msg:send acknowledgement; {ok: false, error:
   *   {code: "offline"}} when there is no connection (resent by resendAll()).
   * onConfirmed(entry, id, ts, duplicate): stored as `id`; duplicate: that id was shown
   *   already (drop the copy). onRetrying(entry, code): refused for now, tried again.
   * onFailed(entry, code, ack): given up; the entry stays pending for retry(key). */
  constructor(side, send, hooks = {}) {
    if (!DIRS[side]) throw new TypeError("side must be visitor or counselor");
    this.side = side;
    [this.ownDir, this.peerDir] = DIRS[side];
    this._send = send;
    this._hooks = hooks;
    this._delays = hooks.delays || RETRY_DELAYS_MS;
    this._random = hooks.random || Math.random;
    this._setTimer = hooks.setTimer || ((fn, ms) => setTimeout(fn, ms));
    this._clearTimer = hooks.clearTimer || ((h) => clearTimeout(h));
    this.pending = new Map(); // "epoch|seq" -> {key, env, view, tries, state, timer}
    this._ids = new Set();
    this._seqs = new Set();
    this.lastId = 0;
  }

  _mark(id, key) {
    this._ids.add(id);
    if (key) this._seqs.add(key);
    if (id > this.lastId) this.lastId = id;
  }

  /* An envelope from msg:new or a missed list. Returns {kind}: "invalid"; "duplicate"
   * (shown already, by id or by its (epoch, dir, seq)); "confirmed" (an own pending one,
   * now stored: onConfirmed ran); or "new" with `own` and `dir`, marked as shown. */
  receive(env) {
    if (!env || typeof env.id !== "number" || this._ids.has(env.id)) {
      return { kind: env && typeof env.id === "number" ? "duplicate" : "invalid" };
    }
    const own = env.from === this.side;
    const dir = own ? this.ownDir : this.peerDir;
    const entry = own ? this.pending.get(pendingKey(env.epoch, env.seq)) : null;
    if (entry) {
      this._confirm(entry, env.id, env.ts);
      return { kind: "confirmed", entry: entry };
    }
    const key = seqKey(env.epoch, dir, env.seq);
    if (this._seqs.has(key)) {
      this._mark(env.id, null);
      return { kind: "duplicate" };
    }
    this._mark(env.id, key);
    return { kind: "new", own: own, dir: dir };
  }

  /* A sealed own envelope: kept pending and sent until the server stores it. `view` is
   * the page's own handle (its list item). Returns the entry. */
  submit(env, view) {
    const key = pendingKey(env.epoch, env.seq);
    const entry = { key: key, env: env, view: view, tries: 0, state: "sending", timer: null };
    this.pending.set(key, entry);
    this._transmit(entry);
    return entry;
  }

  /* After a reconnect (resume, rejoin): everything not yet stored goes again, the same
   * envelopes, so the server acknowledges the first copy's id. */
  resendAll() {
    this.pending.forEach((entry) => {
      if (entry.state === "failed") return;
      this._clearTimer(entry.timer);
      this._transmit(entry);
    });
  }

  /* Tries a failed message again (a person asked to), with a fresh back-off. */
  retry(key) {
    const entry = this.pending.get(key);
    if (!entry) return;
    this._clearTimer(entry.timer);
    entry.tries = 0;
    this._transmit(entry);
  }

  /* The chat is over: nothing is sent again. The entries stay pending (a late echo
   * still confirms one); returns them. */
  giveUp() {
    const left = Array.from(this.pending.values());
    left.forEach((entry) => { this._clearTimer(entry.timer); entry.state = "failed"; });
    return left;
  }

  /* Forgets everything (quick exit, a new chat). */
  clear() {
    this.pending.forEach((entry) => this._clearTimer(entry.timer));
    this.pending.clear();
    this._ids.clear();
    this._seqs.clear();
    this.lastId = 0;
  }

  _confirm(entry, id, ts) {
    this._clearTimer(entry.timer);
    this.pending.delete(entry.key);
    entry.state = "stored";
    const duplicate = this._ids.has(id);
    this._mark(id, seqKey(entry.env.epoch, this.ownDir, entry.env.seq));
    if (this._hooks.onConfirmed) this._hooks.onConfirmed(entry, id, ts, duplicate);
  }

  _transmit(entry) {
    entry.state = "sending";
    entry.timer = null;
    Promise.resolve(this._send(entry.env)).catch(() => null).then((ack) => {
      ack = ack && typeof ack === "object" ? ack : {};
      if (this.pending.get(entry.key) !== entry) return;
      if (ack.ok && typeof ack.id === "number") {
        this._confirm(entry, ack.id, ack.ts);
        return;
      }
      if (entry.state !== "sending") return;
      const code = ack.error && ack.error.code;
      if (code === "offline") {
        entry.state = "waiting"; // resendAll() after the reconnect
        return;
      }
      if (RETRY_LATER.has(code) && entry.tries < this._delays.length) {
        const wait = this._delays[entry.tries] * (0.5 + this._random());
        entry.tries += 1;
        entry.state = "waiting";
        entry.timer = this._setTimer(() => {
          if (this.pending.get(entry.key) === entry && entry.state === "waiting") this._transmit(entry);
        }, wait);
        if (this._hooks.onRetrying) this._hooks.onRetrying(entry, code);
        return;
      }
      entry.state = "failed";
      if (this._hooks.onFailed) this._hooks.onFailed(entry, code || "error", ack);
    });
  }
}
