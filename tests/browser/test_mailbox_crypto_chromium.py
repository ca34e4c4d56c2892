"""The mailbox cryptography (docs/protocol.md E12) in Debian's Chromium, whose WebCrypto
(BoringSSL) is not Node's (OpenSSL): the vectors, and keys, records and messages made in
the browser opened by the independent Python client, and the other way round.

No Tillit server: Playwright serves the module on http://localhost (a secure context), so
the test needs nothing but the browser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailbox_client import (
    derive,
    encode_public_key,
    format_code,
    generate_code,
    generate_key_pair,
    make_body,
    open_message,
    parse_code,
    seal_message,
    unwrap_mailbox_key,
    unwrap_with_password,
    wrap_mailbox_key,
    wrap_with_password,
)
from playwright.async_api import Browser, Route

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "tillit" / "static"  # mailbox-crypto.js and the mailbox-crypto/ it imports
V: dict[str, Any] = json.loads((ROOT / "tests" / "mailbox_vectors.json").read_text("utf-8"))
ORIGIN = "http://localhost:8765"

PAGE_SCRIPT = r"""
async (input) => {
  const M = await import("/mailbox-crypto.js");
  const V = input.vectors;
  const hex = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
  const out = {};
  const box = await M.deriveMailbox(M.parseCode(V.code.toLowerCase()));
  out.derived = [M.formatCode(hex(V.inputs.code_hex)), box.locator, box.mailboxId];
  await M.unwrapMailboxKey(V.wrapped_mailbox_key, box, V.public_keys.mailbox);
  out.counselor = (await M.unwrapWithPassword(V.counselor_record, V.inputs.counselor_password)).kid;
  out.vector_texts = [];
  for (const name of ["counselor", "team", "mailbox"]) {
    const own = await M.importPrivateJwk(V.inputs.private_jwk[name]);
    out.vector_texts.push((await M.openMessage(V.message, V.mailbox_id, own)).text);
  }
  const ephemerals = await Promise.all(V.inputs.recipients_in_order.map(
    (n) => M.importPrivateJwk(V.inputs.private_jwk["ephemeral_" + n])));
  const bodyBytes = new TextEncoder().encode(V.inputs.body_utf8);
  out.resealed = await M.sealMessage(V.mailbox_id, "v2c", bodyBytes,
    V.inputs.recipients_in_order.map((n) => V.public_keys[n]), {
      messageId: hex(V.inputs.message_id_hex), contentKey: hex(V.inputs.content_key_hex),
      iv: hex(V.inputs.body_iv_hex), ephemerals: ephemerals, wrapIvs: V.inputs.wrap_iv_hex.map(hex)
    });
  // Python's mailbox, record and message, opened here.
  const theirs = await M.deriveMailbox(M.parseCode(input.code));
  const mbx = await M.unwrapMailboxKey(input.wrapped, theirs, input.mailbox_pub);
  out.from_python = (await M.openMessage(input.message, theirs.mailboxId,
    { privateKey: mbx, pubkey: input.mailbox_pub })).text;
  out.record_kid = (await M.unwrapWithPassword(input.record, input.password)).kid;
  // Made here, for Python to open.
  const code = M.generateCode();
  const mine = await M.deriveMailbox(code);
  const keys = await M.createMailboxKeys(mine);
  out.new_mailbox = { code: M.formatCode(code), pubkey: keys.pubkey, wrapped: keys.wrappedKey };
  out.new_record = (await M.createPasswordKeys(input.password, "counselor-key")).record;
  out.sealed = await M.sealMessage(mine.mailboxId, "v2c",
    { kind: "text", text: input.text, sent: 1767225600 }, [input.counselor_pub, keys.pubkey]);
  out.extractable = keys.privateKey.extractable;
  return out;
}
"""


async def serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN + "/")
    if path.startswith("mailbox-crypto") and path.endswith(".js") and ".." not in path:
        await route.fulfill(body=(STATIC / path).read_text("utf-8"),
                            content_type="text/javascript")
    else:
        await route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html")


async def test_chromium_and_python_agree_on_mailboxes(browser: Browser) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(f"{ORIGIN}/**", serve)
    await page.goto(f"{ORIGIN}/")

    code = generate_code()
    s = derive(code)
    mailbox, counselor = generate_key_pair(), generate_key_pair()
    password = "Chromiums lösenord: ärligt 🙂"
    text = "Brev från Python till webbläsaren 🌿"
    payload = {
        "vectors": V,
        "code": format_code(code),
        "wrapped": wrap_mailbox_key(mailbox, s),
        "mailbox_pub": encode_public_key(mailbox),
        "message": seal_message(
            s.mailbox_id, "c2v", make_body(text, pad=True), [encode_public_key(mailbox)]
        ),
        "record": wrap_with_password(counselor, password),
        "password": password,
        "counselor_pub": encode_public_key(counselor),
        "text": "Från Chromium: jag kommer tillbaka på torsdag",
    }
    out = await page.evaluate(PAGE_SCRIPT, payload)
    await context.close()

    assert out["derived"] == [V["code"], V["locator"], V["mailbox_id"]]
    assert out["counselor"] == V["kids"]["counselor"]
    assert out["vector_texts"] == ["Hej! Kan vi höras på torsdag? 🙂"] * 3
    assert out["resealed"] == V["message"]
    assert out["from_python"] == text
    assert out["record_kid"] == payload["record"]["kid"]
    assert out["extractable"] is False
    # Chromium's PKCS#8 (BoringSSL) unwraps and loads here; its record and message open.
    new = out["new_mailbox"]
    theirs = derive(parse_code(new["code"]))
    box_key = unwrap_mailbox_key(new["wrapped"], theirs, new["pubkey"])
    assert encode_public_key(box_key) == new["pubkey"]
    made = unwrap_with_password(out["new_record"], password)
    assert encode_public_key(made) == out["new_record"]["pubkey"]
    for key in (counselor, box_key):
        assert open_message(out["sealed"], theirs.mailbox_id, key)["text"] == payload["text"]
