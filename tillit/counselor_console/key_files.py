"""Key files that the operator distributes: one keyring per purpose (notes, TOTP secrets).

A key file holds either 32 raw bytes (the file one machine made for itself on first
start) or a keyring: one base64 key per line, `#` comments allowed. The first key seals;
every key opens, so a new key is put first and the old one stays below it until nothing
sealed with it is left (docs/operations.md, "Keys").

On one machine (no `server.database_url`) a missing key file is created in the data
folder, as before. With a shared database (several machines) the same keys must be on
every machine, so the files must be named explicitly and exist: a machine that made its
own key would seal what no other machine can open. `tillit keys generate` makes a line.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

KEY_BYTES = 32


class KeyConfigError(RuntimeError):
    """A key file that is missing, malformed, or not named where it must be."""


def new_key_line() -> str:
    """A fresh random key as one keyring line (base64 of 32 bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_keyring(raw: bytes, where: str) -> list[bytes]:
    """The keys of a key file's content, the sealing key first."""
    if len(raw) == KEY_BYTES:
        return [raw]
    try:
        lines = raw.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise KeyConfigError(f"{where}: neither {KEY_BYTES} raw bytes nor base64 lines") from None
    keys = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise KeyConfigError(f"{where}: a line is not base64") from None
        if len(key) != KEY_BYTES:
            raise KeyConfigError(f"{where}: every key must be {KEY_BYTES} bytes")
        keys.append(key)
    if not keys:
        raise KeyConfigError(f"{where}: no key in the file")
    return keys


def read_keyring(path: Path) -> list[bytes]:
    return parse_keyring(Path(path).read_bytes(), str(path))


def create_key_file(path: Path) -> bytes:
    """A new random raw key written to `path` (0600, never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_keyring(configured: str, default: Path, shared: bool, setting: str) -> list[bytes]:
    """The keyring of `setting` (its value `configured`, else `default`).

    `shared` (a shared durable database): the file must be configured and present; it
    is never created. Otherwise a missing default file is created (one machine)."""
    if shared:
        if not configured.strip():
            raise KeyConfigError(
                f"{setting} must name a key file when server.database_url is set: every "
                "machine needs the same keys (make one with `tillit keys generate`)")
        path = Path(configured).expanduser()
        if not path.is_file():
            raise KeyConfigError(f"{setting}: {path} is missing (it is never created when "
                                 "server.database_url is set: copy the distributed file)")
        return read_keyring(path)
    path = Path(configured).expanduser() if configured.strip() else default
    if path.exists():
        return read_keyring(path)
    return [create_key_file(path)]
