"""Console sessions: a random cookie token, stored only as its SHA-256, with expiry."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.counselor_console import accounts
from tillit.durable.schema import console_sockets
from tillit.durable.schema import sessions as session_rows
from tillit.durable.upsert import upsert

# In production the cookie is `__Host-tillit_session`: `Secure`, `Path=/`, no `Domain`,
# which browsers enforce for that prefix (no subdomain or plain-http page can set or
# shadow it). `server.development` (http://127.0.0.1, `make serve`, the tests) drops
# `Secure`, and with it the prefix, which browsers refuse without `Secure`.
COOKIE_NAME = "tillit_session"
SECURE_COOKIE_NAME = "__Host-" + COOKIE_NAME


def cookie_name(development: bool) -> str:
    """The session cookie's name in this mode (see above)."""
    return COOKIE_NAME if development else SECURE_COOKIE_NAME


@dataclass
class Session:
    username: str
    display_name: str | None  # the name visitors see; None for an account without one yet
    role: str
    languages: list[str]
    csrf_token: str
    token_hash: str

    @property
    def label(self) -> str:
        """What colleagues and the account itself see on staff pages."""
        return self.display_name or self.username


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def start(db: AsyncEngine, username: str) -> str:
    """A new session for `username`; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    async with db.begin() as conn:
        await conn.execute(session_rows.insert().values(
            token_hash=_hash(token), username=username, csrf_token=secrets.token_urlsafe(24),
            created_at=now, last_seen=now))
    return token


async def lookup(
    db: AsyncEngine,
    token: str | None,
    max_age_s: float,
    idle_s: float,
    now: float | None = None,
    touch: bool = True,
) -> Session | None:
    """The live session behind a cookie value, or None (expired, idle, disabled, unknown)."""
    if not token or len(token) > 128:
        return None
    now = time.time() if now is None else now
    token_hash = _hash(token)
    t = session_rows.c
    async with db.connect() as conn:
        row = (await conn.execute(select(t.username, t.csrf_token, t.created_at, t.last_seen)
                                  .where(t.token_hash == token_hash))).first()
    if row is None:
        return None
    if now - row.created_at > max_age_s or now - row.last_seen > idle_s:
        await end(db, token)
        return None
    account = await accounts.get(db, row.username)
    if account is None or account.disabled:
        return None
    if touch and now - row.last_seen > 30:  # one write a half-minute is enough for idle time
        async with db.begin() as conn:
            await conn.execute(update(session_rows).where(t.token_hash == token_hash)
                               .values(last_seen=now))
    return Session(account.username, account.display_name, account.role, account.languages,
                   row.csrf_token, token_hash)


async def end(db: AsyncEngine, token: str) -> None:
    async with db.begin() as conn:
        await conn.execute(delete(session_rows).where(session_rows.c.token_hash == _hash(token)))


async def expire_all_older_than(db: AsyncEngine, cutoff: float) -> int:
    async with db.begin() as conn:
        cur = await conn.execute(delete(session_rows).where(session_rows.c.last_seen < cutoff))
    return cur.rowcount


class SocketRegistry:
    """The console's open sockets in the durable database, visible to every process."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def add(self, sid: str, token_hash: str, username: str) -> None:
        async with self.db.begin() as conn:
            await upsert(conn, console_sockets,
                         {"sid": sid, "token_hash": token_hash, "username": username})

    async def drop(self, sid: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(console_sockets).where(console_sockets.c.sid == sid))

    async def find(self, token_hash: str | None = None, username: str | None = None) -> list[str]:
        """Sids of one session or one account, then forget rows of sessions that ended
        (sockets of a process that died)."""
        t = console_sockets.c
        async with self.db.begin() as conn:
            sids = (await conn.execute(
                select(t.sid).where((t.token_hash == token_hash) | (t.username == username))
            )).scalars().all()
            await conn.execute(delete(console_sockets).where(
                t.token_hash.not_in(select(session_rows.c.token_hash))))
        return list(sids)


def token_from_cookie_header(header: str | None, name: str = COOKIE_NAME) -> str | None:
    """The session token in a raw `Cookie:` header (a Socket.IO handshake has no parsed one)."""
    if not header:
        return None
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None
