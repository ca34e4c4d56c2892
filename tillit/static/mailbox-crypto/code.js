/* The return code (E12.2) and what it derives: locator, mailbox id, wrapping key (E12.3). */

import { AES, CODE_ALIASES, CODE_ALPHABET, CODE_BYTES, CODE_SEPARATORS, CODE_SYMBOLS, LABEL, b64uEncode, randomBytes, subtle, utf8 } from "./encoding.js";
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

export async function hkdfBits(ikm, salt, info) {
  const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: salt, info: utf8.encode(info) };
  return new Uint8Array(await subtle.deriveBits(params, base, 256));
}

export async function aesKey(raw, usages) {
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
