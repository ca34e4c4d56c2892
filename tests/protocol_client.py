"""An independent Python client of the Tillit wire protocol (docs/protocol.md, version 1).

Written from docs/protocol.md alone, without importing anything from the
server, so that the tests check the server against the contract rather than against
itself. It is also meant for the load benchmark.

Layers:

* pure functions for the bit-exact end-to-end encryption of docs/protocol.md section 2
  (`derive_epoch_keys`, `associated_data`, `seal`, `open_envelope`, `safety_code_from`);
* `ChatCrypto`: one side of one chat (own key pair, the peer's public key, per-epoch
  keys, sequence counters, replay protection, safety code);
* `VisitorClient` and `CounselorClient`: Socket.IO clients of `/visitor` and
  `/counselor` that encrypt on send, decrypt on receipt and record every event.

Every client-to-server event is sent with `sio.call(...)`, so each method returns the
acknowledgement dict (`{"ok": true, ...}` or `{"ok": false, "error": {...}}`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import socketio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

Side = Literal["visitor", "counselor"]
Direction = Literal["v2c", "c2v"]

PROTOCOL_LABEL = "tillit-e2e-v1"
ACK_TIMEOUT_S = 10.0
DEFAULT_USER_AGENT = "TillitTestAgent/1.0"


# --------------------------------------------------------------------------- proof of work


def pow_solve(challenge: str, bits: int, start: int = 0) -> str:
    """The first decimal nonce from `start` up such that SHA-256(UTF-8(challenge ":"
    nonce)) starts with `bits` zero bits (docs/protocol.md, "Proof of work")."""
    import hashlib

    prefix = hashlib.sha256(f"{challenge}:".encode())
    shift = 64 - bits
    nonce = start
    while True:
        h = prefix.copy()
        h.update(str(nonce).encode())
        if bits <= 0 or int.from_bytes(h.digest()[:8], "big") >> shift == 0:
            return str(nonce)
        nonce += 1


# --------------------------------------------------------------------------- encoding


def b64u_encode(data: bytes) -> str:
    """base64url without padding (docs/protocol.md section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- crypto


def generate_key_pair() -> ec.EllipticCurvePrivateKey:
    """A fresh ephemeral P-256 key pair."""
    return ec.generate_private_key(ec.SECP256R1())


def encode_public_key(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The wire form of a public key: uncompressed point, 65 bytes, base64url."""
    raw = private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert len(raw) == 65 and raw[0] == 0x04
    return b64u_encode(raw)


def decode_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """Parse a wire public key; raises ValueError unless it is a valid uncompressed point."""
    raw = b64u_decode(text)
    if len(raw) != 65 or raw[0] != 0x04:
        raise ValueError("public key must be a 65-byte uncompressed P-256 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def shared_secret(private_key: ec.EllipticCurvePrivateKey, peer_pub: str) -> bytes:
    """ECDH on P-256: 32 bytes."""
    return private_key.exchange(ec.ECDH(), decode_public_key(peer_pub))


def _hkdf(ikm: bytes, chat_id: str, epoch: int, info: str, length: int) -> bytes:
    salt = f"{PROTOCOL_LABEL}|{chat_id}|{epoch}".encode()
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=salt, info=info.encode()
    ).derive(ikm)


@dataclass(frozen=True)
class EpochKeys:
    """The keys of one epoch of one chat (identical on both sides)."""

    epoch: int
    v2c: bytes
    c2v: bytes
    safety_code: str

    def key_for(self, direction: Direction) -> bytes:
        return self.v2c if direction == "v2c" else self.c2v


def safety_code_from(secret: bytes, chat_id: str, epoch: int) -> str:
    """HKDF info "code", 4 bytes, big-endian integer mod 1 000 000, as 6 digits."""
    raw = _hkdf(secret, chat_id, epoch, "code", 4)
    return f"{int.from_bytes(raw, 'big') % 1_000_000:06d}"


def derive_epoch_keys(secret: bytes, chat_id: str, epoch: int) -> EpochKeys:
    """Both direction keys and the safety code for one epoch."""
    return EpochKeys(
        epoch=epoch,
        v2c=_hkdf(secret, chat_id, epoch, "v2c", 32),
        c2v=_hkdf(secret, chat_id, epoch, "c2v", 32),
        safety_code=safety_code_from(secret, chat_id, epoch),
    )


def associated_data(chat_id: str, epoch: int, direction: Direction, seq: int) -> bytes:
    """UTF-8 of `tillit-e2e-v1|<chat_id>|<epoch>|<dir>|<seq>`."""
    return f"{PROTOCOL_LABEL}|{chat_id}|{epoch}|{direction}|{seq}".encode()


def make_plaintext(text: str, msg_type: str = "text", sent_at: int | None = None) -> bytes:
    """The UTF-8 JSON plaintext `{"type", "text", "sent_at"}`."""
    body = {"type": msg_type, "text": text, "sent_at": sent_at or int(time.time() * 1000)}
    return json.dumps(body, ensure_ascii=False).encode()


def seal(
    key: bytes, chat_id: str, epoch: int, direction: Direction, seq: int, plaintext: bytes
) -> dict[str, Any]:
    """Encrypt one message into a client-to-server envelope."""
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, plaintext, associated_data(chat_id, epoch, direction, seq))
    return {
        "chat_id": chat_id,
        "epoch": epoch,
        "seq": seq,
        "nonce": b64u_encode(nonce),
        "ct": b64u_encode(ct),
    }


def open_envelope(key: bytes, direction: Direction, envelope: dict[str, Any]) -> bytes:
    """Decrypt an envelope; raises `cryptography.exceptions.InvalidTag` on any mismatch."""
    ad = associated_data(envelope["chat_id"], envelope["epoch"], direction, envelope["seq"])
    return AESGCM(key).decrypt(b64u_decode(envelope["nonce"]), b64u_decode(envelope["ct"]), ad)


def direction_of(sender: Side) -> Direction:
    return "v2c" if sender == "visitor" else "c2v"


class ReplayError(Exception):
    """An envelope whose (epoch, dir, seq) was already shown."""


class ChatCrypto:
    """One side's end-to-end state for one chat.

    The private key lives only in this object. `establish(epoch, peer_pub)` derives the
    keys of an epoch from the *current* own key and the peer's (possibly new) public key;
    `rekey()` replaces the own key pair (the caller then establishes the next epoch).
    Keys of earlier epochs are kept until the object is dropped (docs/protocol.md E2).
    """

    def __init__(self, side: Side, chat_id: str | None = None) -> None:
        self.side: Side = side
        self.chat_id = chat_id
        self._private = generate_key_pair()
        self.pubkey: str = encode_public_key(self._private)
        self.peer_pub: str | None = None
        self.epoch: int = 0
        self.keys: dict[int, EpochKeys] = {}
        self._next_seq: dict[int, int] = {}
        self._shown: set[tuple[int, Direction, int]] = set()

    @property
    def send_dir(self) -> Direction:
        return direction_of(self.side)

    @property
    def recv_dir(self) -> Direction:
        return "c2v" if self.side == "visitor" else "v2c"

    @property
    def ready(self) -> bool:
        return self.epoch in self.keys

    def rekey(self) -> str:
        """Replace the own key pair; returns the new public key (wire form)."""
        self._private = generate_key_pair()
        self.pubkey = encode_public_key(self._private)
        return self.pubkey

    def establish(self, epoch: int, peer_pub: str | None = None) -> EpochKeys:
        """Derive the keys of `epoch` and make it the current epoch."""
        if self.chat_id is None:
            raise RuntimeError("chat_id unknown")
        if peer_pub is not None:
            self.peer_pub = peer_pub
        if self.peer_pub is None:
            raise RuntimeError("peer public key unknown")
        keys = derive_epoch_keys(shared_secret(self._private, self.peer_pub), self.chat_id, epoch)
        self.keys[epoch] = keys
        self.epoch = epoch
        return keys

    def safety_code(self, epoch: int | None = None) -> str:
        return self.keys[self.epoch if epoch is None else epoch].safety_code

    def seal_text(self, text: str, msg_type: str = "text") -> dict[str, Any]:
        """Encrypt a message at the current epoch with the next own sequence number."""
        if not self.ready:
            raise RuntimeError("no key yet (chat not assigned)")
        seq = self._next_seq.get(self.epoch, 0)
        self._next_seq[self.epoch] = seq + 1
        key = self.keys[self.epoch].key_for(self.send_dir)
        assert self.chat_id is not None
        plaintext = make_plaintext(text, msg_type)
        return seal(key, self.chat_id, self.epoch, self.send_dir, seq, plaintext)

    def open(self, envelope: dict[str, Any], sender: Side) -> dict[str, Any]:
        """Decrypt an envelope from `sender` (either side: a client also sees its own).

        Raises `KeyError` for an unknown epoch, `InvalidTag` for a bad envelope.
        """
        direction = direction_of(sender)
        keys = self.keys[envelope["epoch"]]
        return json.loads(open_envelope(keys.key_for(direction), direction, envelope))

    def open_once(self, envelope: dict[str, Any], sender: Side) -> dict[str, Any]:
        """Like `open`, but raises `ReplayError` for an (epoch, dir, seq) already shown."""
        marker = (envelope["epoch"], direction_of(sender), envelope["seq"])
        if marker in self._shown:
            raise ReplayError(marker)
        body = self.open(envelope, sender)
        self._shown.add(marker)
        return body


# --------------------------------------------------------------------------- sockets


@dataclass
class Received:
    """One decrypted message as a client shows it."""

    id: int
    chat_id: str
    sender: Side
    epoch: int
    seq: int
    text: str
    type: str
    ts: int
    envelope: dict[str, Any] = field(repr=False)


class _Client:
    """Shared machinery: one socket, event log, waiting, decrypting `msg:new`."""

    namespace: str = "/"
    side: Side = "visitor"

    def __init__(self, base_url: str, user_agent: str = DEFAULT_USER_AGENT) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self.sio: socketio.AsyncClient | None = None
        self.events: list[tuple[str, Any]] = []
        # Shown messages by (chat_id, id): ids are per chat, so a counselor needs both.
        self.messages: dict[tuple[str, int], Received] = {}
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()  # from the peer, each once
        self.decrypt_errors: list[tuple[dict[str, Any], str]] = []
        self.duplicates: int = 0
        self._changed = asyncio.Event()

    # -- plumbing

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent}

    async def connect(self) -> None:
        """Open a NEW socket (the old one, if any, is dropped first)."""
        await self.disconnect()
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("*", self._on_any, namespace=self.namespace)
        await sio.connect(
            self.base_url,
            headers=self._headers(),
            transports=["websocket"],
            namespaces=[self.namespace],
            socketio_path="socket.io",
            wait_timeout=10,
        )
        self.sio = sio

    async def disconnect(self) -> None:
        if self.sio is not None:
            sio, self.sio = self.sio, None
            await sio.disconnect()

    @property
    def connected(self) -> bool:
        return self.sio is not None and self.sio.connected

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        """Emit one event and return its acknowledgement (raises TimeoutError if none)."""
        if self.sio is None:
            raise RuntimeError("not connected")
        ack = await self.sio.call(event, data, namespace=self.namespace, timeout=ACK_TIMEOUT_S)
        return ack

    async def _on_any(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        try:
            self.handle_event(event, data)
        finally:
            self._changed.set()

    def handle_event(self, event: str, data: Any) -> None:  # pragma: no cover - overridden
        if event == "msg:new":
            self._take_message(data)

    def crypto_for(self, chat_id: str) -> ChatCrypto | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _take_message(self, env: dict[str, Any]) -> Received | None:
        """Record an envelope from `msg:new` or a `missed` list: dedupe by id, decrypt."""
        if not isinstance(env, dict) or not isinstance(env.get("id"), int):
            self.decrypt_errors.append((env, "malformed envelope"))
            return None
        if (env.get("chat_id"), env["id"]) in self.messages:
            self.duplicates += 1
            return None
        crypto = self.crypto_for(env.get("chat_id", ""))
        if crypto is None:
            self.decrypt_errors.append((env, "unknown chat"))
            return None
        try:
            body = crypto.open(env, env["from"])
        except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.decrypt_errors.append((env, repr(exc)))
            return None
        rec = Received(
            id=env["id"],
            chat_id=env["chat_id"],
            sender=env["from"],
            epoch=env["epoch"],
            seq=env["seq"],
            text=body.get("text", ""),
            type=body.get("type", ""),
            ts=env.get("ts", 0),
            envelope=env,
        )
        self.messages[(rec.chat_id, rec.id)] = rec
        if rec.sender != self.side:
            self.inbox.put_nowait(rec)
        return rec

    # -- waiting

    def events_named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def wait_for_event(
        self,
        name: str,
        predicate: Callable[[Any], bool] | None = None,
        wait_s: float = 5.0,
        start: int = 0,
    ) -> Any:
        """The first event `name` (from index `start` of `events`) matching `predicate`."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            for event, data in self.events[start:]:
                if event == name and (predicate is None or predicate(data)):
                    return data
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [event for event, _ in self.events]
                raise TimeoutError(f"no {name!r} within {wait_s}s; events seen: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def receive(self, wait_s: float = 5.0) -> Received:
        """The next message from the peer (each shown once)."""
        return await asyncio.wait_for(self.inbox.get(), wait_s)

    async def receive_n(self, n: int, wait_s: float = 5.0) -> list[Received]:
        return [await self.receive(wait_s) for _ in range(n)]

    def drain_inbox(self) -> list[Received]:
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out

    def received_in(self, chat_id: str) -> list[Received]:
        """Every message shown in `chat_id` (both directions), in id order."""
        mine = (m for m in self.messages.values() if m.chat_id == chat_id)
        return sorted(mine, key=lambda m: m.id)

    def last_id_in(self, chat_id: str) -> int:
        return max((m.id for m in self.received_in(chat_id)), default=0)


class VisitorClient(_Client):
    """An anonymous visitor on `/visitor`.

    >>> v = VisitorClient("http://127.0.0.1:8080")
    >>> await v.connect(); ack = await v.start(lang="sv", danger_now=False)
    """

    namespace = "/visitor"
    side: Side = "visitor"

    def __init__(self, base_url: str, user_agent: str = DEFAULT_USER_AGENT) -> None:
        super().__init__(base_url, user_agent)
        self.crypto = ChatCrypto("visitor")
        self.chat_id: str | None = None
        self.resume_token: str | None = None
        self.counselor_name: str | None = None
        self.sent: list[dict[str, Any]] = []

    def crypto_for(self, chat_id: str) -> ChatCrypto | None:
        return self.crypto if chat_id == self.chat_id else None

    @property
    def last_id(self) -> int:
        """The highest message id shown in this visitor's chat."""
        return self.last_id_in(self.chat_id) if self.chat_id else 0

    def handle_event(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if event == "chat:assigned" and data.get("chat_id") == self.chat_id:
            self.counselor_name = data.get("counselor_name")
            self.crypto.establish(data["epoch"], data["pubkey"])
        elif event == "key:update" and data.get("chat_id") == self.chat_id:
            if data.get("from") != "visitor":
                self.crypto.establish(data["epoch"], data["pubkey"])
        elif event == "msg:new":
            self._take_message(data)

    async def solve_pow(self) -> dict[str, str]:
        """`pow:challenge`, solved: the `pow` field of the next `chat:start`."""
        ack = await self.call("pow:challenge", {})
        if not ack.get("ok"):
            raise AssertionError(f"pow:challenge refused: {ack}")
        challenge, bits = ack["challenge"], int(ack["bits"])
        if bits > 16:  # seconds of CPU: keep the client's event loop (and heartbeat) going
            nonce = await asyncio.to_thread(pow_solve, challenge, bits)
        else:
            nonce = pow_solve(challenge, bits)
        return {"challenge": challenge, "nonce": nonce}

    async def start(self, pow: dict[str, str] | None | bool = True,
                    **answers: Any) -> dict[str, Any]:
        """`chat:start` with the visitor's public key and optional answers.

        `pow`: True solves a fresh challenge first (what the visitor page does); a dict
        is sent as it is (a replay, a forgery); False or None sends no `pow` at all.
        """
        payload: dict[str, Any] = {"pubkey": self.crypto.pubkey, **answers}
        if pow is True:
            payload["pow"] = await self.solve_pow()
        elif isinstance(pow, dict):
            payload["pow"] = pow
        ack = await self.call("chat:start", payload)
        if ack.get("ok"):
            self.chat_id = ack["chat_id"]
            self.crypto.chat_id = ack["chat_id"]
            self.resume_token = ack["resume_token"]
        return ack

    async def wait_assigned(self, wait_s: float = 5.0) -> dict[str, Any]:
        return await self.wait_for_event(
            "chat:assigned", lambda d: d.get("chat_id") == self.chat_id, wait_s
        )

    async def send(self, text: str, msg_type: str = "text") -> dict[str, Any]:
        """Encrypt and `msg:send`; returns the ack (`{"ok": true, "id": n}`)."""
        assert self.chat_id is not None
        env = self.crypto.seal_text(text, msg_type)
        self.sent.append(env)
        return await self.call("msg:send", env)

    async def send_envelope(self, env: dict[str, Any]) -> dict[str, Any]:
        """`msg:send` an envelope as is (for retries and bad input)."""
        return await self.call("msg:send", env)

    async def typing(self, on: bool = True) -> dict[str, Any]:
        return await self.call("typing", {"chat_id": self.chat_id, "on": on})

    async def resume(self, after_id: int | None = None, new_socket: bool = True) -> dict[str, Any]:
        """Reconnect with a new socket (by default) and `chat:resume`; takes in `missed`."""
        if new_socket:
            await self.connect()
        after = self.last_id if after_id is None else after_id
        ack = await self.call("chat:resume", {"resume_token": self.resume_token, "after_id": after})
        if ack.get("ok"):
            pub = ack.get("counselor_pubkey")
            epoch = ack.get("epoch")
            if pub and epoch and (epoch not in self.crypto.keys or pub != self.crypto.peer_pub):
                self.crypto.establish(epoch, pub)
            for env in ack.get("missed", []):
                self._take_message(env)
        return ack

    async def end(self, reason: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"chat_id": self.chat_id}
        if reason:
            payload["reason"] = reason
        return await self.call("chat:end", payload)

    async def feedback(self, helped: str, score: int) -> dict[str, Any]:
        payload = {"chat_id": self.chat_id, "helped": helped, "score": score}
        return await self.call("feedback", payload)


class LoginError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"login failed: HTTP {status} {body!r}")
        self.status = status
        self.body = body


async def console_login(
    base_url: str,
    username: str,
    password: str,
    totp: str,
    user_agent: str = DEFAULT_USER_AGENT,
) -> tuple[int, Any, str | None, list[str]]:
    """`POST /api/console/login`; returns (status, JSON body, session cookie, Set-Cookie lines)."""
    async with aiohttp.ClientSession(
        headers={"User-Agent": user_agent}, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        async with http.post(
            f"{base_url.rstrip('/')}/api/console/login",
            json={"username": username, "password": password, "totp": totp},
        ) as resp:
            try:
                body = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                body = await resp.text()
            set_cookies = resp.headers.getall("Set-Cookie", [])
            cookie = resp.cookies.get("tillit_session")
            return resp.status, body, (cookie.value if cookie else None), set_cookies


class CounselorClient(_Client):
    """A counselor on `/counselor`, authenticated by the `tillit_session` cookie.

    Holds one `ChatCrypto` per accepted chat. `reconnect()` opens a new socket with the
    same session (a dropped connection); `rejoin()` then re-keys as after a page reload.
    """

    namespace = "/counselor"
    side: Side = "counselor"

    def __init__(
        self, base_url: str, session_cookie: str, user_agent: str = DEFAULT_USER_AGENT
    ) -> None:
        super().__init__(base_url, user_agent)
        self.session_cookie = session_cookie
        self.chats: dict[str, ChatCrypto] = {}
        self.sent: list[dict[str, Any]] = []

    @classmethod
    async def login(
        cls,
        base_url: str,
        username: str,
        password: str,
        totp: str,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> CounselorClient:
        status, body, cookie, _ = await console_login(
            base_url, username, password, totp, user_agent
        )
        if status != 200 or not cookie:
            raise LoginError(status, body)
        return cls(base_url, cookie, user_agent)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "Cookie": f"tillit_session={self.session_cookie}"}

    def crypto_for(self, chat_id: str) -> ChatCrypto | None:
        return self.chats.get(chat_id)

    def handle_event(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if event == "msg:new":
            self._take_message(data)
        elif event == "key:update" and data.get("from") == "visitor":
            crypto = self.chats.get(data.get("chat_id", ""))
            if crypto is not None:
                crypto.establish(data["epoch"], data["pubkey"])

    async def reconnect(self) -> None:
        await self.connect()

    async def queue_list(self) -> dict[str, Any]:
        return await self.call("queue:list", {})

    async def mine(self) -> dict[str, Any]:
        return await self.call("chat:mine", {})

    async def accept(self, chat_id: str) -> dict[str, Any]:
        """`chat:accept` with a fresh key pair; derives the epoch keys from the ack."""
        crypto = ChatCrypto("counselor", chat_id)
        ack = await self.call("chat:accept", {"chat_id": chat_id, "pubkey": crypto.pubkey})
        if ack.get("ok"):
            crypto.establish(ack["epoch"], ack["visitor_pubkey"])
            self.chats[chat_id] = crypto
        return ack

    async def rejoin(self, chat_id: str, after_id: int | None = None) -> dict[str, Any]:
        """`chat:rejoin` with a NEW key pair (as after a reload); takes in `missed`.

        Keys of earlier epochs are kept, so `missed` envelopes of the old epoch decrypt
        (a real reload would have lost them).
        """
        crypto = self.chats.get(chat_id) or ChatCrypto("counselor", chat_id)
        old = (crypto._private, crypto.pubkey)
        crypto.rekey()
        if after_id is None:
            after_id = self.last_id_in(chat_id)
        ack = await self.call(
            "chat:rejoin", {"chat_id": chat_id, "pubkey": crypto.pubkey, "after_id": after_id}
        )
        if ack.get("ok"):
            crypto.establish(ack["epoch"], ack["visitor_pubkey"])
            self.chats[chat_id] = crypto
            for env in ack.get("missed", []):
                self._take_message(env)
        else:
            crypto._private, crypto.pubkey = old
        return ack

    async def send(self, chat_id: str, text: str, msg_type: str = "text") -> dict[str, Any]:
        env = self.chats[chat_id].seal_text(text, msg_type)
        self.sent.append(env)
        return await self.call("msg:send", env)

    async def send_envelope(self, env: dict[str, Any]) -> dict[str, Any]:
        return await self.call("msg:send", env)

    async def typing(self, chat_id: str, on: bool = True) -> dict[str, Any]:
        return await self.call("typing", {"chat_id": chat_id, "on": on})

    async def close(self, chat_id: str, form: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.call("chat:close", {"chat_id": chat_id, "form": form or {}})

    # -- console extensions (docs/protocol.md E6-E9)

    async def take_next(self) -> dict[str, Any]:
        """`chat:take_next` with a fresh key pair; like `accept` for whatever chat it gives."""
        crypto = ChatCrypto("counselor")
        ack = await self.call("chat:take_next", {"pubkey": crypto.pubkey})
        if ack.get("ok"):
            crypto.chat_id = ack["chat_id"]
            crypto.establish(ack["epoch"], ack["visitor_pubkey"])
            self.chats[ack["chat_id"]] = crypto
        return ack

    async def transfer(self, chat_id: str, to: str) -> dict[str, Any]:
        return await self.call("chat:transfer", {"chat_id": chat_id, "to": to})

    async def staff_online(self) -> dict[str, Any]:
        return await self.call("staff:online", {})

    async def mark_child(self, chat_id: str, involved: bool = True) -> dict[str, Any]:
        return await self.call("chat:child", {"chat_id": chat_id, "involved": involved})

    async def informed(self, chat_id: str) -> dict[str, Any]:
        return await self.call("chat:informed", {"chat_id": chat_id})

    async def indicators(self, chat_id: str, ids: list[str]) -> dict[str, Any]:
        return await self.call("chat:indicators", {"chat_id": chat_id, "indicators": ids})

    async def decision(
        self, chat_id: str, decision: str, to: str | None = None, reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        payload = {"chat_id": chat_id, "decision": decision, "to": to, "reason": reason, **extra}
        return await self.call("report:decision", payload)

    async def note_add(self, chat_id: str, text: str) -> dict[str, Any]:
        return await self.call("note:add", {"chat_id": chat_id, "text": text})

    async def note_list(self, chat_id: str | None = None) -> dict[str, Any]:
        return await self.call("note:list", {"chat_id": chat_id} if chat_id else {})

    async def send_resource(self, chat_id: str, card: dict[str, Any]) -> dict[str, Any]:
        """A referral card: the plaintext `{type: "resource", title, phone, url?, text?}`."""
        crypto = self.chats[chat_id]
        seq = crypto._next_seq.get(crypto.epoch, 0)
        crypto._next_seq[crypto.epoch] = seq + 1
        body = {**card, "type": "resource", "sent_at": int(time.time() * 1000)}
        key = crypto.keys[crypto.epoch].key_for(crypto.send_dir)
        env = seal(key, chat_id, crypto.epoch, crypto.send_dir, seq,
                   json.dumps(body, ensure_ascii=False).encode())
        self.sent.append(env)
        return await self.call("msg:send", env)


# --------------------------------------------------------------------------- helpers


class AckError(AssertionError):
    """An acknowledgement that was not `ok: true` where one was required."""


def ok(ack: Any, what: str = "") -> dict[str, Any]:
    """Return `ack` if it is `{"ok": true, ...}`, else raise AckError showing it."""
    if not isinstance(ack, dict) or ack.get("ok") is not True:
        raise AckError(f"{what or 'event'} not acknowledged ok: {ack!r}")
    return ack


def error_code(ack: Any) -> str | None:
    """The error code of an `ok: false` ack (None for anything else)."""
    if isinstance(ack, dict) and ack.get("ok") is False and isinstance(ack.get("error"), dict):
        code = ack["error"].get("code")
        return code if isinstance(code, str) else None
    return None


async def open_chat(
    visitor: VisitorClient, counselor: CounselorClient, **answers: Any
) -> str:
    """Visitor starts, counselor accepts, visitor gets `chat:assigned`; returns chat_id."""
    ok(await visitor.start(**answers), "chat:start")
    assert visitor.chat_id is not None
    ok(await counselor.accept(visitor.chat_id), "chat:accept")
    await visitor.wait_assigned()
    return visitor.chat_id
