/* Tillit mailboxes and return codes: the cryptography of docs/protocol.md E12.
 *
 * An ES module, WebCrypto only, no dependency (it imports nothing, not even e2e.js), so
 * that the visitor page, the counselor console and Node's test runner load the same file.
 * Every private key it hands out is non-extractable; raw secrets (the code's bytes, the
 * PKCS#8 of a key being wrapped, content keys) are zeroed as soon as they are used.
 * Nothing is stored: the callers keep keys in memory and drop them on the quick exit.
 *
 * The code lives in mailbox-crypto/ (encoding, code, keys, messages); this module is
 * the one entry both pages and the tests import.
 */

export {
  CODE_ALPHABET,
  CODE_BYTES,
  CODE_SYMBOLS,
  KINDS,
  LABEL,
  MAX_CT_BYTES,
  MAX_RECIPIENTS,
  MAX_TEXT_CHARS,
  PAD_BLOCK,
  PBKDF2_ITERATIONS,
  PBKDF2_MAX_ITERATIONS,
  VERSION,
  b64uDecode,
  b64uEncode
} from "./mailbox-crypto/encoding.js";

export {
  CodeFormatError,
  deriveMailbox,
  formatCode,
  generateCode,
  mailboxIdOf,
  parseCode
} from "./mailbox-crypto/code.js";

export {
  createMailboxKeys,
  createPasswordKeys,
  importPublicKey,
  keyId,
  rewrapWithPassword,
  unwrapMailboxKey,
  unwrapWithPassword,
  wrapMailboxPkcs8,
  wrapPkcs8
} from "./mailbox-crypto/keys.js";

export {
  NotARecipientError,
  checkEnvelope,
  checkRecipients,
  encodeBody,
  importPrivateJwk,
  openMessage,
  openMessageBytes,
  rewrapFor,
  sealMessage,
  unseen,
  unwrapContentKey,
  wrapContentKey
} from "./mailbox-crypto/messages.js";
