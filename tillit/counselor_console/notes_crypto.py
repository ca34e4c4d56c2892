"""At-rest encryption of counselors' notes: AES-256-GCM under a key kept outside the database.

A copy of the database alone (a backup, a stolen disk image of the data folder without
the key file, an operator browsing it) reads no note. The key file is created once, with
mode 0600, and must be backed up apart from the database; losing it makes the notes
unreadable, which for notes that are purged after days anyway is the lesser harm.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`; a new random one is written there (0600) if the file is missing."""
    path = Path(path)
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path}: a key file must hold exactly {KEY_BYTES} bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class NoteCipher:
    """Seals a note bound to its author and chat, so a swapped row does not open."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _ad(author: str, chat_ref: str) -> bytes:
        return f"tillit-note-v1|{author}|{chat_ref}".encode()

    def seal(self, author: str, chat_ref: str, text: str) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, text.encode("utf-8"), self._ad(author, chat_ref))

    def open(self, author: str, chat_ref: str, nonce: bytes, ct: bytes) -> str:
        return self._aead.decrypt(nonce, ct, self._ad(author, chat_ref)).decode("utf-8")
