"""Mailbox cryptography (docs/protocol.md E12): the independent Python client against the
test vectors, and against the browser's tillit/static/mailbox-crypto.js run under Node.

A second, deliberately naive HKDF and PBKDF2 (RFC 5869 and RFC 8018 with `hmac`) check
the `cryptography`-based client; the vectors are pinned in tests/mailbox_vectors.json
and printed in docs/protocol.md, so all three agree bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from mailbox_client import (
    CODE_ALPHABET,
    CodeFormatError,
    NotARecipient,
    b64u_decode,
    b64u_encode,
    check_recipients,
    derive,
    encode_public_key,
    format_code,
    generate_code,
    generate_key_pair,
    key_id,
    make_body,
    open_message,
    open_message_bytes,
    parse_code,
    pkcs8_of,
    rewrap_for,
    rewrap_with_password,
    seal_message,
    unwrap_mailbox_key,
    unwrap_with_password,
    wrap_mailbox_key,
    wrap_with_password,
)
from support import rfc5869

ROOT = Path(__file__).resolve().parent.parent
V: dict[str, Any] = json.loads((ROOT / "tests" / "mailbox_vectors.json").read_text("utf-8"))
IN: dict[str, Any] = V["inputs"]
MODULE = ROOT / "tillit" / "static" / "mailbox-crypto.js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="needs node")


def fixed(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(IN["private_scalars_hex"][name], 16), ec.SECP256R1())


# --------------------------------------------------------------------------- the code


def test_code_is_80_bits_in_four_groups_of_crockford_symbols() -> None:
    values = {generate_code() for _ in range(50)}
    assert len(values) == 50 and all(len(v) == 10 for v in values)
    text = format_code(next(iter(values)))
    groups = text.split("-")
    assert len(groups) == 4 and all(len(g) == 4 for g in groups)
    assert set(text.replace("-", "")) <= set(CODE_ALPHABET)
    assert not set("ILOU") & set(CODE_ALPHABET)
    assert format_code(bytes.fromhex(IN["code_hex"])) == V["code"]
    # 5 bits a symbol, most significant first: 0x08 0x42 ... reads 1,1,1,...
    assert format_code(bytes.fromhex("0842108421084210842" + "1")) == "1111-1111-1111-1111"


@pytest.mark.parametrize(
    "typed",
    [
        "M6SC-7N75-YR3H-GA9T",
        "m6sc-7n75-yr3h-ga9t",
        "M6SC 7N75 YR3H GA9T",
        "  M6SC7N75YR3HGA9T\n",
        "M6SC\u20137N75\u2013YR3H\u2013GA9T",
        "m6sc-7n75\u00a0yr3h-ga9t",
    ],
)
def test_typed_codes_normalise_to_the_same_value(typed: str) -> None:
    assert parse_code(typed) == bytes.fromhex(IN["code_hex"])


def test_look_alikes_read_as_digits() -> None:
    assert parse_code("OOOO-oooo-IIII-llll") == parse_code("0000-0000-1111-1111")


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "M6SC-7N75-YR3H-GA9",  # 15 symbols
        "M6SC-7N75-YR3H-GA9TT",  # 17
        "U6SC-7N75-YR3H-GA9T",  # U is not a symbol
        "M6SC_7N75-YR3H-GA9T",
        "M6SC-7N75-YR3H-GA9\u0422",  # Cyrillic Te
        "M6SC-7N75-YR3H-GA9\u0131",  # dotless i is not I
        "M6SC.7N75.YR3H.GA9T",
    ],
)
def test_anything_else_is_not_a_code(typed: str) -> None:
    with pytest.raises(CodeFormatError):
        parse_code(typed)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=10, max_size=10))
def test_format_and_parse_are_inverse(value: bytes) -> None:
    assert parse_code(format_code(value)) == value
    assert parse_code(format_code(value).lower().replace("-", "")) == value


# --------------------------------------------------------------------------- derivation


def test_derivation_vector_and_rfc5869() -> None:
    code = bytes.fromhex(IN["code_hex"])
    s = derive(code)
    assert s.locator == rfc5869(code, b"tillit-mailbox-v1", b"locator")
    assert s.wrap_key == rfc5869(code, b"tillit-mailbox-v1", b"key-wrap")
    assert s.locator_b64 == V["locator"] and len(V["locator"]) == 43
    assert s.wrap_key.hex() == V["wrap_key_hex"]
    assert s.mailbox_id == b64u_encode(hashlib.sha256(s.locator).digest()) == V["mailbox_id"]
    assert s.locator != s.wrap_key
    assert derive(parse_code(V["code"].lower())) == s


def test_one_symbol_off_gives_an_unrelated_mailbox() -> None:
    a = derive(parse_code("M6SC-7N75-YR3H-GA9T"))
    b = derive(parse_code("M6SC-7N75-YR3H-GA9V"))
    assert a.mailbox_id != b.mailbox_id and a.wrap_key != b.wrap_key


# --------------------------------------------------------------------------- keys


def test_wrapped_mailbox_key_vector() -> None:
    s = derive(bytes.fromhex(IN["code_hex"]))
    key = fixed("mailbox")
    assert encode_public_key(key) == V["public_keys"]["mailbox"]
    assert key_id(V["public_keys"]["mailbox"]) == V["kids"]["mailbox"]
    assert pkcs8_of(key).hex() == V["mailbox_pkcs8_hex"]
    iv = bytes.fromhex(IN["mailbox_key_iv_hex"])
    assert wrap_mailbox_key(key, s, iv=iv) == V["wrapped_mailbox_key"]
    back = unwrap_mailbox_key(V["wrapped_mailbox_key"], s, V["public_keys"]["mailbox"])
    assert encode_public_key(back) == V["public_keys"]["mailbox"]


def test_wrong_code_cannot_unwrap_the_mailbox_key() -> None:
    wrong = derive(parse_code("M6SC-7N75-YR3H-GA9V"))
    with pytest.raises(InvalidTag):
        unwrap_mailbox_key(V["wrapped_mailbox_key"], wrong, V["public_keys"]["mailbox"])


def test_password_records_vectors_and_pbkdf2() -> None:
    rec = V["counselor_record"]
    assert rec["iterations"] == 600_000 and len(b64u_decode(rec["salt"])) == 16
    again = wrap_with_password(
        fixed("counselor"), IN["counselor_password"],
        salt=bytes.fromhex(IN["counselor_salt_hex"]), iv=bytes.fromhex(IN["counselor_iv_hex"]),
    )
    assert again == rec
    key = unwrap_with_password(rec, IN["counselor_password"])
    assert encode_public_key(key) == V["public_keys"]["counselor"]
    team = unwrap_with_password(V["team_record"], IN["team_passphrase"], "team-key")
    assert encode_public_key(team) == V["public_keys"]["team"]
    # The PBKDF2 of the spec, by the standard library: the record opens with it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    k = hashlib.pbkdf2_hmac(
        "sha256", IN["counselor_password"].encode(), bytes.fromhex(IN["counselor_salt_hex"]),
        600_000, 32,
    )
    ad = f"tillit-mailbox-v1|counselor-key|{rec['kid']}".encode()
    assert AESGCM(k).decrypt(b64u_decode(rec["iv"]), b64u_decode(rec["ct"]), ad) == pkcs8_of(
        fixed("counselor")
    )


def test_password_records_refuse_wrong_password_type_and_weak_iterations() -> None:
    rec = V["counselor_record"]
    with pytest.raises(InvalidTag):
        unwrap_with_password(rec, "fel lösenord")
    with pytest.raises(ValueError):
        unwrap_with_password(rec, IN["counselor_password"], "team-key")
    with pytest.raises(ValueError):
        unwrap_with_password({**rec, "iterations": 100_000}, IN["counselor_password"])
    with pytest.raises(ValueError):
        unwrap_with_password({**rec, "kid": V["kids"]["team"]}, IN["counselor_password"])


def test_rewrap_on_password_change_keeps_the_key_pair() -> None:
    rec = V["counselor_record"]
    new = rewrap_with_password(rec, IN["counselor_password"], "ett nytt lösenord")
    assert new["pubkey"] == rec["pubkey"] and new["kid"] == rec["kid"]
    assert new["salt"] != rec["salt"] and new["iv"] != rec["iv"]
    assert encode_public_key(unwrap_with_password(new, "ett nytt lösenord")) == rec["pubkey"]
    with pytest.raises(InvalidTag):
        unwrap_with_password(new, IN["counselor_password"])
    with pytest.raises(InvalidTag):
        rewrap_with_password(rec, "inte det gamla", "något")


# --------------------------------------------------------------------------- messages


def vector_seal() -> dict[str, Any]:
    order = IN["recipients_in_order"]
    return seal_message(
        V["mailbox_id"], IN["direction"], IN["body_utf8"].encode(),
        [V["public_keys"][n] for n in order],
        message_id=bytes.fromhex(IN["message_id_hex"]),
        content_key=bytes.fromhex(IN["content_key_hex"]),
        iv=bytes.fromhex(IN["body_iv_hex"]),
        ephemerals=[fixed("ephemeral_" + n) for n in order],
        wrap_ivs=[bytes.fromhex(h) for h in IN["wrap_iv_hex"]],
    )


def test_message_vector_is_reproduced_and_every_recipient_opens_it() -> None:
    assert vector_seal() == V["message"]
    for name in ("counselor", "team", "mailbox"):
        assert open_message_bytes(V["message"], V["mailbox_id"], fixed(name)) == IN[
            "body_utf8"
        ].encode()
    body = open_message(V["message"], V["mailbox_id"], fixed("mailbox"))
    assert body == {"kind": "text", "text": "Hej! Kan vi höras på torsdag? 🙂", "sent": 1767225600}


def test_entry_key_is_hkdf_of_the_ecdh_secret_over_both_points() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    entry = V["message"]["keys"][0]
    eph, counselor = fixed("ephemeral_counselor"), fixed("counselor")
    shared = eph.exchange(ec.ECDH(), counselor.public_key())
    salt = b64u_decode(entry["epk"]) + b64u_decode(V["public_keys"]["counselor"])
    k = rfc5869(shared, salt, b"tillit-mailbox-v1|wrap")
    ad = f"tillit-mailbox-v1|wrap|{V['mailbox_id']}|{V['message']['id']}|{entry['kid']}"
    ck = AESGCM(k).decrypt(b64u_decode(entry["iv"]), b64u_decode(entry["wk"]), ad.encode())
    assert ck.hex() == IN["content_key_hex"]
    body_ad = f"tillit-mailbox-v1|body|{V['mailbox_id']}|v2c|{V['message']['id']}".encode()
    msg = V["message"]
    pt = AESGCM(ck).decrypt(b64u_decode(msg["iv"]), b64u_decode(msg["ct"]), body_ad)
    assert pt.decode() == IN["body_utf8"]


def flip(text: str) -> str:
    raw = bytearray(b64u_decode(text))
    raw[0] ^= 1
    return b64u_encode(bytes(raw))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: {**m, "ct": flip(m["ct"])},
        lambda m: {**m, "iv": flip(m["iv"])},
        lambda m: {**m, "dir": "c2v"},
        lambda m: {**m, "id": b64u_encode(bytes(16))},
        lambda m: {**m, "keys": [{**m["keys"][0], "wk": flip(m["keys"][0]["wk"])}]},
        lambda m: {**m, "keys": [{**m["keys"][0], "epk": m["keys"][1]["epk"]}]},
    ],
)
def test_tampered_messages_fail(change: Any) -> None:
    with pytest.raises((InvalidTag, ValueError)):
        open_message(change(V["message"]), V["mailbox_id"], fixed("counselor"))


def test_a_message_moved_to_another_mailbox_fails() -> None:
    with pytest.raises(InvalidTag):
        open_message(V["message"], derive(generate_code()).mailbox_id, fixed("counselor"))


def test_a_non_recipient_cannot_open() -> None:
    stranger = generate_key_pair()
    with pytest.raises(NotARecipient):
        open_message(V["message"], V["mailbox_id"], stranger)
    kid = key_id(encode_public_key(stranger))
    relabelled = {**V["message"], "keys": [{**V["message"]["keys"][0], "kid": kid}]}
    with pytest.raises(InvalidTag):
        open_message(relabelled, V["mailbox_id"], stranger)


def test_transfer_rewrap_lets_the_colleague_read() -> None:
    colleague = generate_key_pair()
    moved = rewrap_for(V["message"], V["mailbox_id"], fixed("team"), encode_public_key(colleague))
    assert moved["id"] == V["message"]["id"]
    env = {**V["message"], "keys": [*V["message"]["keys"], moved["entry"]]}
    assert open_message(env, V["mailbox_id"], colleague)["text"].startswith("Hej!")


def test_seal_limits() -> None:
    pubs = [V["public_keys"]["counselor"]]
    with pytest.raises(ValueError):
        seal_message(V["mailbox_id"], "v2c", b"{}", pubs * 2)
    with pytest.raises(ValueError):
        seal_message(V["mailbox_id"], "v2c", b"{}", [])
    with pytest.raises(ValueError):
        seal_message(V["mailbox_id"], "v2c", b"x" * 16_369, pubs)


# --------------------------------------------------------------------------- the docs


def test_protocol_section_prints_the_vectors() -> None:
    """docs/protocol.md E12 shows the same vectors the implementations are tested on."""
    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    section = doc[doc.index("## E12."):]
    for value in (
        V["code"], IN["code_hex"], V["locator"], V["mailbox_id"], V["wrap_key_hex"],
        V["public_keys"]["mailbox"], V["wrapped_mailbox_key"]["ct"], V["message"]["ct"],
        V["message"]["keys"][0]["wk"], V["counselor_record"]["ct"],
    ):
        assert value in section, value


# --------------------------------------------------------------------------- the browser


NODE_SCRIPT = r"""
import { readFileSync } from "node:fs";
const M = await import(process.argv[1]);
const input = JSON.parse(readFileSync(0, "utf8"));
const hex = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
const out = {};
// Python's sealed message, opened by the browser with each recipient's key.
out.opened = [];
for (const jwk of input.jwks) {
  const own = await M.importPrivateJwk(jwk);
  out.opened.push(await M.openMessage(input.from_python, input.mailbox_id, own));
}
// Python's records and wrapped mailbox key, opened by the browser.
out.counselor_pub = (await M.unwrapWithPassword(input.record, input.password)).pubkey;
const box = await M.deriveMailbox(M.parseCode(input.code));
out.mailbox_id = box.mailboxId;
out.locator = box.locator;
await M.unwrapMailboxKey(input.wrapped, box, input.mailbox_pub);
// The browser makes a mailbox, a counselor record and a message for Python's keys.
const code = M.generateCode();
const mine = await M.deriveMailbox(code);
const keys = await M.createMailboxKeys(mine);
out.new_code = M.formatCode(code);
out.new_mailbox = { mailbox_id: mine.mailboxId, pubkey: keys.pubkey, wrapped: keys.wrappedKey };
const made = await M.createPasswordKeys(input.password, "team-key");
out.new_record = made.record;
out.from_js = await M.sealMessage(input.mailbox_id, "c2v",
  { kind: "time_proposal", text: input.text, sent: 1767225600, at: 1767290400, minutes: 45 },
  [...input.recipients, keys.pubkey]);
