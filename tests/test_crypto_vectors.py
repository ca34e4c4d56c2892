"""The test client's end-to-end encryption against docs/protocol.md section 2 (no server needed).

A second, deliberately naive HKDF (RFC 5869 with `hmac`) checks the `cryptography`-based
one, and fixed key pairs give pinned vectors that the browser's `e2e.js` must reproduce.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_client import (
    ChatCrypto,
    ReplayError,
    associated_data,
    b64u_decode,
    b64u_encode,
    decode_public_key,
    derive_epoch_keys,
    encode_public_key,
    open_envelope,
    safety_code_from,
    seal,
    shared_secret,
)
from support import rfc5869

CHAT_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # 22 base64url characters, as the server makes them


def fixed_keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    visitor = ec.derive_private_key(0x1111_2222_3333_4444, ec.SECP256R1())
    counselor = ec.derive_private_key(0x5555_6666_7777_8888, ec.SECP256R1())
    return visitor, counselor


def paired(chat_id: str = CHAT_ID, epoch: int = 1) -> tuple[ChatCrypto, ChatCrypto]:
    v, c = ChatCrypto("visitor", chat_id), ChatCrypto("counselor", chat_id)
    v.establish(epoch, c.pubkey)
    c.establish(epoch, v.pubkey)
    return v, c


def test_public_key_wire_form_is_65_byte_uncompressed_point_base64url() -> None:
    crypto = ChatCrypto("visitor")
    raw = b64u_decode(crypto.pubkey)
    assert len(raw) == 65 and raw[0] == 0x04
    assert "=" not in crypto.pubkey and "+" not in crypto.pubkey and "/" not in crypto.pubkey
    assert len(crypto.pubkey) == 87
    decode_public_key(crypto.pubkey)  # a valid point


def test_bad_public_keys_are_rejected() -> None:
    crypto = ChatCrypto("visitor")
    raw = b64u_decode(crypto.pubkey)
    with pytest.raises(ValueError):
        decode_public_key(b64u_encode(raw[:33]))  # compressed length
    with pytest.raises(ValueError):
        decode_public_key(b64u_encode(b"\x04" + b"\x01" * 64))  # not on the curve


def test_hkdf_matches_rfc5869_and_the_salt_and_info_strings() -> None:
    v_priv, c_priv = fixed_keys()
    secret = shared_secret(v_priv, encode_public_key(c_priv))
    assert len(secret) == 32
    assert secret == shared_secret(c_priv, encode_public_key(v_priv))
    keys = derive_epoch_keys(secret, CHAT_ID, 3)
    salt = f"tillit-e2e-v1|{CHAT_ID}|3".encode()
    assert keys.v2c == rfc5869(secret, salt, b"v2c", 32)
    assert keys.c2v == rfc5869(secret, salt, b"c2v", 32)
    assert keys.v2c != keys.c2v
    code_int = int.from_bytes(rfc5869(secret, salt, b"code", 4), "big") % 1_000_000
    assert keys.safety_code == f"{code_int:06d}"


def test_pinned_vector() -> None:
    """Fixed scalars → fixed keys and code: the browser's e2e.js must give the same."""
    v_priv, c_priv = fixed_keys()
    secret = shared_secret(v_priv, encode_public_key(c_priv))
    keys = derive_epoch_keys(secret, CHAT_ID, 1)
    assert encode_public_key(v_priv) == PINNED["visitor_pub"]
    assert encode_public_key(c_priv) == PINNED["counselor_pub"]
    assert secret.hex() == PINNED["secret"]
    assert keys.v2c.hex() == PINNED["v2c"]
    assert keys.c2v.hex() == PINNED["c2v"]
    assert keys.safety_code == PINNED["code"]
    # A fixed nonce gives a fixed ciphertext (AES-256-GCM, tag appended).
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    pt = b'{"type":"text","text":"Hej","sent_at":0}'
    ct = AESGCM(keys.v2c).encrypt(bytes(12), pt, associated_data(CHAT_ID, 1, "v2c", 0))
    assert len(ct) == len(pt) + 16
    assert b64u_encode(ct) == PINNED["ct_v2c_seq0_zero_nonce"]


def test_associated_data_format() -> None:
    assert associated_data("abc", 2, "c2v", 7) == b"tillit-e2e-v1|abc|2|c2v|7"


