// tillit/static/chat-session.js: dedupe, order and resend, as both pages use them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatSession, placeById, placeElement, byId, formatSafetyCode, RETRY_DELAYS_MS } from "../../tillit/static/chat-session.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

/* A session whose sends answer from `answers` (one per send, in order) and whose timers
 * run only when the test says so. */
function harness(side, answers) {
  const sent = [];
  const timers = [];
  const seen = { confirmed: [], retrying: [], failed: [] };
  const session = new ChatSession(side, (env) => {
    sent.push(env);
    return Promise.resolve(answers.shift() || { ok: false, error: { code: "offline" } });
  }, {
    random: () => 0.5,
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimer: () => {},
    onConfirmed: (entry, id, ts, duplicate) => seen.confirmed.push({ key: entry.key, id, duplicate }),
    onRetrying: (entry, code) => seen.retrying.push(code),
    onFailed: (entry, code) => seen.failed.push(code),
  });
  return { session, sent, timers, seen };
}

const env = (epoch, seq, extra) => ({ chat_id: "c", epoch, seq, nonce: "n", ct: "x", ...extra });

test("a message is shown once, whether it comes again by id or by (epoch, dir, seq)", () => {
  const s = new ChatSession("counselor", () => Promise.resolve({}));
  assert.equal(s.receive({ ...env(1, 0), id: 5, from: "visitor" }).kind, "new");
  assert.equal(s.receive({ ...env(1, 0), id: 5, from: "visitor" }).kind, "duplicate");
  // The same envelope stored again under a new id (a resend the server took twice).
  assert.equal(s.receive({ ...env(1, 0), id: 9, from: "visitor" }).kind, "duplicate");
  // Same epoch and seq, other direction: a different message.
  const own = s.receive({ ...env(1, 0), id: 6, from: "counselor" });
  assert.deepEqual([own.kind, own.own, own.dir], ["new", true, "c2v"]);
  assert.equal(s.receive({ ...env(2, 0), id: 7, from: "visitor" }).dir, "v2c");
  assert.equal(s.lastId, 9);
  assert.equal(s.receive({ epoch: 1 }).kind, "invalid");
});

test("messages are placed by id, with pending own ones kept last", () => {
  assert.equal(placeById([], 3), 0);
  assert.equal(placeById([1, 2, 4], 3), 2);
  assert.equal(placeById([1, 2, 4], 9), 3);
  assert.equal(placeById([1, 2, null, null], 3), 2); // before the unsent ones
  assert.equal(placeById([1, undefined, 5, null], 3), 2); // a system line is passed over
  assert.deepEqual(byId([{ id: 3 }, { id: 1 }, { id: 2 }]).map((m) => m.id), [1, 2, 3]);
  assert.deepEqual(byId(undefined), []);
});

/* Just enough of a list element for placeElement: children, insertBefore, dataset, classList. */
function fakeList(items) {
  const item = ([cls, id]) => ({ name: cls + (id || ""), dataset: id ? { id: String(id) } : {},
    classList: { contains: (c) => c === cls } });
  const list = { children: items.map(item) };
  list.insertBefore = (node, before) => {
    list.children = list.children.filter((x) => x !== node);
    const at = before ? list.children.indexOf(before) : list.children.length;
    list.children.splice(at, 0, node);
  };
  return { list, item };
}

test("an element goes in id order, before unsent own messages, past system lines", () => {
  const { list, item } = fakeList([["message", 1], ["system-line"], ["message", 4], ["message"]]);
  placeElement(list, item(["message"]), 3); // arrives without an id; placed as 3
  placeElement(list, item(["message"]), 9);
  assert.deepEqual(list.children.map((x) => x.name),
    ["message1", "system-line", "message", "message4", "message", "message"]);
  assert.deepEqual(list.children.map((x) => x.dataset.id),
    ["1", undefined, "3", "4", "9", undefined]);
  assert.equal(formatSafetyCode("737392"), "737 392");
});

