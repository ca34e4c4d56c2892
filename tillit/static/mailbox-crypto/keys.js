/* Key pairs: the mailbox's, wrapped under the code (E12.4), and counselors' and the
 * team's, wrapped under a password (E12.5). */

import { AES, CURVE, LABEL, PBKDF2_ITERATIONS, PBKDF2_MAX_ITERATIONS, VERSION, b64uDecode, b64uEncode, concat, randomBytes, subtle, utf8 } from "./encoding.js";
/* ------------------------------------------------------------------ keys */

export function decodePoint(pubkey) {
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

export async function publicOf(key) {
  return b64uEncode(new Uint8Array(await subtle.exportKey("raw", key)));
}

/* PKCS#8 → a non-extractable private key, after checking it belongs to `pubkey`. */
export async function importPkcs8(der, pubkey) {
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
export async function freshPair() {
  const pair = await subtle.generateKey(CURVE, true, ["deriveBits"]);
  const der = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
  const pubkey = await publicOf(pair.publicKey);
  return { der: der, pubkey: pubkey };
}

export function mailboxKeyAd(mailboxId) {
  return utf8.encode(LABEL + "|mailbox-key|" + mailboxId);
}

export async function sealBlob(key, plaintext, ad, iv) {
  const nonce = iv || randomBytes(12);
  const ct = new Uint8Array(
    await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: ad }, key, plaintext));
  return { iv: b64uEncode(nonce), ct: b64uEncode(ct) };
}

export async function openBlob(key, blob, ad) {
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

export async function passwordKey(password, salt, iterations) {
  const base = await subtle.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: iterations },
    base, AES, false, ["encrypt", "decrypt"]);
}

export function recordAd(type, kid) {
  return utf8.encode(LABEL + "|" + type + "|" + kid);
}

export const KEY_TYPES = ["counselor-key", "team-key"];
export const RECORD_FIELDS = ["ct", "iterations", "iv", "kdf", "kid", "pubkey", "salt", "type", "v"];

export async function checkRecord(record, type) {
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

export async function wrapPkcs8WithPassword(der, pubkey, password, type, options) {
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
