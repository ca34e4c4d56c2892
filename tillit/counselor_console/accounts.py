"""Staff accounts: Argon2id password hashes and an RFC 6238 TOTP second factor."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import delete, exc, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.counselor_console.totp_crypto import TotpSealer
from tillit.durable.schema import accounts as accounts_table
from tillit.durable.schema import counselor_keys
from tillit.durable.schema import sessions as sessions_table

ROLES = ("counselor", "supervisor", "admin")
USERNAME = re.compile(r"[\w.-]{1,64}")
DISPLAY_NAME_MAX = 40
TOTP_DIGITS, TOTP_STEP_S = 6, 30
# The password policy of every password an account gets (create, reset, change): the
# upper bound is what the login accepts, so a password set is always one that logs in.
PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS = 12, 256
_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id, RFC 9106 low-memory
# Verified against when the username is unknown, so that a miss takes as long as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass
class Account:
    username: str
    display_name: str | None  # None: an account from before display names; visitors see none
    role: str
    languages: list[str]
    disabled: bool

    @property
    def label(self) -> str:
        """What colleagues see: the display name, or the login name while there is none."""
        return self.display_name or self.username


class AccountError(Exception):
    pass


def new_totp_secret() -> str:
    """160 random bits in base32, as authenticator apps expect (RFC 4226 section 4)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def totp_for(secret: str) -> TOTP:
    return TOTP(base64.b32decode(secret), TOTP_DIGITS, hashes.SHA1(), TOTP_STEP_S,
                enforce_key_length=False)


def totp_uri(secret: str, username: str, issuer: str = "Tillit") -> str:
    return totp_for(secret).get_provisioning_uri(username, issuer)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code `code` is, allowing one step of clock drift either way."""
    if not (isinstance(code, str) and len(code) == TOTP_DIGITS and code.isdigit()):
        return None
    totp = totp_for(secret)
    step = int(now // TOTP_STEP_S)
    for candidate in (step, step - 1, step + 1):
        try:
            totp.verify(code.encode("ascii"), candidate * TOTP_STEP_S)
        except InvalidToken:
            continue
        return candidate
    return None


def check_password_policy(password: str) -> None:
    """One policy for new, reset and changed passwords (AccountError with the reason)."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_CHARS:
        raise AccountError(f"password: at least {PASSWORD_MIN_CHARS} characters")
    if len(password) > PASSWORD_MAX_CHARS:
        raise AccountError(f"password: at most {PASSWORD_MAX_CHARS} characters")


def clean_display_name(display_name: str | None, username: str) -> str:
    """The display name a visitor will read, checked: required, short, not the login name.

    Visitors must never see a login (it is half of what an attacker needs), so a display
    name equal to the username is refused.
    """
    name = " ".join((display_name or "").split())
    if not name:
        raise AccountError("display name: required (the name visitors see, e.g. \"Aster\")")
    if len(name) > DISPLAY_NAME_MAX:
        raise AccountError(f"display name: at most {DISPLAY_NAME_MAX} characters")
    if not name.isprintable():
        raise AccountError("display name: no control characters")
    if name.casefold() == (username or "").casefold():
        raise AccountError("display name: must differ from the username (visitors see it)")
    return name


