/* Tillit: the chat:start proof-of-work (docs/protocol.md, "Proof of work"). Find the
 * first decimal nonce from 0 up such that SHA-256(UTF-8(challenge ":" nonce)) starts
 * with `bits` zero bits. No third party, nothing shown, nothing stored.
 *
 * Why not only WebCrypto: crypto.subtle.digest costs a round trip to another thread per
 * hash. Batched (many digests per await) it reached ~55 000 hashes/s in Chromium here and
 * ~9 000 at a 6x CPU throttle (a cheap phone); a plain SHA-256 in JS on the page's
 * reused buffers does an order of magnitude more, so the search runs in JS, in slices
 * that give the page back its event loop, and WebCrypto checks the nonce found (a wrong
 * JS result would be searched again with WebCrypto alone). */
(function () {
  "use strict";

  var SLICE = 4096; // hashes between two yields to the event loop
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var H0 = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  ]);
  var W = new Int32Array(64);
  var H = new Int32Array(8);

  /* SHA-256's compression of the 64 bytes at buf[off..] into `state` (8 words). */
  function compress(state, buf, off) {
    var i, t1, t2;
    for (i = 0; i < 16; i++) {
      var p = off + i * 4;
      W[i] = (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
    }
    for (i = 16; i < 64; i++) {
      var w15 = W[i - 15], w2 = W[i - 2];
      var s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      var s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    var a = state[0], b = state[1], c = state[2], d = state[3];
    var e = state[4], f = state[5], g = state[6], h = state[7];
    for (i = 0; i < 64; i++) {
      t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
            ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
            ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    state[0] = (state[0] + a) | 0; state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0; state[3] = (state[3] + d) | 0;
    state[4] = (state[4] + e) | 0; state[5] = (state[5] + f) | 0;
    state[6] = (state[6] + g) | 0; state[7] = (state[7] + h) | 0;
  }

  /* The first 32 bits of SHA-256 of a message whose whole 64-byte blocks are already in
   * `mid` (the midstate) and whose rest is tail[0..tailLen); `total`: its length. */
  function firstWord(mid, tail, tailLen, total) {
    var end = ((tailLen + 9 + 63) >> 6) * 64;
    tail[tailLen] = 0x80;
    for (var z = tailLen + 1; z < end - 4; z++) tail[z] = 0;
    var bitLen = total * 8;
    tail[end - 4] = bitLen >>> 24; tail[end - 3] = bitLen >>> 16;
    tail[end - 2] = bitLen >>> 8; tail[end - 1] = bitLen;
    H.set(mid);
    for (var off = 0; off < end; off += 64) compress(H, tail, off);
    return H[0];
  }

  /* Does the digest start with `bits` zero bits (from the first byte's top bit)? */
  function hasZeroBits(buf, bits) {
    var bytes = new Uint8Array(buf);
    var full = bits >> 3;
    for (var i = 0; i < full; i++) if (bytes[i] !== 0) return false;
    var rest = bits & 7;
    return rest === 0 || (bytes[full] >> (8 - rest)) === 0;
  }

  /* Give the page its event loop back for a moment (a message, not setTimeout, which
   * browsers clamp to 4 ms when nested). */
  var channel = new MessageChannel();
  var resumes = [];
  channel.port1.onmessage = function () { var r = resumes.shift(); if (r) r(); };
  function yieldLoop() {
    return new Promise(function (resolve) { resumes.push(resolve); channel.port2.postMessage(0); });
  }

  /* The same search with WebCrypto only, a batch of digests per await. */
  async function solveWithWebCrypto(prefix, bits, shouldStop) {
    var enc = new TextEncoder();
    for (var base = 0; ; base += 256) {
      if (shouldStop && shouldStop()) throw new Error("stopped");
      var round = [];
      for (var i = 0; i < 256; i++) round.push(crypto.subtle.digest("SHA-256", enc.encode(prefix + (base + i))));
      var digests = await Promise.all(round);
      for (var k = 0; k < 256; k++) if (hasZeroBits(digests[k], bits)) return String(base + k);
    }
  }

  /* Resolves to the nonce (a decimal string) that solves `challenge`; rejects if
   * `shouldStop()` turns true between slices. */
  async function solve(challenge, bits, shouldStop) {
    if (!window.crypto || !window.crypto.subtle) throw new Error("no WebCrypto");
    var prefix = challenge + ":";
    var head = new TextEncoder().encode(prefix);
    // The challenge ":" of this server is exactly one block: hashed once, then one
    // block per nonce (any length works, only slower).
    var whole = head.length - (head.length % 64);
    var mid = new Int32Array(H0);
    for (var off = 0; off < whole; off += 64) compress(mid, head, off);
    var tail = new Uint8Array(64 + 16 + 72);
    tail.set(head.subarray(whole));
    var start = head.length - whole;
    var shift = 32 - bits;
    var nonce = 0;
    for (;;) {
      if (shouldStop && shouldStop()) throw new Error("stopped");
      for (var n = 0; n < SLICE; n++, nonce++) {
        var digits = String(nonce);
        for (var j = 0; j < digits.length; j++) tail[start + j] = digits.charCodeAt(j);
        var word = firstWord(mid, tail, start + digits.length, head.length + digits.length);
        if (bits <= 0 || (word >>> shift) === 0) {
          var check = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(prefix + digits));
          if (hasZeroBits(check, bits)) return digits;
          return solveWithWebCrypto(prefix, bits, shouldStop);
        }
      }
      await yieldLoop();
    }
  }

  window.TillitPow = { solve: solve, hasZeroBits: hasZeroBits };
})();
