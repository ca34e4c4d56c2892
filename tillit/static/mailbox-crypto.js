/* Tillit mailboxes and return codes: the cryptography of docs/protocol.md E12.
 *
 * An ES module, WebCrypto only, no dependency (it imports nothing, not even e2e.js), so
 * that the visitor page, the counselor console and Node's test runner load the same file.
 * Every private key it hands out is non-extractable; raw secrets (the code's bytes, the
 * PKCS#8 of a key being wrapped, content keys) are zeroed as soon as they are used.
 * Nothing is stored: the callers keep keys in memory and drop them on the quick exit. */

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const utf8dec = new TextDecoder("utf-8", { fatal: true });

export const LABEL = "tillit-mailbox-v1";
export const VERSION = 1;
export const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; // Crockford: no I, L, O, U
export const CODE_BYTES = 10; // 80 bits
export const CODE_SYMBOLS = 16;
export const PBKDF2_ITERATIONS = 600000;
export const PBKDF2_MAX_ITERATIONS = 10000000;
export const MAX_TEXT_CHARS = 4000;
export const MAX_CT_BYTES = 16384; // body ciphertext with its tag
export const PAD_BLOCK = 256;
export const MAX_RECIPIENTS = 64;
export const KINDS = ["text", "time_proposal"];

const CURVE = { name: "ECDH", namedCurve: "P-256" };
const AES = { name: "AES-GCM", length: 256 };
const B64U_RE = /^[A-Za-z0-9_-]*$/;
const B64U_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// Dropped from a typed code: spaces, tabs, line breaks, no-break space, hyphens and dashes.
const CODE_SEPARATORS = new Set([
  " ", "\t", "\r", "\n", "\u00a0", "-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014",
  "\u2015", "\u2212"
]);
const CODE_ALIASES = { I: "1", L: "1", O: "0" };

/* ------------------------------------------------------------------ encoding */

export function b64uEncode(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64U_CHARS[n >> 18] + B64U_CHARS[(n >> 12) & 63] + B64U_CHARS[(n >> 6) & 63] +
      B64U_CHARS[n & 63];
  }
  if (i < bytes.length) {
    const two = i + 1 < bytes.length;
    const n = (bytes[i] << 16) | (two ? bytes[i + 1] << 8 : 0);
    out += B64U_CHARS[n >> 18] + B64U_CHARS[(n >> 12) & 63] + (two ? B64U_CHARS[(n >> 6) & 63] : "");
  }
  return out;
}

