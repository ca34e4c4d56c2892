"""Settings as data: config/default.toml, the operator's tillit.toml and --config file, then
TILLIT_* variables (config_files.py says where each file comes from)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tillit.chat_server.config_files import PACKAGED_DIR as CONFIG_DIR
from tillit.chat_server.config_files import config_path, operator_settings_file

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the `tillit` package
STATIC_DIR = PACKAGE_DIR / "static"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"  # always the shipped one: every key's default
VOCABULARIES = CONFIG_DIR / "vocabularies.toml"  # shipped; config_path() finds the one in use

# Shortcuts an operator expects (docs/operations.md, issue 6).
_ENV_ALIASES = {"TILLIT_STORE": ("server", "store"), "TILLIT_REDIS_URL": ("server", "redis_url")}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        return float(raw)
    if isinstance(like, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _from_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    out = {section: dict(values) for section, values in data.items()}
    for name, value in environ.items():
        if not name.startswith("TILLIT_"):
            continue
        if name in _ENV_ALIASES:
            section, key = _ENV_ALIASES[name]
        else:
            parts = name[len("TILLIT_"):].lower().split("_", 1)
            if len(parts) != 2 or parts[0] not in out or parts[1] not in out[parts[0]]:
                continue
            section, key = parts
        out[section][key] = _coerce(value, out[section].get(key, ""))
    return out


@dataclass
class Settings:
    """All settings, by section, as loaded; `get` reads `section.key`."""

    data: dict[str, Any]
    vocab: dict[str, Any] = field(default_factory=dict)

    def get(self, dotted: str, default: Any = None) -> Any:
        section, _, key = dotted.partition(".")
        return self.data.get(section, {}).get(key, default)

    @property
    def data_dir(self) -> Path:
        return Path(self.get("server.data_dir")).expanduser().resolve()

    def vocab_ids(self, name: str) -> list[str]:
        return [entry["id"] for entry in self.vocab.get(name, [])]


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    with open(DEFAULT_CONFIG, "rb") as fh:
        data = tomllib.load(fh)
    for extra in (operator_settings_file(), config_file):
        if extra:
            with open(extra, "rb") as fh:
                data = _merge(data, tomllib.load(fh))
    data = _from_env(data, dict(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    with open(config_path("vocabularies.toml"), "rb") as fh:
        vocab = tomllib.load(fh)
    return Settings(data=data, vocab=vocab)


class SettingsError(ValueError):
    """A setting the service cannot run with: `tillit serve` prints it and exits."""


_DEFAULT_PORTS = {"https": 443, "http": 80}


def public_origins(settings: Settings) -> list[str]:
    """`server.public_origins` as browsers write them in `Origin` ("https://host[:port]").

    Behind a TLS-terminating proxy the process sees plain http, so it cannot work out the
    visitors' origin from the request: Engine.IO would refuse every browser's WebSocket.
    The origins are therefore configured, checked here once at start-up and trusted.
    Outside `server.development` the list must not be empty and must be https; in
    development an empty list keeps the same-origin check on the request itself.
    """
    raw = settings.get("server.public_origins") or []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    development = bool(settings.get("server.development"))
    origins: list[str] = []
    for entry in raw:
        origins.append(_normalise_origin(entry, development))
    if not origins and not development:
        raise SettingsError(
            "server.public_origins is empty: set it to the address visitors and counselors "
            'open, e.g. public_origins = ["https://chatt.example.se"] (or '
            "TILLIT_SERVER_PUBLIC_ORIGINS=https://chatt.example.se); without it every "
            "browser's connection is refused (docs/operations.md, \"nginx in front\")"
        )
    return origins


def _normalise_origin(entry: object, development: bool) -> str:
    """'https://Chatt.Example.se:443/' -> 'https://chatt.example.se'; SettingsError if bad."""
    def bad(why: str) -> SettingsError:
        return SettingsError(
            f"server.public_origins: {entry!r} {why}; write each as \"https://host\" or "
            "\"https://host:port\" (scheme and host only, as the browser's address bar shows)"
        )

    if not isinstance(entry, str) or not entry.strip():
        raise bad("is not a non-empty string")
    try:
        parts = urlsplit(entry.strip())
        port = parts.port
    except ValueError:
        raise bad("is not a URL") from None
    allowed = ("https", "http") if development else ("https",)
    if parts.scheme not in allowed:
        raise bad("must start with https:// (TLS ends at the proxy)"
                  if not development else "must start with https:// or http://")
    host = parts.hostname or ""
    if not host or host == "*" or parts.username or parts.password:
        raise bad("has no plain host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("has more than scheme, host and port")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"
