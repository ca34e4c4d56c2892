"""Console sessions: a random cookie token, stored only as its SHA-256, with expiry."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import aiosqlite

from tillit.counselor_console import accounts

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


async def start(conn: aiosqlite.Connection, username: str) -> str:
    """A new session for `username`; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    await conn.execute(
        "INSERT INTO sessions (token_hash, username, csrf_token, created_at, last_seen) "
        "VALUES (?, ?, ?, ?, ?)",
        (_hash(token), username, secrets.token_urlsafe(24), now, now),
    )
    await conn.commit()
    return token


async def lookup(
    conn: aiosqlite.Connection,
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
    rows = await conn.execute_fetchall(
        "SELECT username, csrf_token, created_at, last_seen FROM sessions WHERE token_hash = ?",
        (token_hash,),
    )
    if not rows:
        return None
    row = rows[0]
    if now - row["created_at"] > max_age_s or now - row["last_seen"] > idle_s:
        await end(conn, token)
        return None
    account = await accounts.get(conn, row["username"])
    if account is None or account.disabled:
        return None
    if touch and now - row["last_seen"] > 30:  # one write a half-minute is enough for idle time
        await conn.execute(
            "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash)
        )
        await conn.commit()
    return Session(account.username, account.display_name, account.role, account.languages,
                   row["csrf_token"], token_hash)


async def end(conn: aiosqlite.Connection, token: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_hash(token),))
    await conn.commit()


async def expire_all_older_than(conn: aiosqlite.Connection, cutoff: float) -> int:
    cur = await conn.execute("DELETE FROM sessions WHERE last_seen < ?", (cutoff,))
    await conn.commit()
    return cur.rowcount


class SocketRegistry:
    """The console's open sockets in the durable database, visible to every process."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def add(self, sid: str, token_hash: str, username: str) -> None:
        await self.conn.execute(
            "INSERT OR REPLACE INTO console_sockets (sid, token_hash, username) VALUES (?, ?, ?)",
            (sid, token_hash, username))
        await self.conn.commit()

    async def drop(self, sid: str) -> None:
        await self.conn.execute("DELETE FROM console_sockets WHERE sid = ?", (sid,))
        await self.conn.commit()

    async def find(self, token_hash: str | None = None, username: str | None = None) -> list[str]:
        """Sids of one session or one account, then forget rows of sessions that ended
        (sockets of a process that died)."""
        rows = await self.conn.execute_fetchall(
            "SELECT sid FROM console_sockets WHERE token_hash = ? OR username = ?",
            (token_hash, username))
        await self.conn.execute(
            "DELETE FROM console_sockets WHERE token_hash NOT IN (SELECT token_hash FROM sessions)")
        await self.conn.commit()
        return [row["sid"] for row in rows]


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