test("an own message is confirmed by its acknowledgement, and its echo is then a duplicate", async () => {
  const h = harness("visitor", [{ ok: true, id: 12 }]);
  const entry = h.session.submit(env(1, 0), "li");
  assert.equal(h.session.pending.size, 1);
  await tick();
  assert.deepEqual(h.seen.confirmed, [{ key: entry.key, id: 12, duplicate: false }]);
  assert.equal(h.session.pending.size, 0);
  assert.equal(h.session.receive({ ...env(1, 0), id: 12, from: "visitor" }).kind, "duplicate");
});

test("an echo that comes before the acknowledgement confirms, and the late ack is ignored", async () => {
  const h = harness("counselor", [{ ok: true, id: 4 }]);
  h.session.submit(env(2, 3), "li");
  const got = h.session.receive({ ...env(2, 3), id: 4, from: "counselor" });
  assert.equal(got.kind, "confirmed");
  await tick();
  assert.equal(h.seen.confirmed.length, 1);
});

test("busy and unavailable are tried again with a growing wait, the same envelope each time", async () => {
  const busy = { ok: false, error: { code: "busy" } };
  const h = harness("visitor", [busy, { ok: false, error: { code: "unavailable" } }, { ok: true, id: 30 }]);
  const e = env(1, 0);
  h.session.submit(e, "li");
  await tick();
  assert.deepEqual(h.seen.retrying, ["busy"]);
  assert.equal(h.timers[0].ms, RETRY_DELAYS_MS[0]); // random 0.5: the middle of 0.5x..1.5x
  h.timers[0].fn();
  await tick();
  assert.equal(h.timers[1].ms, RETRY_DELAYS_MS[1]);
  h.timers[1].fn();
  await tick();
  assert.equal(h.sent.length, 3);
  assert.ok(h.sent.every((x) => x === e));
  assert.deepEqual(h.seen.confirmed.map((c) => c.id), [30]);
});

test("after the last wait the message has failed; a retry starts again", async () => {
  const busy = { ok: false, error: { code: "busy" } };
  const answers = RETRY_DELAYS_MS.map(() => busy).concat([busy, { ok: true, id: 2 }]);
  const h = harness("visitor", answers);
  const entry = h.session.submit(env(1, 0), "li");
  for (let i = 0; i < RETRY_DELAYS_MS.length; i++) {
    await tick();
    h.timers[i].fn();
  }
  await tick();
  assert.deepEqual(h.seen.failed, ["busy"]);
  assert.equal(entry.state, "failed");
  h.session.resendAll(); // a failed message waits for a person
  assert.equal(h.sent.length, RETRY_DELAYS_MS.length + 1);
  h.session.retry(entry.key);
  await tick();
  assert.deepEqual(h.seen.confirmed.map((c) => c.id), [2]);
});

test("other refusals fail at once", async () => {
  const h = harness("counselor", [{ ok: false, error: { code: "rate_limited" } }]);
  h.session.submit(env(1, 0), "li");
  await tick();
  assert.deepEqual(h.seen.failed, ["rate_limited"]);
  assert.equal(h.timers.length, 0);
});

test("without a connection a message waits, and goes by itself after the reconnect", async () => {
  const h = harness("counselor", [{ ok: false, error: { code: "offline" } }, { ok: true, id: 8 }]);
  h.session.submit(env(1, 0), "li");
  await tick();
  assert.equal(h.seen.failed.length + h.seen.retrying.length, 0);
  h.session.resendAll();
  await tick();
  assert.deepEqual(h.seen.confirmed.map((c) => c.id), [8]);
});

test("giving up stops the resends, a late echo still confirms; clear forgets every id", async () => {
  const h = harness("visitor", []);
  h.session.submit(env(1, 0), "a");
  h.session.submit(env(1, 1), "b");
  await tick();
  assert.deepEqual(h.session.giveUp().map((e) => e.view), ["a", "b"]);
  h.session.resendAll();
  assert.equal(h.sent.length, 2);
  assert.equal(h.session.receive({ ...env(1, 1), id: 2, from: "visitor" }).kind, "confirmed");
  h.session.receive({ ...env(1, 0), id: 3, from: "counselor" });
  h.session.clear();
  assert.equal(h.session.lastId, 0);
  assert.equal(h.session.receive({ ...env(1, 0), id: 3, from: "counselor" }).kind, "new");
});
