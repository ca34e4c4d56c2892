/* Constants and byte encodings of docs/protocol.md E12.1 (base64url, random bytes). */
export const subtle = globalThis.crypto.subtle;
export const utf8 = new TextEncoder();
export const utf8dec = new TextDecoder("utf-8", { fatal: true });

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

export const CURVE = { name: "ECDH", namedCurve: "P-256" };
export const AES = { name: "AES-GCM", length: 256 };
export const B64U_RE = /^[A-Za-z0-9_-]*$/;
export const B64U_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// Dropped from a typed code: spaces, tabs, line breaks, no-break space, hyphens and dashes.
export const CODE_SEPARATORS = new Set([
  " ", "\t", "\r", "\n", "\u00a0", "-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014",
  "\u2015", "\u2212"
]);
export const CODE_ALIASES = { I: "1", L: "1", O: "0" };

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

export function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}
