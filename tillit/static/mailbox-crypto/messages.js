/* Messages sealed for several recipients, opened, checked and rewrapped (E12.6). */

import { CURVE, KINDS, LABEL, MAX_CT_BYTES, MAX_RECIPIENTS, MAX_TEXT_CHARS, PAD_BLOCK, VERSION, b64uDecode, b64uEncode, concat, randomBytes, subtle, utf8, utf8dec } from "./encoding.js";
import { aesKey, hkdfBits } from "./code.js";
import { decodePoint, keyId, openBlob, publicOf, sealBlob } from "./keys.js";
/* ------------------------------------------------------------------ messages */

export function bodyAd(mailboxId, dir, messageId) {
  return utf8.encode(LABEL + "|body|" + mailboxId + "|" + dir + "|" + messageId);
}

export function entryAd(mailboxId, messageId, kid) {
  return utf8.encode(LABEL + "|wrap|" + mailboxId + "|" + messageId + "|" + kid);
}

export async function eciesKey(privateKey, peerRaw, epkRaw, recipientRaw) {
  const peer = await subtle.importKey("raw", peerRaw, CURVE, false, []);
  const shared = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: peer }, privateKey, 256));
  const raw = await hkdfBits(shared, concat(epkRaw, recipientRaw), LABEL + "|wrap");
  shared.fill(0);
  const key = await aesKey(raw, ["encrypt", "decrypt"]);
  raw.fill(0);
  return key;
}

/* One recipient entry {kid, epk, iv, wk}: the content key for `recipientPubkey`, with a
 * fresh ephemeral key (options.ephemeral = {privateKey, pubkey} and options.iv only for
 * test vectors). */
export async function wrapContentKey(contentKey, mailboxId, messageId, recipientPubkey, options = {}) {
  const recipientRaw = decodePoint(recipientPubkey);
  let eph = options.ephemeral;
  if (!eph) {
    const pair = await subtle.generateKey(CURVE, false, ["deriveBits"]);
    eph = { privateKey: pair.privateKey, pubkey: await publicOf(pair.publicKey) };
  }
  const epkRaw = decodePoint(eph.pubkey);
  const key = await eciesKey(eph.privateKey, recipientRaw, epkRaw, recipientRaw);
  const kid = await keyId(recipientPubkey);
  const blob = await sealBlob(key, contentKey, entryAd(mailboxId, messageId, kid), options.iv);
  return { kid: kid, epk: eph.pubkey, iv: blob.iv, wk: blob.ct };
}

export function checkBody(body) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new TypeError("body");
  if (!KINDS.includes(body.kind)) throw new TypeError("body kind");
  if (typeof body.text !== "string" || body.text.length > MAX_TEXT_CHARS) throw new TypeError("body text");
  if (!Number.isSafeInteger(body.sent)) throw new TypeError("body sent");
  if (body.kind === "time_proposal" && (!Number.isSafeInteger(body.at) ||
      !Number.isSafeInteger(body.minutes) || body.minutes < 1 || body.minutes > 240)) {
    throw new TypeError("time proposal");
  }
  if ("name" in body && typeof body.name !== "string") throw new TypeError("body name");
}

/* The body's UTF-8 JSON with a "pad" of spaces up to a multiple of PAD_BLOCK bytes (not
 * past the largest body that fits MAX_CT_BYTES), so that sizes say little about texts. */
export function encodeBody(body) {
  checkBody(body);
  const plain = { ...body };
  delete plain.pad;
  const bare = utf8.encode(JSON.stringify(plain)).length;
  const room = MAX_CT_BYTES - 16;
  const withPad = bare + 9; // ,"pad":""
  if (withPad > room) return utf8.encode(JSON.stringify(plain));
  const target = Math.min(Math.ceil(withPad / PAD_BLOCK) * PAD_BLOCK, room);
  plain.pad = " ".repeat(target - withPad);
  return utf8.encode(JSON.stringify(plain));
}