out.from_js_own = await M.openMessage(out.from_js, input.mailbox_id,
  { privateKey: keys.privateKey, pubkey: keys.pubkey });
process.stdout.write(JSON.stringify(out));
"""


def jwk_of(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = key.private_numbers()
    return {
        "kty": "EC", "crv": "P-256",
        "d": b64u_encode(n.private_value.to_bytes(32, "big")),
        "x": b64u_encode(n.public_numbers.x.to_bytes(32, "big")),
        "y": b64u_encode(n.public_numbers.y.to_bytes(32, "big")),
    }


@needs_node
def test_browser_and_python_open_each_others_messages_keys_and_records() -> None:
    """Python seals → the browser opens; the browser seals, wraps and derives → Python opens."""
    code = generate_code()
    s = derive(code)
    mailbox, counselor, team = generate_key_pair(), generate_key_pair(), generate_key_pair()
    password = "Lösenord med å, ä, ö och 🙂"
    body = make_body("Från Python: jag läste ditt brev 🌱", sent=1767225600)
    from_python = seal_message(
        s.mailbox_id, "c2v", body,
        [encode_public_key(k) for k in (mailbox, counselor, team)],
    )
    payload = {
        "code": format_code(code).lower().replace("-", " "),
        "mailbox_id": s.mailbox_id,
        "mailbox_pub": encode_public_key(mailbox),
        "wrapped": wrap_mailbox_key(mailbox, s),
        "jwks": [jwk_of(k) for k in (mailbox, counselor, team)],
        "from_python": from_python,
        "record": wrap_with_password(counselor, password),
        "password": password,
        "recipients": [encode_public_key(counselor), encode_public_key(team)],
        "text": "Från webbläsaren: torsdag klockan 18? 🙂",
    }
    res = subprocess.run(
        [NODE, "--input-type=module", "-e", NODE_SCRIPT, MODULE.as_uri()],
        input=json.dumps(payload).encode(), capture_output=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout)
    assert [o["text"] for o in out["opened"]] == ["Från Python: jag läste ditt brev 🌱"] * 3
    assert out["counselor_pub"] == encode_public_key(counselor)
    assert out["mailbox_id"] == s.mailbox_id and out["locator"] == s.locator_b64
    # The browser's new mailbox: its code derives the same ids here, its key unwraps.
    theirs = derive(parse_code(out["new_code"]))
    assert theirs.mailbox_id == out["new_mailbox"]["mailbox_id"]
    key = unwrap_mailbox_key(out["new_mailbox"]["wrapped"], theirs, out["new_mailbox"]["pubkey"])
    assert encode_public_key(key) == out["new_mailbox"]["pubkey"]
    team_key = unwrap_with_password(out["new_record"], password, "team-key")
    assert out["new_record"]["iterations"] == 600_000
    # The browser's message opens for every recipient here, including its own mailbox key.
    env = out["from_js"]
    assert set(env) == {"v", "id", "dir", "iv", "ct", "keys"} and len(env["keys"]) == 3
    for k in (counselor, team, key):
        body_back = open_message(env, s.mailbox_id, k)
        assert body_back == {
            "kind": "time_proposal", "text": payload["text"], "sent": 1767225600,
            "at": 1767290400, "minutes": 45,
        }
    assert out["from_js_own"]["text"] == payload["text"]
    with pytest.raises(NotARecipient):
        open_message(env, s.mailbox_id, team_key)
    with pytest.raises(NotARecipient):
        open_message(env, s.mailbox_id, mailbox)


def test_padded_bodies_fill_whole_blocks_and_the_padding_is_dropped_on_opening() -> None:
    pubs = [V["public_keys"]["counselor"]]
    for text in ("", "hej", "x" * 300, "ö" * 1000, "\u0986" * 4000):
        env = seal_message(V["mailbox_id"], "v2c", make_body(text, sent=1, pad=True), pubs)
        size = len(b64u_decode(env["ct"])) - 16
        assert size % 256 == 0 or size == 16_368
        body = open_message(env, V["mailbox_id"], fixed("counselor"))
        assert body == {"kind": "text", "text": text, "sent": 1}


def test_time_proposal_bodies_are_checked() -> None:
    pubs = [V["public_keys"]["counselor"]]
    good = make_body("", "time_proposal", sent=1, at=1767290400, minutes=30)
    env = seal_message(V["mailbox_id"], "c2v", good, pubs)
    assert open_message(env, V["mailbox_id"], fixed("counselor"))["minutes"] == 30
    for bad in (
        make_body("", "time_proposal", sent=1, at=1767290400, minutes=0),
        make_body("", "time_proposal", sent=1, minutes=30),
        make_body("", "poll", sent=1),
    ):
        env = seal_message(V["mailbox_id"], "c2v", bad, pubs)
        with pytest.raises(ValueError):
            open_message(env, V["mailbox_id"], fixed("counselor"))


def test_recipient_lists_are_checked() -> None:
    def entry(name: str, role: str) -> dict[str, str]:
        return {"kid": V["kids"][name], "pubkey": V["public_keys"][name], "role": role}

    good = [entry("mailbox", "mailbox"), entry("team", "team"), entry("counselor", "counselor")]
    assert len(check_recipients(good, V["public_keys"]["mailbox"])) == 3
    for bad in (
        [],
        [good[0], good[0], good[1]],
        [good[0], good[2]],  # no team key
        [{**good[0], "kid": V["kids"]["team"]}, good[1]],
        [{**good[0], "role": "admin"}, good[1]],
    ):
        with pytest.raises(ValueError):
            check_recipients(bad)
    with pytest.raises(ValueError):
        check_recipients(good, V["public_keys"]["counselor"])
    with pytest.raises(ValueError):
        wrap_with_password(generate_key_pair(), "x", iterations=100_000)