def test_round_trip_both_directions_and_plaintext_format() -> None:
    v, c = paired()
    env = v.seal_text("Hej, jag behöver prata")
    assert set(env) == {"chat_id", "epoch", "seq", "nonce", "ct"}
    assert len(b64u_decode(env["nonce"])) == 12
    body = c.open(env, "visitor")
    assert body["type"] == "text" and body["text"] == "Hej, jag behöver prata"
    assert isinstance(body["sent_at"], int) and body["sent_at"] > 1_600_000_000_000
    reply = c.seal_text("Jag finns här. Berätta.")
    assert v.open(reply, "counselor")["text"] == "Jag finns här. Berätta."
    # Each side can read its own messages too (msg:new comes back to the sender).
    assert v.open(env, "visitor")["text"] == "Hej, jag behöver prata"


def test_seq_counts_from_zero_per_direction_and_epoch_and_nonces_are_fresh() -> None:
    v, c = paired()
    envs = [v.seal_text(f"m{i}") for i in range(3)]
    assert [e["seq"] for e in envs] == [0, 1, 2]
    assert len({e["nonce"] for e in envs}) == 3
    assert c.seal_text("x")["seq"] == 0
    # New epoch: seq restarts at 0.
    c.rekey()
    c.establish(2, v.pubkey)
    v.establish(2, c.pubkey)
    assert v.seal_text("y")["seq"] == 0 and v.seal_text("z")["seq"] == 1


@pytest.mark.parametrize(
    "field,value",
    [("chat_id", "BBBBBBBBBBBBBBBBBBBBBB"), ("epoch", 2), ("seq", 1)],
)
def test_associated_data_binding(field: str, value: object) -> None:
    v, c = paired()
    env = v.seal_text("bunden text")
    assert c.open(env, "visitor")["text"] == "bunden text"
    tampered = {**env, field: value}
    # The right key: only the associated data differs.
    with pytest.raises(InvalidTag):
        open_envelope(c.keys[1].v2c, "v2c", tampered)


def test_direction_binding() -> None:
    v, c = paired()
    env = v.seal_text("åt ena hållet")
    key = c.keys[1].v2c
    with pytest.raises(InvalidTag):
        open_envelope(key, "c2v", env)  # right key, AD with the wrong dir
    with pytest.raises(InvalidTag):
        c.open(env, "counselor")  # wrong key and dir


def test_tampered_ct_or_nonce_fails() -> None:
    v, c = paired()
    env = v.seal_text("orörd")
    ct = bytearray(b64u_decode(env["ct"]))
    ct[0] ^= 1
    with pytest.raises(InvalidTag):
        c.open({**env, "ct": b64u_encode(bytes(ct))}, "visitor")
    with pytest.raises(InvalidTag):
        c.open({**env, "nonce": b64u_encode(bytes(12))}, "visitor")


def test_other_chat_keys_cannot_read() -> None:
    v1, c1 = paired("chat1chat1chat1chat1c1")
    v2, c2 = paired("chat1chat1chat1chat1c1")
    env = v1.seal_text("bara för c1")
    with pytest.raises(InvalidTag):
        c2.open(env, "visitor")


def test_safety_code_six_digits_equal_both_sides_and_changes_with_epoch() -> None:
    v, c = paired()
    assert v.safety_code() == c.safety_code()
    assert len(v.safety_code()) == 6 and v.safety_code().isdigit()
    c.rekey()
    c.establish(2, v.pubkey)
    v.establish(2, c.pubkey)
    assert v.safety_code() == c.safety_code()
    assert v.safety_code(1) == c.safety_code(1)
    # A man in the middle (different counselor key) shows a different code.
    mitm = ChatCrypto("counselor", CHAT_ID)
    mitm.establish(1, v.pubkey)
    assert v.keys[1].v2c != mitm.keys[1].v2c


def test_safety_code_keeps_leading_zeros() -> None:
    # Search a few secrets for a code below 100000 and check it is zero-padded.
    for i in range(2000):
        code = safety_code_from(i.to_bytes(32, "big"), CHAT_ID, 1)
        assert len(code) == 6 and code.isdigit()
        if code.startswith("0"):
            return
    pytest.fail("no code with a leading zero in 2000 tries")  # p ≈ 1e-92


def test_rekey_new_secret_from_new_private_and_current_peer_pub() -> None:
    v, c = paired()
    old_pub = c.pubkey
    new_pub = c.rekey()
    assert new_pub != old_pub
    c.establish(2, v.pubkey)
    v.establish(2, new_pub)
    env = c.seal_text("ny nyckel")
    assert env["epoch"] == 2
    assert v.open(env, "counselor")["text"] == "ny nyckel"
    # Old-epoch envelopes still open with the kept keys (docs/protocol.md E2).
    old = seal(v.keys[1].v2c, CHAT_ID, 1, "v2c", 99, b'{"type":"text","text":"gammal"}')
    assert c.open(old, "visitor")["text"] == "gammal"


