"""At-rest encryption of counselors' notes: AES-256-GCM under a key kept outside the database.

A copy of the database alone (a backup, a stolen disk image of the data folder without
the key file, an operator browsing it) reads no note. On one machine the key file is
created once, with mode 0600; with several machines the operator distributes it
(key_files.py). It must be backed up apart from the database; losing it makes the notes
unreadable, which for notes that are purged after days anyway is the lesser harm.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tillit.counselor_console.key_files import KEY_BYTES, create_key_file, read_keyring

__all__ = ["KEY_BYTES", "NONCE_BYTES", "NoteCipher", "load_or_create_key"]
NONCE_BYTES = 12


def load_or_create_key(path: Path) -> bytes:
    """The sealing key in `path`; a new random one is written there (0600) if missing."""
    path = Path(path)
    if path.exists():
        return read_keyring(path)[0]
    return create_key_file(path)


def open_with_any(keys: Sequence[AESGCM], nonce: bytes, ct: bytes, ad: bytes) -> bytes:
    """Decrypt with the first key of the ring that opens it (the sealing key first)."""
    for aead in keys[:-1]:
        try:
            return aead.decrypt(nonce, ct, ad)
        except InvalidTag:
            continue
    return keys[-1].decrypt(nonce, ct, ad)


def keyring(keys: bytes | Sequence[bytes]) -> list[AESGCM]:
    return [AESGCM(k) for k in ([keys] if isinstance(keys, bytes) else keys)]


class NoteCipher:
    """Seals a note bound to its author and chat, so a swapped row does not open.

    Given a keyring, the first key seals and every key opens (rotation)."""

    def __init__(self, keys: bytes | Sequence[bytes]) -> None:
        self._keys = keyring(keys)

    @staticmethod
    def _ad(author: str, chat_ref: str) -> bytes:
        return f"tillit-note-v1|{author}|{chat_ref}".encode()

    def seal(self, author: str, chat_ref: str, text: str) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce, self._keys[0].encrypt(nonce, text.encode("utf-8"), self._ad(author, chat_ref))

    def open(self, author: str, chat_ref: str, nonce: bytes, ct: bytes) -> str:
        return open_with_any(self._keys, nonce, ct, self._ad(author, chat_ref)).decode("utf-8")
