"""TOTP secrets encrypted at rest: AES-256-GCM under a key kept outside the database.

The database is backed up daily; with the secrets in clear, a copy of a backup plus a
leaked password would be a working login. Sealed, a backup alone holds no usable second
factor. The key file (`console.totp_key_file`, default <data_dir>/totp.key, mode 0600)
is made like the notes key (counselor_console/notes_crypto.py) and must be backed up
apart from the database. Secrets written in clear by older versions are sealed in place
at start-up (`seal_clear_secrets`).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.chat_server.settings import Settings
from tillit.counselor_console.notes_crypto import NONCE_BYTES, load_or_create_key
from tillit.durable.engine import checkpoint
from tillit.durable.schema import accounts

PREFIX = "v1:"  # base32 (a clear secret) never contains ':'


class TotpSealer:
    """Seals a TOTP secret bound to its account, so a row copied to another does not open."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _ad(username: str) -> bytes:
        return f"tillit-totp-v1|{username}".encode()

    def seal(self, username: str, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("ascii"), self._ad(username))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, username: str, stored: str) -> str:
        """The secret in clear; a legacy clear value is returned as it is."""
        if not is_sealed(stored):
            return stored
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                  self._ad(username)).decode("ascii")


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


TOTP_SEALER = web.AppKey("totp_sealer", TotpSealer)


def totp_key_path(settings: Settings) -> Path:
    """`console.totp_key_file`, or <data_dir>/totp.key: outside the database, by design."""
    configured = settings.console.totp_key_file
    return Path(configured).expanduser() if configured else settings.data_dir / "totp.key"


def load_sealer(settings: Settings) -> TotpSealer:
    """The sealer under the configured key file (created, 0600, on first use)."""
    return TotpSealer(load_or_create_key(totp_key_path(settings)))


class KeyFileMissing(RuntimeError):
    """Sealed secrets in the database but no key file: a new key would open none of them."""


async def open_sealer(db: AsyncEngine, settings: Settings) -> TotpSealer:
    """The sealer for this database, after sealing any clear secret left by older versions.

    Refuses to make a new key when the database already holds sealed secrets (a data
    folder restored without its key file), rather than locking every account out."""
    path = totp_key_path(settings)
    if not path.exists() and await _any_sealed(db):
        raise KeyFileMissing(
            f"{path} is missing but the database holds TOTP secrets sealed with it: restore "
            "the key file from its backup (or set console.totp_key_file)")
    sealer = TotpSealer(load_or_create_key(path))
    await seal_clear_secrets(db, sealer)
    return sealer


async def _any_sealed(db: AsyncEngine) -> bool:
    sealed = accounts.c.totp_secret.startswith(PREFIX, autoescape=True)
    async with db.connect() as conn:
        return (await conn.execute(
            select(accounts.c.username).where(sealed).limit(1))).first() is not None


async def seal_clear_secrets(db: AsyncEngine, sealer: TotpSealer) -> int:
    """Seal every secret still stored in clear, in place; returns how many.

    `secure_delete` (on for this database) zeroes the old cell and the truncating
    checkpoint empties the write-ahead log, so no clear copy stays in the files."""
    t = accounts.c
    async with db.begin() as conn:
        rows = (await conn.execute(select(t.username, t.totp_secret).where(
            ~t.totp_secret.startswith(PREFIX, autoescape=True)))).all()
        for row in rows:
            await conn.execute(
                update(accounts).where(t.username == row.username,
                                       t.totp_secret == row.totp_secret)
                .values(totp_secret=sealer.seal(row.username, row.totp_secret)))
    if rows:
        await checkpoint(db)
    return len(rows)