async def create(
    db: AsyncEngine,
    username: str,
    password: str,
    role: str,
    display_name: str,
    languages: list[str] | None = None,
    *,
    sealer: TotpSealer,
) -> str:
    """Create an account and return its new TOTP secret (stored sealed by `sealer`)."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not USERNAME.fullmatch(username or ""):
        raise AccountError("username: letters, digits, '.', '-' and '_' only, at most 64")
    display_name = clean_display_name(display_name, username)
    check_password_policy(password)
    secret = new_totp_secret()
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    try:
        async with db.begin() as conn:
            await conn.execute(accounts_table.insert().values(
                username=username, display_name=display_name, role=role,
                password_hash=password_hash, totp_secret=sealer.seal(username, secret),
                languages=json.dumps(languages or []), created_day=date.today().isoformat()))
    except exc.IntegrityError:
        raise AccountError(f"an account named {username!r} exists already") from None
    return secret


async def get(db: AsyncEngine, username: str) -> Account | None:
    t = accounts_table.c
    async with db.connect() as conn:
        row = (await conn.execute(
            select(t.username, t.display_name, t.role, t.languages, t.disabled)
            .where(t.username == username))).first()
    if row is None:
        return None
    return Account(row.username, row.display_name, row.role,
                   json.loads(row.languages), bool(row.disabled))


async def list_all(db: AsyncEngine) -> list[Account]:
    t = accounts_table.c
    async with db.connect() as conn:
        rows = (await conn.execute(
            select(t.username, t.display_name, t.role, t.languages, t.disabled)
            .order_by(t.username))).all()
    return [Account(row.username, row.display_name, row.role, json.loads(row.languages),
                    bool(row.disabled)) for row in rows]


async def verify_login(
    db: AsyncEngine, username: str, password: str, code: str,
    now: float | None = None, *, sealer: TotpSealer,
) -> Account | None:
    """The account if password and TOTP both match and it is enabled; None otherwise.

    A TOTP code is accepted once: its time step is remembered, so a code seen over
    a shoulder cannot be replayed.
    """
    now = time.time() if now is None else now
    t = accounts_table.c
    async with db.connect() as conn:
        row = (await conn.execute(
            select(t.password_hash, t.totp_secret, t.totp_last_step, t.disabled)
            .where(t.username == username))).first()
    stored_hash = row.password_hash if row is not None else _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored_hash, password)
        password_ok = row is not None
    except (VerificationError, InvalidHashError):
        password_ok = False
    if not password_ok or row is None or row.disabled:
        return None
    step = _matching_step(sealer.open(username, row.totp_secret), code, now)
    if step is None or step <= row.totp_last_step:
        return None
    # One code, one login: a compare-and-set of the last used step in the database, so
    # that parallel logins which all read the old step before any wrote it cannot all win
    # (one UPDATE ... WHERE, atomic on SQLite and PostgreSQL alike).
    async with db.begin() as conn:
        won = (await conn.execute(
            update(accounts_table).where(t.username == username, t.totp_last_step < step)
            .values(totp_last_step=step))).rowcount == 1
    if not won:
        return None
    if _hasher.check_needs_rehash(stored_hash):
        new_hash = await asyncio.to_thread(_hasher.hash, password)
        async with db.begin() as conn:
            await conn.execute(update(accounts_table).where(t.username == username)
                               .values(password_hash=new_hash))
    return await get(db, username)


async def set_display_name(db: AsyncEngine, username: str, display_name: str) -> str:
    """Give an account the name visitors see (also for accounts from before display names)."""
    name = clean_display_name(display_name, username)
    async with db.begin() as conn:
        cur = await conn.execute(update(accounts_table)
                                 .where(accounts_table.c.username == username)
                                 .values(display_name=name))
    if cur.rowcount == 0:
        raise AccountError(f"no account named {username!r}")
    return name


async def set_disabled(db: AsyncEngine, username: str, disabled: bool) -> None:
    async with db.begin() as conn:
        cur = await conn.execute(update(accounts_table)
                                 .where(accounts_table.c.username == username)
                                 .values(disabled=int(disabled)))
        if cur.rowcount == 0:
            raise AccountError(f"no account named {username!r}")
        if disabled:
            await conn.execute(delete(sessions_table)
                               .where(sessions_table.c.username == username))


async def reset(db: AsyncEngine, username: str, password: str, *,
                sealer: TotpSealer) -> str:
    """New password and new TOTP secret; every session of the account ends."""
    check_password_policy(password)
    secret = new_totp_secret()
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with db.begin() as conn:
        cur = await conn.execute(
            update(accounts_table).where(accounts_table.c.username == username)
            .values(password_hash=password_hash, totp_secret=sealer.seal(username, secret),
                    totp_last_step=0))
        if cur.rowcount == 0:
            raise AccountError(f"no account named {username!r}")
        await conn.execute(delete(sessions_table).where(sessions_table.c.username == username))
    return secret


async def password_matches(db: AsyncEngine, username: str, password: str) -> bool:
    """The account's current password check (no TOTP): a password change's proof that the
    person at an open session knows it. As slow for an unknown or disabled account."""
    t = accounts_table.c
    async with db.connect() as conn:
        row = (await conn.execute(select(t.password_hash, t.disabled)
                                  .where(t.username == username))).first()
    stored_hash = row.password_hash if row is not None else _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return row is not None and not row.disabled


async def change_password(db: AsyncEngine, username: str, new_password: str,
                          key_record: dict[str, Any] | None, keep_token_hash: str) -> list[str]:
    """The account's own password change (docs/protocol.md E5, E12.5).

    The new hash and, if given, the counselor key record rewrapped under the new password
    are stored in one transaction, so that the password and the record that opens with it
    never part. The record must be of the key pair stored now (same kid): a change of key
    pair goes through `mailbox:keys`. Every other session of the account ends; the token
    hashes of those sessions are returned so that their sockets can be closed too."""
    check_password_policy(new_password)
    password_hash = await asyncio.to_thread(_hasher.hash, new_password)
    s, k = sessions_table.c, counselor_keys.c
    async with db.begin() as conn:
        if key_record is not None:
            stored = (await conn.execute(select(k.kid).where(k.username == username))).first()
            if stored is None or stored.kid != key_record["kid"]:
                raise AccountError("key: not the key pair stored for this account")
            await conn.execute(update(counselor_keys).where(k.username == username).values(
                pubkey=key_record["pubkey"],
                record=json.dumps(key_record, separators=(",", ":"))))
        cur = await conn.execute(update(accounts_table)
                                 .where(accounts_table.c.username == username)
                                 .values(password_hash=password_hash))
        if cur.rowcount == 0:
            raise AccountError(f"no account named {username!r}")
        others = [r.token_hash for r in (await conn.execute(
            select(s.token_hash).where(s.username == username,
                                       s.token_hash != keep_token_hash))).all()]
        if others:
            await conn.execute(delete(sessions_table).where(s.token_hash.in_(others)))
    return others