/* Strict base64url without padding; `length` pins the decoded size. */
export function b64uDecode(text, length) {
  if (typeof text !== "string" || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new TypeError("invalid base64url");
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (let i = 0; i < text.length; i++) {
    acc = (acc << 6) | B64U_CHARS.indexOf(text[i]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 255;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new TypeError("non-canonical base64url");
  if (length !== undefined && out.length !== length) throw new TypeError("wrong length");
  return out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/* ------------------------------------------------------------------ the code */

export class CodeFormatError extends Error {}

/* 80 random bits: the value of a new return code. */
export function generateCode() {
  return randomBytes(CODE_BYTES);
}

/* Display form: 16 symbols, 5 bits each, most significant first, `XXXX-XXXX-XXXX-XXXX`. */
export function formatCode(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== CODE_BYTES) {
    throw new TypeError("a code is 10 bytes");
  }
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let symbols = "";
  for (let i = 15; i >= 0; i--) symbols += CODE_ALPHABET[Number((n >> BigInt(5 * i)) & 31n)];
  return symbols.match(/.{4}/g).join("-");
}

/* A typed code → its 10 bytes; CodeFormatError when it is not one (checked before any
 * network use, so a typo in the alphabet never reaches the server). */
export function parseCode(text) {
  if (typeof text !== "string") throw new CodeFormatError("not text");
  let n = 0n;
  let count = 0;
  for (let ch of text) {
    if (CODE_SEPARATORS.has(ch)) continue;
    if (ch >= "a" && ch <= "z") ch = String.fromCharCode(ch.charCodeAt(0) - 32);
    ch = CODE_ALIASES[ch] || ch;
    const index = CODE_ALPHABET.indexOf(ch);
    if (ch.length !== 1 || index < 0) throw new CodeFormatError("not a code symbol");
    n = (n << 5n) | BigInt(index);
    if (++count > CODE_SYMBOLS) throw new CodeFormatError("too long");
  }
  if (count !== CODE_SYMBOLS) throw new CodeFormatError("too short");
  const out = new Uint8Array(CODE_BYTES);
  for (let i = CODE_BYTES - 1; i >= 0; i--) {
    out[i] = Number(n & 255n);
    n >>= 8n;
  }
  return out;
}

/* ------------------------------------------------------------------ derivation */

async function hkdfBits(ikm, salt, info) {
  const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: salt, info: utf8.encode(info) };
  return new Uint8Array(await subtle.deriveBits(params, base, 256));
}

async function aesKey(raw, usages) {
  return subtle.importKey("raw", raw, AES, false, usages);
}

export async function mailboxIdOf(locator) {
  return b64uEncode(new Uint8Array(await subtle.digest("SHA-256", locator)));
}

/* The code's bytes → {locator (base64url, for the server), mailboxId, wrapKey}.
 * wrapKey is a non-extractable AES-GCM key; the caller zeroes the code's bytes. */
export async function deriveMailbox(codeBytes) {
  if (!(codeBytes instanceof Uint8Array) || codeBytes.length !== CODE_BYTES) {
    throw new TypeError("a code is 10 bytes");
  }
  const salt = utf8.encode(LABEL);
  const locator = await hkdfBits(codeBytes, salt, "locator");
  const wrapRaw = await hkdfBits(codeBytes, salt, "key-wrap");
  const wrapKey = await aesKey(wrapRaw, ["encrypt", "decrypt"]);
  wrapRaw.fill(0);
  const mailboxId = await mailboxIdOf(locator);
  const result = { locator: b64uEncode(locator), mailboxId: mailboxId, wrapKey: wrapKey };
  locator.fill(0);
  return result;
}

/* ------------------------------------------------------------------ keys */

function decodePoint(pubkey) {
  const raw = b64uDecode(pubkey, 65);
  if (raw[0] !== 4) throw new TypeError("not an uncompressed point");
  return raw;
}

export async function importPublicKey(pubkey) {
  return subtle.importKey("raw", decodePoint(pubkey), CURVE, true, []);
}

/* base64url of the first 16 bytes of SHA-256 of the 65-byte point. */
export async function keyId(pubkey) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", decodePoint(pubkey)));
  return b64uEncode(digest.subarray(0, 16));
}

async function publicOf(key) {
  return b64uEncode(new Uint8Array(await subtle.exportKey("raw", key)));
}

/* PKCS#8 → a non-extractable private key, after checking it belongs to `pubkey`. */
async function importPkcs8(der, pubkey) {
  const probe = await subtle.importKey("pkcs8", der, CURVE, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", probe);
  const raw = concat(Uint8Array.of(4), concat(b64uDecode(jwk.x, 32), b64uDecode(jwk.y, 32)));
  if (pubkey !== undefined && b64uEncode(raw) !== pubkey) {
    throw new Error("the private key does not match the public key");
  }
  const key = await subtle.importKey("pkcs8", der, CURVE, false, ["deriveBits"]);
  return { privateKey: key, pubkey: b64uEncode(raw) };
}

/* A fresh key pair: the extractable private key only long enough to wrap it. */
async function freshPair() {
  const pair = await subtle.generateKey(CURVE, true, ["deriveBits"]);
  const der = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
  const pubkey = await publicOf(pair.publicKey);
  return { der: der, pubkey: pubkey };
}

function mailboxKeyAd(mailboxId) {
  return utf8.encode(LABEL + "|mailbox-key|" + mailboxId);
}

async function sealBlob(key, plaintext, ad, iv) {
  const nonce = iv || randomBytes(12);
  const ct = new Uint8Array(
    await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: ad }, key, plaintext));
  return { iv: b64uEncode(nonce), ct: b64uEncode(ct) };
}

async function openBlob(key, blob, ad) {
  const iv = b64uDecode(blob.iv, 12);
  const ct = b64uDecode(blob.ct);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: iv, additionalData: ad }, key, ct));
}

/* A new mailbox's key pair: {privateKey (non-extractable), pubkey, kid, wrappedKey}. */
export async function createMailboxKeys(mailbox, options = {}) {
  const pair = await freshPair();
  try {
    const wrappedKey = await sealBlob(mailbox.wrapKey, pair.der, mailboxKeyAd(mailbox.mailboxId), options.iv);
    const imported = await importPkcs8(pair.der, pair.pubkey);
    return {
      privateKey: imported.privateKey,
      pubkey: pair.pubkey,
      kid: await keyId(pair.pubkey),
      wrappedKey: wrappedKey
    };
  } finally {
    pair.der.fill(0);
  }
}

/* Wrap a given PKCS#8 (tests, vectors) under the code's key. */
export async function wrapMailboxPkcs8(der, mailbox, options = {}) {
  return sealBlob(mailbox.wrapKey, der, mailboxKeyAd(mailbox.mailboxId), options.iv);
}

/* The stored {iv, ct} → the mailbox's non-extractable private key. Throws on a wrong
 * code (AES-GCM fails) or when the key does not belong to `pubkey`. */
export async function unwrapMailboxKey(wrappedKey, mailbox, pubkey) {
  const der = await openBlob(mailbox.wrapKey, wrappedKey, mailboxKeyAd(mailbox.mailboxId));
  try {
    return (await importPkcs8(der, pubkey)).privateKey;
  } finally {
    der.fill(0);
  }
}

async function passwordKey(password, salt, iterations) {
  const base = await subtle.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: iterations },
    base, AES, false, ["encrypt", "decrypt"]);
}

