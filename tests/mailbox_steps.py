"""Steps of the mailbox tests (docs/protocol.md E12) on the independent clients:
tests/mailbox_client.py for the cryptography, tests/protocol_client.py for Socket.IO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import mailbox_client as mc
from cryptography.hazmat.primitives.asymmetric import ec
from protocol_client import CounselorClient, VisitorClient, console_login, ok, pow_solve
from support import CSRF_FIELD, TEST_USER_AGENT, ServerProcess

PASSWORD = "rätt häst batteri häftklammer"


async def set_team_key(srv: ServerProcess) -> ec.EllipticCurvePrivateKey:
    """An admin posts the team key's public half (with CSRF) as the admin page does."""
    admin = srv.add_user(role="admin")
    status, body, cookie, _ = await console_login(
        srv.base_url, admin.username, admin.password, admin.next_totp(), TEST_USER_AGENT)
    assert status == 200 and cookie, body
    team = mc.generate_key_pair()
    async with aiohttp.ClientSession(
        headers={"User-Agent": TEST_USER_AGENT, "Cookie": f"tillit_session={cookie}"},
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as http:
        async with http.get(f"{srv.base_url}/console/admin") as resp:
            csrf = CSRF_FIELD.search(await resp.text()).group(1)
        form = {"pubkey": mc.encode_public_key(team)}
        async with http.post(f"{srv.base_url}/console/admin/team-key", data=form,
                             allow_redirects=False) as resp:
            assert resp.status == 403  # no CSRF token
        async with http.post(f"{srv.base_url}/console/admin/team-key",
                             data={**form, "csrf_token": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
    return team


async def give_key(counselor: CounselorClient) -> ec.EllipticCurvePrivateKey:
    """The console's first visit to the mailboxes: a key pair, wrapped with the password."""
    key = mc.generate_key_pair()
    record = mc.wrap_with_password(key, PASSWORD)
    ack = ok(await counselor.call("mailbox:keys", {"set": record}))
    assert ack["kid"] == record["kid"]
    return key


async def mailbox_pow(visitor: VisitorClient) -> dict[str, str]:
    ack = ok(await visitor.call("pow:challenge", {"for": "mailbox"}))
    return {"challenge": ack["challenge"], "nonce": pow_solve(ack["challenge"], ack["bits"])}


@dataclass
class Box:
    """A visitor's mailbox as the page holds it while open: never the code on disk."""

    code: bytes
    secrets: mc.MailboxSecrets
    key: ec.EllipticCurvePrivateKey
    recipients: list[dict[str, Any]]

    @property
    def locator(self) -> str:
        return self.secrets.locator_b64

    @property
    def mailbox_id(self) -> str:
        return self.secrets.mailbox_id

    def seal(self, text: str) -> dict[str, Any]:
        pubs = mc.check_recipients(self.recipients, mc.encode_public_key(self.key))
        return mc.seal_message(self.mailbox_id, "v2c", mc.make_body(text, pad=True), pubs)

    def read(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return mc.open_message(envelope, self.mailbox_id, self.key)


async def create_mailbox(visitor: VisitorClient, chat_id: str | None = None
                         ) -> tuple[dict[str, Any], Box | None]:
    code = mc.generate_code()
    secrets = mc.derive(code)
    key = mc.generate_key_pair()
    payload = {"locator": secrets.locator_b64, "pubkey": mc.encode_public_key(key),
               "wrapped_key": mc.wrap_mailbox_key(key, secrets),
               "pow": await mailbox_pow(visitor)}
    if chat_id is not None:
        payload["chat_id"] = chat_id
    ack = await visitor.call("mailbox:create", payload)
    if not ack.get("ok"):
        return ack, None
    return ack, Box(code, secrets, key, ack["recipients"])


async def open_mailbox(visitor: VisitorClient, code: bytes) -> tuple[dict[str, Any], Box | None]:
    secrets = mc.derive(code)
    ack = await visitor.call("mailbox:open", {"locator": secrets.locator_b64,
                                              "pow": await mailbox_pow(visitor)})
    if not ack.get("ok"):
        return ack, None
    mailbox = ack["mailbox"]
    key = mc.unwrap_mailbox_key(mailbox["wrapped_key"], secrets, mailbox["pubkey"])
    return ack, Box(code, secrets, key, ack["recipients"])


def counselor_seal(read_ack: dict[str, Any], text: str, kind: str = "text",
                   **extra: Any) -> dict[str, Any]:
    pubs = mc.check_recipients(read_ack["recipients"])
    mailbox_id = read_ack["mailbox"]["mailbox_id"]
    return mc.seal_message(mailbox_id, "c2v", mc.make_body(text, kind, pad=True, **extra), pubs)