def test_replay_is_dropped() -> None:
    v, c = paired()
    env = v.seal_text("en gång")
    assert c.open_once(env, "visitor")["text"] == "en gång"
    with pytest.raises(ReplayError):
        c.open_once(dict(env), "visitor")


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=2000), epoch=st.integers(1, 50))
def test_round_trip_any_text(text: str, epoch: int) -> None:
    v, c = paired(epoch=epoch)
    env = v.seal_text(text)
    assert c.open(env, "visitor")["text"] == text
    assert json.loads(json.dumps(c.open(env, "visitor")))["text"] == text


PINNED = {
    "visitor_pub": "BENIzhV2rUARfGn0kFmU_R-AEgmT6uLb785FkMqBqkCfLqboyWbYh"
    "YsJmQ5IB5lAwI_rqkdCdaUUrDi0B3LrCak",
    "counselor_pub": "BLrzMvW1Lh9mQMSw2PyK_XooctN2qe7m9Mhz2ODzsLVTdIfJG9z3q6P"
    "Oh90Ed66BkE9FoR6n2CJo61KZC9mpg1k",
    "secret": "70757397a840aba11433313dc232daa7130fbc2be36c0b59d6189baab4739b93",
    "v2c": "06aa120db3d1e3455ce6cc7305699957cb2af1e539a7be114d533943267590e0",
    "c2v": "a01e2ddf7339009d876184b03c00f0dd4a7f00c1b90a5bff19ffe50d914fe226",
    "code": "138268",
    "ct_v2c_seq0_zero_nonce": "eFPt4H0Q9uBH3GTHBzwFCMQUuZjoKInL5Ng5xKrfelx98EWtas4_AhW-"
    "pRLXHCAHE60mDF9YX1Y",
}


E2E_JS = Path(__file__).resolve().parent.parent / "tillit" / "static" / "e2e.js"
NODE_SCRIPT = r"""
const fs = require("fs");
const { pathToFileURL } = require("url");
const input = JSON.parse(fs.readFileSync(0, "utf8"));
(async () => {
  const E = await import(pathToFileURL(input.e2e_js).href);
  const priv = await crypto.subtle.importKey(
    "jwk", input.jwk, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const c = new E.ChatCrypto(input.chat_id, "visitor");
  c._private = priv;
  c._pubkey = input.own_pub;
  const code = await c.setEpoch(1, input.peer_pub);
  const fromPython = await c.open(input.c2v_env);
  const ownPinned = await c.openOwn(input.pinned_env);
  const env = await c.seal({ type: "text", text: input.text, sent_at: 1 });
  process.stdout.write(JSON.stringify({ code, fromPython, ownPinned, env }));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


@pytest.mark.skipif(shutil.which("node") is None or not E2E_JS.exists(), reason="needs node")
def test_browser_e2e_js_interoperates_with_this_client() -> None:
    """tillit/static/e2e.js (WebCrypto, run in Node) and this client agree bit for bit."""
    v_priv, c_priv = fixed_keys()
    nums = v_priv.private_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "d": b64u_encode(nums.private_value.to_bytes(32, "big")),
        "x": b64u_encode(nums.public_numbers.x.to_bytes(32, "big")),
        "y": b64u_encode(nums.public_numbers.y.to_bytes(32, "big")),
    }
    secret = shared_secret(c_priv, PINNED["visitor_pub"])
    keys = derive_epoch_keys(secret, CHAT_ID, 1)
    reply = seal(keys.c2v, CHAT_ID, 1, "c2v", 0, b'{"type":"text","text":"Svar \\u00e5t dig"}')
    payload = {
        "e2e_js": str(E2E_JS),
        "jwk": jwk,
        "chat_id": CHAT_ID,
        "own_pub": PINNED["visitor_pub"],
        "peer_pub": PINNED["counselor_pub"],
        "c2v_env": reply,
        "pinned_env": {
            "chat_id": CHAT_ID, "epoch": 1, "seq": 0,
            "nonce": b64u_encode(bytes(12)), "ct": PINNED["ct_v2c_seq0_zero_nonce"],
        },
        "text": "Från webbläsaren: ärligt talat 🙂",
    }
    res = subprocess.run(
        ["node", "-e", NODE_SCRIPT],
        input=json.dumps(payload).encode(), capture_output=True, timeout=30,
    )
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout)
    assert out["code"] == PINNED["code"]
    assert out["fromPython"]["text"] == "Svar åt dig"
    assert out["ownPinned"] == {"type": "text", "text": "Hej", "sent_at": 0}
    env = out["env"]
    assert env["chat_id"] == CHAT_ID and env["epoch"] == 1 and env["seq"] == 0
    assert json.loads(open_envelope(keys.v2c, "v2c", env))["text"] == payload["text"]