function recordAd(type, kid) {
  return utf8.encode(LABEL + "|" + type + "|" + kid);
}

const KEY_TYPES = ["counselor-key", "team-key"];
const RECORD_FIELDS = ["ct", "iterations", "iv", "kdf", "kid", "pubkey", "salt", "type", "v"];

async function checkRecord(record, type) {
  if (!record || typeof record !== "object" ||
      Object.keys(record).sort().join() !== RECORD_FIELDS.join()) {
    throw new TypeError("not a key record");
  }
  if (record.v !== VERSION || record.type !== type || record.kdf !== "pbkdf2-sha256") {
    throw new TypeError("version, type or kdf");
  }
  if (!Number.isSafeInteger(record.iterations) || record.iterations < PBKDF2_ITERATIONS ||
      record.iterations > PBKDF2_MAX_ITERATIONS) {
    throw new TypeError("iterations");
  }
  if (record.kid !== (await keyId(record.pubkey))) throw new TypeError("kid");
  b64uDecode(record.salt, 16);
  b64uDecode(record.iv, 12);
  const ct = b64uDecode(record.ct);
  if (ct.length < 64 || ct.length > 512) throw new TypeError("ct size");
}

async function wrapPkcs8WithPassword(der, pubkey, password, type, options) {
  if (!KEY_TYPES.includes(type)) throw new TypeError("key type");
  const salt = options.salt || randomBytes(16);
  const iterations = options.iterations || PBKDF2_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < PBKDF2_ITERATIONS || iterations > PBKDF2_MAX_ITERATIONS) {
    throw new RangeError("iterations");
  }
  if (!(salt instanceof Uint8Array) || salt.length !== 16) throw new TypeError("salt");
  const kid = await keyId(pubkey);
  const key = await passwordKey(password, salt, iterations);
  const blob = await sealBlob(key, der, recordAd(type, kid), options.iv);
  return {
    v: VERSION, type: type, kid: kid, pubkey: pubkey, kdf: "pbkdf2-sha256",
    iterations: iterations, salt: b64uEncode(salt), iv: blob.iv, ct: blob.ct
  };
}

/* A new long-term key pair (a counselor's, or the team recovery key) wrapped under a
 * password: {record (for the server or the offline file), privateKey, pubkey, kid}. */
export async function createPasswordKeys(password, type = "counselor-key", options = {}) {
  const pair = await freshPair();
  try {
    const record = await wrapPkcs8WithPassword(pair.der, pair.pubkey, password, type, options);
    const imported = await importPkcs8(pair.der, pair.pubkey);
    return { record: record, privateKey: imported.privateKey, pubkey: pair.pubkey, kid: record.kid };
  } finally {
    pair.der.fill(0);
  }
}

/* Wrap a given PKCS#8 (tests, vectors, an imported team key). */
export async function wrapPkcs8(der, pubkey, password, type = "counselor-key", options = {}) {
  return wrapPkcs8WithPassword(der, pubkey, password, type, options);
}

/* A record and its password → {privateKey (non-extractable), pubkey, kid}. */
export async function unwrapWithPassword(record, password, type = "counselor-key") {
  await checkRecord(record, type);
  const key = await passwordKey(password, b64uDecode(record.salt, 16), record.iterations);
  const der = await openBlob(key, record, recordAd(type, record.kid));
  try {
    const imported = await importPkcs8(der, record.pubkey);
    return { privateKey: imported.privateKey, pubkey: record.pubkey, kid: record.kid };
  } finally {
    der.fill(0);
  }
}

/* The same key pair under a new password (fresh salt and IV): old unwraps, new wraps. */
export async function rewrapWithPassword(record, oldPassword, newPassword, type = "counselor-key", options = {}) {
  await checkRecord(record, type);
  const oldKey = await passwordKey(oldPassword, b64uDecode(record.salt, 16), record.iterations);
  const der = await openBlob(oldKey, record, recordAd(type, record.kid));
  try {
    await importPkcs8(der, record.pubkey);
    return await wrapPkcs8WithPassword(der, record.pubkey, newPassword, type,
      { iterations: record.iterations, salt: options.salt, iv: options.iv });
  } finally {
    der.fill(0);
  }
}

/* ------------------------------------------------------------------ messages */

function bodyAd(mailboxId, dir, messageId) {
  return utf8.encode(LABEL + "|body|" + mailboxId + "|" + dir + "|" + messageId);
}

function entryAd(mailboxId, messageId, kid) {
  return utf8.encode(LABEL + "|wrap|" + mailboxId + "|" + messageId + "|" + kid);
}

async function eciesKey(privateKey, peerRaw, epkRaw, recipientRaw) {
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

function checkBody(body) {
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

const ENVELOPE_FIELDS = ["v", "id", "dir", "iv", "ct", "keys"];
const STORED_FIELDS = ["seq", "ts", "kind"];
const ENTRY_FIELDS = ["epk", "iv", "kid", "wk"];

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