/* Seal a body for every recipient (public keys, base64url): the envelope
 * {v, id, dir, iv, ct, keys}. `body` is an object ({kind, text, sent, ...}) or, for test
 * vectors, its exact UTF-8 bytes. Options (test vectors only): messageId, contentKey,
 * iv, ephemerals[], wrapIvs[]. */
export async function sealMessage(mailboxId, dir, body, recipients, options = {}) {
  if (dir !== "v2c" && dir !== "c2v") throw new TypeError("dir");
  if (!Array.isArray(recipients) || recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
    throw new TypeError("1 to 64 recipients");
  }
  const plaintext = body instanceof Uint8Array ? body : encodeBody(body);
  if (plaintext.length > MAX_CT_BYTES - 16) throw new RangeError("too large");
  const kids = await Promise.all(recipients.map(keyId));
  if (new Set(kids).size !== kids.length) throw new TypeError("a recipient twice");
  const messageId = b64uEncode(options.messageId || randomBytes(16));
  const contentKey = options.contentKey ? Uint8Array.from(options.contentKey) : randomBytes(32);
  try {
    const key = await aesKey(contentKey, ["encrypt"]);
    const blob = await sealBlob(key, plaintext, bodyAd(mailboxId, dir, messageId), options.iv);
    const keys = [];
    for (let i = 0; i < recipients.length; i++) {
      keys.push(await wrapContentKey(contentKey, mailboxId, messageId, recipients[i], {
        ephemeral: options.ephemerals && options.ephemerals[i],
        iv: options.wrapIvs && options.wrapIvs[i]
      }));
    }
    return { v: VERSION, id: messageId, dir: dir, iv: blob.iv, ct: blob.ct, keys: keys };
  } finally {
    contentKey.fill(0);
  }
}

export class NotARecipientError extends Error {}

export const ENVELOPE_FIELDS = ["v", "id", "dir", "iv", "ct", "keys"];
export const STORED_FIELDS = ["seq", "ts", "kind"];
export const ENTRY_FIELDS = ["epk", "iv", "kid", "wk"];

/* Throws unless the envelope has exactly E12's fields and sizes (a stored one may carry
 * the server's seq, ts and kind). */
export function checkEnvelope(env) {
  if (!env || typeof env !== "object" || Array.isArray(env)) throw new TypeError("envelope");
  for (const f of ENVELOPE_FIELDS) if (!(f in env)) throw new TypeError("missing " + f);
  for (const f of Object.keys(env)) {
    if (!ENVELOPE_FIELDS.includes(f) && !STORED_FIELDS.includes(f)) throw new TypeError("field " + f);
  }
  if (env.v !== VERSION || (env.dir !== "v2c" && env.dir !== "c2v")) throw new TypeError("v or dir");
  b64uDecode(env.id, 16);
  b64uDecode(env.iv, 12);
  if (typeof env.ct !== "string" || env.ct.length > Math.ceil((MAX_CT_BYTES * 4) / 3)) {
    throw new TypeError("ct");
  }
  const ctLength = b64uDecode(env.ct).length;
  if (ctLength < 16 || ctLength > MAX_CT_BYTES) throw new TypeError("ct size");
  if (!Array.isArray(env.keys) || env.keys.length < 1 || env.keys.length > MAX_RECIPIENTS) {
    throw new TypeError("keys");
  }
  const seen = new Set();
  for (const e of env.keys) {
    if (!e || typeof e !== "object" || Object.keys(e).sort().join() !== ENTRY_FIELDS.join()) {
      throw new TypeError("entry");
    }
    b64uDecode(e.kid, 16);
    decodePoint(e.epk);
    b64uDecode(e.iv, 12);
    b64uDecode(e.wk, 48);
    if (seen.has(e.kid)) throw new TypeError("a kid twice");
    seen.add(e.kid);
  }
}

/* The content key of `env` through the entry of {privateKey, pubkey}: 32 raw bytes
 * (the caller zeroes them). NotARecipientError without an entry; throws on tampering. */
