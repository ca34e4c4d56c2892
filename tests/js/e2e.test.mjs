// tillit/static/e2e.js in Node's WebCrypto, against the vectors pinned on the Python side
// (tests/test_crypto_vectors.py: fixed scalars, their keys, code and one ciphertext).
import { test } from "node:test";
import assert from "node:assert/strict";
import { b64u, ChatCrypto } from "../../tillit/static/e2e.js";

const CHAT_ID = "AAAAAAAAAAAAAAAAAAAAAA";
const PINNED = {
  visitorPub: "BENIzhV2rUARfGn0kFmU_R-AEgmT6uLb785FkMqBqkCfLqboyWbYhYsJmQ5IB5lAwI_rqkdCdaUUrDi0B3LrCak",
  counselorPub: "BLrzMvW1Lh9mQMSw2PyK_XooctN2qe7m9Mhz2ODzsLVTdIfJG9z3q6POh90Ed66BkE9FoR6n2CJo61KZC9mpg1k",
  code: "138268",
  ctV2cSeq0ZeroNonce: "eFPt4H0Q9uBH3GTHBzwFCMQUuZjoKInL5Ng5xKrfelx98EWtas4_AhW-pRLXHCAHE60mDF9YX1Y",
};
const SCALARS = { visitor: 0x1111222233334444n, counselor: 0x5555666677778888n };

/* A side with the fixed private key of the Python vectors, as JWK (d, and x, y from the
 * pinned public point). */
async function fixedSide(side) {
  const pub = side === "visitor" ? PINNED.visitorPub : PINNED.counselorPub;
  const raw = b64u.decode(pub);
  const d = new Uint8Array(32);
  let n = SCALARS[side];
  for (let i = 31; i >= 0; i--) { d[i] = Number(n & 0xffn); n >>= 8n; }
  const jwk = { kty: "EC", crv: "P-256", d: b64u.encode(d),
    x: b64u.encode(raw.subarray(1, 33)), y: b64u.encode(raw.subarray(33, 65)) };
  const c = new ChatCrypto(CHAT_ID, side);
  c._private = await crypto.subtle.importKey("jwk", jwk, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  c._pubkey = pub;
  await c.setEpoch(1, side === "visitor" ? PINNED.counselorPub : PINNED.visitorPub);
  return c;
}

const pinnedEnvelope = () => ({ chat_id: CHAT_ID, epoch: 1, seq: 0,
  nonce: b64u.encode(new Uint8Array(12)), ct: PINNED.ctV2cSeq0ZeroNonce });

test("both sides derive the pinned safety code", async () => {
  assert.equal((await fixedSide("visitor")).code, PINNED.code);
  assert.equal((await fixedSide("counselor")).code, PINNED.code);
});

test("the pinned ciphertext decrypts to the known message on both sides", async () => {
  const expected = { type: "text", text: "Hej", sent_at: 0 };
  assert.deepEqual(await (await fixedSide("counselor")).open(pinnedEnvelope()), expected);
  assert.deepEqual(await (await fixedSide("visitor")).openOwn(pinnedEnvelope()), expected);
});

test("a changed ciphertext, a wrong chat or the wrong direction is refused", async () => {
  const counselor = await fixedSide("counselor");
  const env = pinnedEnvelope();
  const ct = b64u.decode(env.ct);
  ct[0] ^= 1;
  await assert.rejects(counselor.open({ ...env, ct: b64u.encode(ct) }));
  await assert.rejects(counselor.open({ ...env, chat_id: "BBBBBBBBBBBBBBBBBBBBBB" }), /wrong chat/);
  await assert.rejects(counselor.openOwn(env)); // sealed v2c, opened as c2v
  await assert.rejects(counselor.open({ ...env, epoch: 2 }), /unknown epoch/);
});

test("fresh key pairs on both sides agree, and seq counts per epoch", async () => {
  const v = new ChatCrypto(null, "visitor");
  const c = new ChatCrypto(CHAT_ID, "counselor");
  const vPub = await v.newKeyPair();
  const cPub = await c.newKeyPair();
  v.setChatId(CHAT_ID);
  assert.equal(await v.setEpoch(1, cPub), await c.setEpoch(1, vPub));
  const first = await v.seal({ type: "text", text: "Hej, jag behöver prata 🙂" });
  const second = await v.seal({ type: "text", text: "två" });
  assert.deepEqual([first.seq, second.seq], [0, 1]);
  assert.equal((await c.open(first)).text, "Hej, jag behöver prata 🙂");
  const reply = await c.seal({ type: "text", text: "Jag finns här." });
  assert.equal((await v.open(reply)).text, "Jag finns här.");
  v.forget();
  await assert.rejects(v.open(reply), /unknown epoch/);
});

test("base64url refuses what is not base64url", () => {
  assert.deepEqual(Array.from(b64u.decode(b64u.encode(new Uint8Array([251, 255, 0])))), [251, 255, 0]);
  assert.throws(() => b64u.decode("a+b/"), TypeError);
  assert.throws(() => b64u.decode("abcde"), TypeError);
});
