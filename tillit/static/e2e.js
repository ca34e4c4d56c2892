/* Tillit end-to-end encryption (docs/protocol.md section 2), shared by the visitor page
 * and the counselor console. WebCrypto only; every key lives in memory and is
 * non-extractable except the public point. An ES module: runs in the browser and in
 * Node (tests/js/e2e.test.mjs), which both have globalThis.crypto.subtle. */
const root = globalThis;

var subtle = root.crypto.subtle;
var utf8 = new TextEncoder();
var utf8dec = new TextDecoder("utf-8", { fatal: true });
var LABEL = "tillit-e2e-v1";
var CURVE = { name: "ECDH", namedCurve: "P-256" };
var B64U = /^[A-Za-z0-9_-]*$/;

var b64u = {
  encode: function (bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return root.btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode: function (text) {
    if (typeof text !== "string" || !B64U.test(text) || text.length % 4 === 1) {
      throw new TypeError("invalid base64url");
    }
    var s = root.atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
};

function isCount(n, min) {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= min;
}

function hkdfParams(salt, info) {
  return { name: "HKDF", hash: "SHA-256", salt: utf8.encode(salt), info: utf8.encode(info) };
}

/* ECDH + HKDF for one epoch: both direction keys and the safety code. */
async function deriveEpoch(chatId, epoch, ownPrivate, peerPubkey) {
  var raw = b64u.decode(peerPubkey);
  if (raw.length !== 65 || raw[0] !== 4) throw new TypeError("invalid public key");
  var peer = await subtle.importKey("raw", raw, CURVE, false, []);
  var secret = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: peer }, ownPrivate, 256));
  var ikm = await subtle.importKey("raw", secret, "HKDF", false, ["deriveBits", "deriveKey"]);
  secret.fill(0);
  var salt = LABEL + "|" + chatId + "|" + epoch;
  var aes = { name: "AES-GCM", length: 256 };
  var use = ["encrypt", "decrypt"];
  var v2c = await subtle.deriveKey(hkdfParams(salt, "v2c"), ikm, aes, false, use);
  var c2v = await subtle.deriveKey(hkdfParams(salt, "c2v"), ikm, aes, false, use);
  var bits = new DataView(await subtle.deriveBits(hkdfParams(salt, "code"), ikm, 32));
  var code = String(bits.getUint32(0, false) % 1000000).padStart(6, "0");
  return { v2c: v2c, c2v: c2v, code: code };
}

class ChatCrypto {
  constructor(chatId, side) {
    if (side !== "visitor" && side !== "counselor") throw new TypeError("side must be visitor or counselor");
    this._side = side;
    this._dir = side === "visitor" ? "v2c" : "c2v";
    this._peerDir = side === "visitor" ? "c2v" : "v2c";
    this._generation = 0;
    this.forget();
    this._chatId = chatId == null ? null : String(chatId);
  }

  get side() { return this._side; }
  get chatId() { return this._chatId; }
  get epoch() { return this._epoch; }
  get code() { return this._code; }
  get publicKey() { return this._pubkey; }
  get peerPublicKey() { return this._peerPubkey; }

  /* For the visitor, whose chat_id is known only after chat:start. */
  setChatId(chatId) {
    if (this._chatId !== null && this._chatId !== String(chatId) && this._epochs.size) {
      throw new Error("chat id already in use");
    }
    this._chatId = String(chatId);
  }

  async newKeyPair() {
    const pair = await subtle.generateKey(CURVE, false, ["deriveBits"]);
    const pub = b64u.encode(new Uint8Array(await subtle.exportKey("raw", pair.publicKey)));
    this._private = pair.privateKey;
    this._pubkey = pub;
    return pub;
  }

  /* Derives the keys of `epoch` from our current private key and the peer's current
   * public key, keeps them with the earlier epochs, and makes `epoch` current.
   * Own seq for a new epoch starts at 0; for an epoch already derived the counter is
   * kept, since an (epoch, dir, seq) is never reused (protocol section 2). */
  async setEpoch(epoch, peerPubkey) {
    if (!isCount(epoch, 1)) throw new TypeError("invalid epoch");
    if (this._chatId === null) throw new Error("chat id not set");
    if (!this._private) throw new Error("no key pair");
    if (peerPubkey != null) this._peerPubkey = peerPubkey;
    if (!this._peerPubkey) throw new Error("no peer public key");
    const generation = this._generation;
    const pending = deriveEpoch(this._chatId, epoch, this._private, this._peerPubkey);
    this._epochs.set(epoch, pending);
    pending.catch(() => {
      if (this._epochs.get(epoch) === pending) this._epochs.delete(epoch);
    });
    const keys = await pending;
    if (generation !== this._generation) throw new Error("keys were forgotten");
    if (!this._seq.has(epoch)) this._seq.set(epoch, 0);
    this._epoch = epoch;
    this._code = keys.code;
    return keys.code;
  }

  /* The safety code of any epoch still held. */
  async codeFor(epoch) {
    return (await this._keys(epoch)).code;
  }

  _keys(epoch) {
    const pending = this._epochs.get(epoch);
    if (!pending) return Promise.reject(new Error("unknown epoch"));
    return pending;
  }

  _ad(epoch, dir, seq) {
    return utf8.encode(LABEL + "|" + this._chatId + "|" + epoch + "|" + dir + "|" + seq);
  }

  async seal(message) {
    const epoch = this._epoch;
    if (!epoch) throw new Error("no epoch yet");
    const keys = await this._keys(epoch);
    const seq = this._seq.get(epoch);
    this._seq.set(epoch, seq + 1);
    const nonce = root.crypto.getRandomValues(new Uint8Array(12));
    const ct = await subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: this._ad(epoch, this._dir, seq), tagLength: 128 },
      keys[this._dir],
      utf8.encode(JSON.stringify(message))
    );
    return {
      chat_id: this._chatId, epoch: epoch, seq: seq,
      nonce: b64u.encode(nonce), ct: b64u.encode(new Uint8Array(ct))
    };
  }

  async _open(env, dir) {
    if (!env || typeof env !== "object") throw new TypeError("invalid envelope");
    if (env.chat_id !== this._chatId) throw new Error("wrong chat");
    if (!isCount(env.epoch, 1) || !isCount(env.seq, 0)) throw new TypeError("invalid envelope");
    const nonce = b64u.decode(env.nonce);
    const ct = b64u.decode(env.ct);
    if (nonce.length !== 12 || ct.length < 16) throw new TypeError("invalid envelope");
    const keys = await this._keys(env.epoch);
    const plain = await subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: this._ad(env.epoch, dir, env.seq), tagLength: 128 },
      keys[dir],
      ct
    );
    const obj = JSON.parse(utf8dec.decode(plain));
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) throw new TypeError("not a message object");
    return obj;
  }

  /* An envelope of the other direction. */
  open(envelope) { return this._open(envelope, this._peerDir); }

  /* An envelope of our own direction (the server's echo, a resumed list). */
  openOwn(envelope) { return this._open(envelope, this._dir); }

  /* Drops every key, pair and counter (quick exit, end of chat). */
  forget() {
    this._generation += 1;
    this._private = null;
    this._pubkey = null;
    this._peerPubkey = null;
    this._epochs = new Map();
    this._seq = new Map();
    this._epoch = 0;
    this._code = null;
  }
}

export { b64u, ChatCrypto, deriveEpoch };