export async function unwrapContentKey(env, mailboxId, own) {
  checkEnvelope(env);
  const kid = await keyId(own.pubkey);
  const entry = env.keys.find((e) => e.kid === kid);
  if (!entry) throw new NotARecipientError("not a recipient");
  const epkRaw = decodePoint(entry.epk);
  const key = await eciesKey(own.privateKey, epkRaw, epkRaw, decodePoint(own.pubkey));
  const raw = await openBlob(key, { iv: entry.iv, ct: entry.wk }, entryAd(mailboxId, env.id, kid));
  if (raw.length !== 32) throw new TypeError("content key size");
  return raw;
}

/* Decrypt to the exact UTF-8 bytes of the body. */
export async function openMessageBytes(env, mailboxId, own) {
  const contentKey = await unwrapContentKey(env, mailboxId, own);
  try {
    const key = await aesKey(contentKey, ["decrypt"]);
    return await openBlob(key, env, bodyAd(mailboxId, env.dir, env.id));
  } finally {
    contentKey.fill(0);
  }
}

/* Decrypt and check the body {kind, text, sent, ...}; its padding is dropped. */
export async function openMessage(env, mailboxId, own) {
  const body = JSON.parse(utf8dec.decode(await openMessageBytes(env, mailboxId, own)));
  checkBody(body);
  delete body.pad;
  return body;
}

/* Check a recipient list from the server ([{kid, pubkey, role}], E12.6): every kid is
 * its pubkey's, no key twice, 1 to 64 entries, exactly one team key and, when the
 * visitor gives `mailboxPubkey`, exactly one mailbox entry, theirs. Returns the public
 * keys to seal for. */
export async function checkRecipients(list, mailboxPubkey) {
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_RECIPIENTS) {
    throw new TypeError("recipients");
  }
  const seen = new Set();
  for (const r of list) {
    if (!r || typeof r !== "object" || !["mailbox", "team", "counselor"].includes(r.role)) {
      throw new TypeError("recipient");
    }
    if (r.kid !== (await keyId(r.pubkey)) || seen.has(r.kid)) throw new TypeError("recipient kid");
    seen.add(r.kid);
  }
  if (list.filter((r) => r.role === "team").length !== 1) throw new TypeError("team key");
  const boxes = list.filter((r) => r.role === "mailbox");
  if (mailboxPubkey !== undefined && (boxes.length !== 1 || boxes[0].pubkey !== mailboxPubkey)) {
    throw new TypeError("not this mailbox's key");
  }
  return list.map((r) => r.pubkey);
}

/* For mailbox:transfer: this message's content key wrapped for a colleague, {id, entry}. */
export async function rewrapFor(env, mailboxId, own, colleaguePubkey, options = {}) {
  const contentKey = await unwrapContentKey(env, mailboxId, own);
  try {
    return { id: env.id, entry: await wrapContentKey(contentKey, mailboxId, env.id, colleaguePubkey, options) };
  } finally {
    contentKey.fill(0);
  }
}

/* The public key of a non-extractable private key is not readable from it: callers keep
 * {privateKey, pubkey} together, as every function above returns them. */
export async function importPrivateJwk(jwk) {
  const privateKey = await subtle.importKey("jwk", jwk, CURVE, false, ["deriveBits"]);
  const raw = concat(Uint8Array.of(4), concat(b64uDecode(jwk.x, 32), b64uDecode(jwk.y, 32)));
  return { privateKey: privateKey, pubkey: b64uEncode(raw) };
}

/* The envelopes of `list` that the open mailbox has not shown yet, in order, each one
 * moving its `lastSeq` on. `openBox()` gives the mailbox at each step (null once the page
 * has closed it while a message was being opened; then nothing more is given). */
export function* unseen(list, openBox) {
  for (var i = 0; i < list.length; i++) {
    var box = openBox();
    if (!box) return;
    if (list[i].seq <= box.lastSeq) continue;
    box.lastSeq = list[i].seq;
    yield list[i];
  }
}
