"""TOTP secrets encrypted at rest: AES-256-GCM under a key kept outside the database.

The database is backed up daily; with the secrets in clear, a copy of a backup plus a
leaked password would be a working login. Sealed, a backup alone holds no usable second
factor. The key file (`console.totp_key_file`, default <data_dir>/totp.key, mode 0600)
is a keyring like the notes key's (counselor_console/key_files.py: distributed by the
operator when several machines share the database) and must be backed up apart from
the database. `tillit keys rotate-totp` re-seals every secret under a new first key.
Secrets written in clear by older versions are sealed in place
at start-up (`seal_clear_secrets`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.chat_server.settings import Settings
from tillit.counselor_console.key_files import KeyConfigError, load_keyring
from tillit.counselor_console.notes_crypto import NONCE_BYTES, keyring, open_with_any
from tillit.durable.engine import checkpoint
from tillit.durable.schema import accounts

PREFIX = "v1:"  # base32 (a clear secret) never contains ':'


class TotpSealer:
    """Seals a TOTP secret bound to its account, so a row copied to another does not open.

    Given a keyring, the first key seals and every key opens (`reseal_all` rotates)."""

    def __init__(self, keys: bytes | Sequence[bytes]) -> None:
        self._keys = keyring(keys)

    @staticmethod
    def _ad(username: str) -> bytes:
        return f"tillit-totp-v1|{username}".encode()

    def seal(self, username: str, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[0].encrypt(nonce, secret.encode("ascii"), self._ad(username))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, username: str, stored: str) -> str:
        """The secret in clear; a legacy clear value is returned as it is."""
        if not is_sealed(stored):
            return stored
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        return open_with_any(self._keys, raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                             self._ad(username)).decode("ascii")


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


TOTP_SEALER = web.AppKey("totp_sealer", TotpSealer)


def totp_key_path(settings: Settings) -> Path:
    """`console.totp_key_file`, or <data_dir>/totp.key: outside the database, by design."""
    configured = settings.console.totp_key_file
    return Path(configured).expanduser() if configured else settings.data_dir / "totp.key"


def load_sealer(settings: Settings) -> TotpSealer:
    """The sealer under the configured keyring (key_files.py: created, 0600, on first use
    only on one machine; with `server.database_url` set it must be distributed)."""
    return TotpSealer(load_keyring(
        settings.console.totp_key_file, settings.data_dir / "totp.key",
        shared=bool(settings.server.database_url.strip()), setting="console.totp_key_file"))


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
    try:
        sealer = load_sealer(settings)
    except KeyConfigError as exc:
        raise KeyFileMissing(str(exc)) from None
    await seal_clear_secrets(db, sealer)
    return sealer


async def _any_sealed(db: AsyncEngine) -> bool:
    sealed = accounts.c.totp_secret.startswith(PREFIX, autoescape=True)
    async with db.connect() as conn:
        return (await conn.execute(
            select(accounts.c.username).where(sealed).limit(1))).first() is not None


async def reseal_all(db: AsyncEngine, sealer: TotpSealer) -> int:
    """Seal every secret again under the keyring's first key (after a new key was put
    first); returns how many. Then the old key can leave the keyring."""
    t = accounts.c
    async with db.begin() as conn:
        rows = (await conn.execute(select(t.username, t.totp_secret))).all()
        for row in rows:
            await conn.execute(
                update(accounts).where(t.username == row.username,
                                       t.totp_secret == row.totp_secret)
                .values(totp_secret=sealer.seal(row.username,
                                                sealer.open(row.username, row.totp_secret))))
    if rows:
        await checkpoint(db)
    return len(rows)


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
