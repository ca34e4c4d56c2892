"""Settings as data: config/default.toml, the operator's tillit.toml and --config file, then
TILLIT_* variables (config_files.py says where each file comes from)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tillit.chat_server.config_files import PACKAGED_DIR as CONFIG_DIR
from tillit.chat_server.config_files import config_path, operator_settings_file
from tillit.chat_server.settings_table import (
    BY_NAME,
    SECTIONS,
    AbuseSettings,
    ChatSettings,
    ConsoleSettings,
    ContinuitySettings,
    CounselorSettings,
    HoursSettings,
    LimitsSettings,
    NotesSettings,
    QueueSettings,
    ResourcesSettings,
    RetentionSettings,
    SafetySettings,
    ServerSettings,
    SettingsError,
    SiteSettings,
    StatsSettings,
    check_value,
    from_text,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the `tillit` package
STATIC_DIR = PACKAGE_DIR / "static"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"  # always the shipped one: every key's default
VOCABULARIES = CONFIG_DIR / "vocabularies.toml"  # shipped; config_path() finds the one in use

# Shortcuts an operator expects (docs/operations.md, issue 6).
_ENV_ALIASES = {"TILLIT_STORE": "server.store", "TILLIT_REDIS_URL": "server.redis_url",
                "TILLIT_DATABASE_URL": "server.database_url"}
# TILLIT_* names that are not settings although they start like a section: the nginx
# template's placeholders (deploy/nginx/tillit.conf.template) may share the environment.
_NOT_SETTINGS = frozenset({"TILLIT_SERVER_NAME"})


def _merge(
    data: dict[str, dict[str, Any]], extra: dict[str, Any], where: str
) -> dict[str, dict[str, Any]]:
    """`data` with `extra`'s settings over it, each checked by name and type."""
    out = {section: dict(values) for section, values in data.items()}
    for section, values in extra.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise SettingsError(f"{where}: [{section}] is not a settings section (known: "
                                f"{', '.join(SECTIONS)})")
        for key, value in values.items():
            row = BY_NAME.get(f"{section}.{key}")
            if row is None:
                raise SettingsError(f"{where}: {section}.{key} is not a setting "
                                    "(docs/operations.md, \"Settings\", lists them)")
            out.setdefault(section, {})[key] = check_value(row, value, where)
    return out


def _from_env(data: dict[str, dict[str, Any]], environ: dict[str, str]) -> dict[str, Any]:
    """`data` with the TILLIT_<SECTION>_<KEY> variables over it, coerced by type.

    A variable that starts with a section's name but names no setting of it is refused
    (a typo must not leave a default silently in force); other TILLIT_* names (the test
    suite's, the nginx template's) are not settings and are left alone.
    """
    out = {section: dict(values) for section, values in data.items()}
    for name, raw in environ.items():
        if not name.startswith("TILLIT_") or name in _NOT_SETTINGS:
            continue
        dotted = _ENV_ALIASES.get(name)
        if dotted is None:
            section, _, key = name[len("TILLIT_"):].lower().partition("_")
            if section not in SECTIONS:
                continue
            dotted = f"{section}.{key}"
            if dotted not in BY_NAME:
                raise SettingsError(f"{name} names no setting: [{section}] has no {key!r} "
                                    "(docs/operations.md, \"Settings\", lists them)")
        section, key = dotted.split(".")
        out[section][key] = from_text(BY_NAME[dotted], raw, name)
    return out


def _build(data: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    sections = {}
    for section, cls in SECTIONS.items():
        values = data.get(section, {})
        missing = [f"{section}.{key}" for key in cls.__dataclass_fields__ if key not in values]
        if missing:
            raise SettingsError(f"{where} lacks {', '.join(missing)}")
        sections[section] = cls(**values)
    return sections


@dataclass(frozen=True)
class Settings:
    """Every setting, typed, by section (tillit/chat_server/settings_table.py)."""

    server: ServerSettings
    site: SiteSettings
    safety: SafetySettings
    resources: ResourcesSettings
    chat: ChatSettings
    limits: LimitsSettings
    queue: QueueSettings
    abuse: AbuseSettings
    hours: HoursSettings
    counselor: CounselorSettings
    retention: RetentionSettings
    notes: NotesSettings
    console: ConsoleSettings
    stats: StatsSettings
    continuity: ContinuitySettings
    vocab: dict[str, Any] = field(default_factory=dict)

    def value(self, dotted: str) -> Any:
        """A setting named at run time (e.g. resources.toml's `phone_setting`)."""
        if dotted not in BY_NAME:
            raise SettingsError(f"{dotted} is not a setting")
        section, key = dotted.split(".")
        return getattr(getattr(self, section), key)

    def section(self, name: str) -> dict[str, Any]:
        """One section as a dict, for code outside chat_server (tillit.safety)."""
        return asdict(getattr(self, name))

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    def vocab_ids(self, name: str) -> list[str]:
        return [entry["id"] for entry in self.vocab.get(name, [])]


def shipped_defaults() -> dict[str, dict[str, Any]]:
    """tillit/config/default.toml as written: the one place defaults are set."""
    with open(DEFAULT_CONFIG, "rb") as fh:
        return tomllib.load(fh)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """default.toml, the operator's tillit.toml (config_files.py), then `config_file`, then
    TILLIT_* variables, then `overrides` (the CLI's options); SettingsError names the first
    setting that is wrong."""
    data = _merge({}, shipped_defaults(), str(DEFAULT_CONFIG))
    for extra in (operator_settings_file(), config_file):
        if extra:
            with open(extra, "rb") as fh:
                data = _merge(data, tomllib.load(fh), str(extra))
    data = _from_env(data, dict(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides, "command line")
    with open(config_path("vocabularies.toml"), "rb") as fh:
        vocab = tomllib.load(fh)
    return Settings(**_build(data, str(DEFAULT_CONFIG)), vocab=vocab)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def public_origins(settings: Settings) -> list[str]:
    """`server.public_origins` as browsers write them in `Origin` ("https://host[:port]").

    Behind a TLS-terminating proxy the process sees plain http, so it cannot work out the
    visitors' origin from the request: Engine.IO would refuse every browser's WebSocket.
    The origins are therefore configured, checked here once at start-up and trusted.
    Outside `server.development` the list must not be empty and must be https; in
    development an empty list keeps the same-origin check on the request itself.
    """
    development = settings.server.development
    origins: list[str] = []
    for entry in settings.server.public_origins:
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
