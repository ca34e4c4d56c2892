// The browser's mailbox cryptography (tillit/static/mailbox-crypto.js) against
// docs/protocol.md E12 and its test vectors (tests/mailbox_vectors.json, made by the
// independent Python client tests/mailbox_client.py). Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as M from "../../tillit/static/mailbox-crypto.js";

const V = JSON.parse(readFileSync(new URL("../mailbox_vectors.json", import.meta.url), "utf8"));
const I = V.inputs;
const hex = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const key = (name) => M.importPrivateJwk(I.private_jwk[name]);

test("code: 80 random bits shown as four groups of four Crockford symbols", () => {
  const a = M.generateCode();
  const b = M.generateCode();
  assert.equal(a.length, 10);
  assert.notDeepEqual(a, b);
  const text = M.formatCode(a);
  assert.match(text, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  assert.deepEqual(M.parseCode(text), a);
  assert.equal(M.formatCode(hex(I.code_hex)), V.code);
  assert.equal(M.formatCode(new Uint8Array(10)), "0000-0000-0000-0000");
  assert.equal(M.formatCode(new Uint8Array(10).fill(255)), "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
});

test("code: typed forms normalise to the same bytes; anything else is refused", () => {
  const want = hex(I.code_hex);
  for (const typed of [V.code, V.code.toLowerCase(), V.code.replace(/-/g, " "),
    " " + V.code.replace(/-/g, "") + "\n", V.code.replace(/-/g, "\u2013")]) {
    assert.deepEqual(M.parseCode(typed), want, typed);
  }
  assert.deepEqual(M.parseCode("OOOO-oooo-IIII-llll"), M.parseCode("0000-0000-1111-1111"));
  for (const bad of ["", "M6SC-7N75-YR3H-GA9", "M6SC-7N75-YR3H-GA9TX", "U6SC-7N75-YR3H-GA9T",
    "M6SC_7N75-YR3H-GA9T", "M6SC-7N75-YR3H-GA9\u0422", "M6SC-7N75-YR3H-GA9T\u0131", null]) {
    assert.throws(() => M.parseCode(bad), M.CodeFormatError, String(bad));
  }
});

test("derivation: locator, mailbox id and wrapping key of the vector", async () => {
  const d = await M.deriveMailbox(hex(I.code_hex));
  assert.equal(d.locator, V.locator);
  assert.equal(d.mailboxId, V.mailbox_id);
  assert.equal(d.mailboxId, await M.mailboxIdOf(M.b64uDecode(V.locator)));
  assert.equal(d.wrapKey.extractable, false);
  // The wrapping key equals the vector's: it opens the vector's wrapped mailbox key.
  const mbx = await M.unwrapMailboxKey(V.wrapped_mailbox_key, d, V.public_keys.mailbox);
  assert.equal(mbx.extractable, false);
});

test("mailbox key: a new pair wraps and unwraps; a wrong code or swapped blob fails", async () => {
  const d = await M.deriveMailbox(M.generateCode());
  const made = await M.createMailboxKeys(d);
  assert.equal(M.b64uDecode(made.pubkey).length, 65);
  assert.equal(made.kid, await M.keyId(made.pubkey));
  assert.equal(M.b64uDecode(made.wrappedKey.iv).length, 12);
  const back = await M.unwrapMailboxKey(made.wrappedKey, d, made.pubkey);
  const env = await M.sealMessage(d.mailboxId, "c2v", { kind: "text", text: "hej", sent: 1 }, [made.pubkey]);
  assert.equal((await M.openMessage(env, d.mailboxId, { privateKey: back, pubkey: made.pubkey })).text, "hej");
  const wrong = await M.deriveMailbox(M.generateCode());
  await assert.rejects(M.unwrapMailboxKey(made.wrappedKey, wrong, made.pubkey));
  // The same key under the right wrapping key but another mailbox id (the AD) fails.
  await assert.rejects(M.unwrapMailboxKey(made.wrappedKey, { ...d, mailboxId: wrong.mailboxId }, made.pubkey));
  // A wrapped key that is not the listed public key's is refused.
  const other = await M.createMailboxKeys(d);
  await assert.rejects(M.unwrapMailboxKey(other.wrappedKey, d, made.pubkey), /does not match/);
});

test("mailbox key vector: the fixed PKCS#8 and IV give the pinned ciphertext", async () => {
  const d = await M.deriveMailbox(hex(I.code_hex));
  const blob = await M.wrapMailboxPkcs8(hex(V.mailbox_pkcs8_hex), d, { iv: hex(I.mailbox_key_iv_hex) });
  assert.deepEqual(blob, V.wrapped_mailbox_key);
});

test("password records: the vectors unwrap; rewrap changes salt and IV, not the key", async () => {
  const c = await M.unwrapWithPassword(V.counselor_record, I.counselor_password);
  assert.equal(c.pubkey, V.public_keys.counselor);
  assert.equal(c.kid, V.kids.counselor);
  const t = await M.unwrapWithPassword(V.team_record, I.team_passphrase, "team-key");
  assert.equal(t.pubkey, V.public_keys.team);
  await assert.rejects(M.unwrapWithPassword(V.counselor_record, "fel lösenord"));
  await assert.rejects(M.unwrapWithPassword(V.team_record, I.team_passphrase), /type/);
  await assert.rejects(M.unwrapWithPassword({ ...V.counselor_record, iterations: 1000 }, I.counselor_password));
  const re = await M.rewrapWithPassword(V.counselor_record, I.counselor_password, "nytt lösenord 2026");
  assert.equal(re.pubkey, V.counselor_record.pubkey);
  assert.notEqual(re.salt, V.counselor_record.salt);
  assert.notEqual(re.iv, V.counselor_record.iv);
  assert.equal((await M.unwrapWithPassword(re, "nytt lösenord 2026")).kid, V.kids.counselor);
  await assert.rejects(M.unwrapWithPassword(re, I.counselor_password));
  await assert.rejects(M.rewrapWithPassword(V.counselor_record, "fel", "nytt"));
  const pinned = await M.wrapPkcs8(
    hex((await import("node:crypto")).createPrivateKey({ key: I.private_jwk.counselor, format: "jwk" })
      .export({ type: "pkcs8", format: "der" }).toString("hex")),
    V.public_keys.counselor, I.counselor_password, "counselor-key",
    { salt: hex(I.counselor_salt_hex), iv: hex(I.counselor_iv_hex) });
  assert.deepEqual(pinned, V.counselor_record);
});

test("new counselor keys: 600 000 iterations, 16-byte salt, non-extractable private key", async () => {
  const made = await M.createPasswordKeys("ett långt lösenord");
  assert.equal(made.record.iterations, 600000);
  assert.equal(M.b64uDecode(made.record.salt).length, 16);
  assert.equal(made.privateKey.extractable, false);
  assert.equal((await M.unwrapWithPassword(made.record, "ett långt lösenord")).pubkey, made.pubkey);
});

test("message vector: every recipient opens it; fixed inputs give the pinned envelope", async () => {
  for (const name of ["counselor", "team", "mailbox"]) {
    const own = await key(name);
    const bytes = await M.openMessageBytes(V.message, V.mailbox_id, own);
    assert.equal(new TextDecoder().decode(bytes), I.body_utf8);
    const body = await M.openMessage(V.message, V.mailbox_id, own);
    assert.equal(body.text, "Hej! Kan vi höras på torsdag? 🙂");
    assert.equal(body.kind, "text");
  }
  const ephemerals = await Promise.all(I.recipients_in_order.map((n) => key("ephemeral_" + n)));
  const sealed = await M.sealMessage(V.mailbox_id, I.direction, new TextEncoder().encode(I.body_utf8),
    I.recipients_in_order.map((n) => V.public_keys[n]), {
      messageId: hex(I.message_id_hex), contentKey: hex(I.content_key_hex), iv: hex(I.body_iv_hex),
      ephemerals: ephemerals, wrapIvs: I.wrap_iv_hex.map(hex)
    });
  assert.deepEqual(sealed, V.message);
});

test("message: tampering anywhere fails, a non-recipient cannot open", async () => {
  const own = await key("counselor");
  const flip = (s) => M.b64uEncode(M.b64uDecode(s).map((b, i) => (i === 0 ? b ^ 1 : b)));
  const e0 = V.message.keys[0];
  const tampered = [
    { ...V.message, ct: flip(V.message.ct) },
    { ...V.message, iv: flip(V.message.iv) },
    { ...V.message, dir: "c2v" },
    { ...V.message, id: M.b64uEncode(new Uint8Array(16)) },
    { ...V.message, keys: [{ ...e0, wk: flip(e0.wk) }, ...V.message.keys.slice(1)] },
    { ...V.message, keys: [{ ...e0, iv: flip(e0.iv) }, ...V.message.keys.slice(1)] },
    { ...V.message, keys: [{ ...e0, epk: V.message.keys[1].epk }, ...V.message.keys.slice(1)] }
  ];
  for (const env of tampered) await assert.rejects(M.openMessage(env, V.mailbox_id, own));
  // The right envelope under another mailbox id (moved to another mailbox) fails.
  await assert.rejects(M.openMessage(V.message, V.locator, own));
  const stranger = await M.createPasswordKeys("främling", "counselor-key", { iterations: 600000 });
  await assert.rejects(M.openMessage(V.message, V.mailbox_id, stranger), M.NotARecipientError);
  // A stranger who relabels an entry with their own kid still cannot open it.
  const relabelled = { ...V.message, keys: [{ ...e0, kid: stranger.kid }] };
  await assert.rejects(M.openMessage(relabelled, V.mailbox_id, stranger));
  // Malformed envelopes are refused before any decryption.
  for (const bad of [{ ...V.message, extra: 1 }, { ...V.message, v: 2 }, { ...V.message, keys: [] },
    { ...V.message, keys: [e0, e0] }, { ...V.message, keys: [{ ...e0, more: 1 }] }]) {
    await assert.rejects(M.openMessage(bad, V.mailbox_id, own), TypeError);
  }
});

test("transfer: a recipient rewraps the content key for a colleague, who then reads", async () => {
  const own = await key("counselor");
  const colleague = await M.createPasswordKeys("kollegans lösenord");
  const { id, entry } = await M.rewrapFor(V.message, V.mailbox_id, own, colleague.pubkey);
  assert.equal(id, V.message.id);
  assert.equal(entry.kid, colleague.kid);
  const moved = { ...V.message, keys: [...V.message.keys, entry] };
  assert.equal((await M.openMessage(moved, V.mailbox_id, colleague)).text, "Hej! Kan vi höras på torsdag? 🙂");
  await assert.rejects(M.openMessage(moved, V.mailbox_id, await key("ephemeral_team")), M.NotARecipientError);
});

test("seal: fresh ids, IVs and ephemeral keys; limits", async () => {
  const pubs = [V.public_keys.counselor, V.public_keys.team];
  const body = { kind: "time_proposal", text: "", sent: 1767225600, at: 1767290400, minutes: 30 };
  const a = await M.sealMessage(V.mailbox_id, "c2v", body, pubs);
  const b = await M.sealMessage(V.mailbox_id, "c2v", body, pubs);
  assert.notEqual(a.id, b.id);
  assert.notEqual(a.iv, b.iv);
  assert.notEqual(a.keys[0].epk, a.keys[1].epk);
  assert.deepEqual(await M.openMessage(a, V.mailbox_id, await key("team")), body);
  await assert.rejects(M.sealMessage(V.mailbox_id, "c2v", body, [pubs[0], pubs[0]]), /twice/);
  await assert.rejects(M.sealMessage(V.mailbox_id, "c2v", body, []));
  await assert.rejects(M.sealMessage(V.mailbox_id, "x2y", body, pubs));
  await assert.rejects(M.sealMessage(V.mailbox_id, "c2v", { ...body, kind: "html" }, pubs));
  await assert.rejects(M.sealMessage(V.mailbox_id, "c2v", { ...body, text: "x".repeat(4001) }, pubs));
});

test("base64url is strict", () => {
  assert.equal(M.b64uEncode(new Uint8Array([251, 255])), "-_8");
  assert.deepEqual(M.b64uDecode("-_8"), new Uint8Array([251, 255]));
  for (const bad of ["-_9", "a", "ab=", "a+b/", "ab cd"]) assert.throws(() => M.b64uDecode(bad), TypeError, bad);
  for (let n = 0; n < 40; n++) {
    const u = M.generateCode().subarray(0, n % 10);
    assert.deepEqual(M.b64uDecode(M.b64uEncode(u)), u);
  }
  assert.equal(toHex(M.b64uDecode(V.message.id)), I.message_id_hex);
});

test("padding: bodies fill whole 256-byte blocks, the longest text still fits", async () => {
  const pubs = [V.public_keys.counselor];
  for (const text of ["", "hej", "x".repeat(300), "ö".repeat(1000)]) {
    const env = await M.sealMessage(V.mailbox_id, "v2c", { kind: "text", text, sent: 1 }, pubs);
    assert.equal((M.b64uDecode(env.ct).length - 16) % 256, 0, text.slice(0, 5));
    assert.equal((await M.openMessage(env, V.mailbox_id, await key("counselor"))).text, text);
  }
  const longest = "\u0986".repeat(M.MAX_TEXT_CHARS); // 3 UTF-8 bytes each
  const env = await M.sealMessage(V.mailbox_id, "v2c", { kind: "text", text: longest, sent: 1 }, pubs);
  assert.ok(M.b64uDecode(env.ct).length <= M.MAX_CT_BYTES);
  const body = await M.openMessage(env, V.mailbox_id, await key("counselor"));
  assert.equal(body.text, longest);
  assert.equal("pad" in body, false);
});

test("time proposals need a start and 1 to 240 minutes", async () => {
  const pubs = [V.public_keys.counselor];
  const ok = { kind: "time_proposal", text: "", sent: 1, at: 1767290400, minutes: 240 };
  await M.sealMessage(V.mailbox_id, "c2v", ok, pubs);
  for (const bad of [{ ...ok, minutes: 0 }, { ...ok, minutes: 241 }, { ...ok, at: "18:00" }, { ...ok, at: undefined }]) {
    await assert.rejects(M.sealMessage(V.mailbox_id, "c2v", bad, pubs), TypeError);
  }
});

test("recipient lists from the server are checked before sealing", async () => {
  const list = [
    { kid: V.kids.mailbox, pubkey: V.public_keys.mailbox, role: "mailbox" },
    { kid: V.kids.team, pubkey: V.public_keys.team, role: "team" },
    { kid: V.kids.counselor, pubkey: V.public_keys.counselor, role: "counselor" }
  ];
  assert.deepEqual(await M.checkRecipients(list), list.map((r) => r.pubkey));
  await assert.rejects(M.checkRecipients([{ ...list[0], kid: V.kids.team }]), TypeError);
  await assert.rejects(M.checkRecipients([list[0], list[0]]), TypeError);
  await assert.rejects(M.checkRecipients([{ ...list[0], role: "admin" }]), TypeError);
  await assert.rejects(M.checkRecipients([]), TypeError);
  assert.equal((await M.checkRecipients(list, V.public_keys.mailbox)).length, 3);
  await assert.rejects(M.checkRecipients(list, V.public_keys.counselor), /this mailbox/);
  await assert.rejects(M.checkRecipients(list.slice(0, 1).concat(list.slice(2))), /team/);
  await assert.rejects(M.createPasswordKeys("kort", "counselor-key", { iterations: 1000 }), RangeError);
});
