"""Every setting, once: its section, name, type, unit and one line of help.

One frozen dataclass per `[section]` of tillit/config/default.toml; each field is one
setting and its type is the setting's type. Code reads settings as typed attributes
(`settings.chat.resume_window_s`), never as a string with a default at the call site.
The defaults themselves live in tillit/config/default.toml only, beside the operator's
comments (docs/operations.md, "Settings"): tests/test_settings_table.py checks that the
file and this table name the same settings with the same types, and that the docs'
table is the one `tillit settings` prints.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def setting(help: str, unit: str = "") -> Any:  # noqa: A002 - Datasette's word for it
    """A field of a section: no default here (default.toml has it), help and unit."""
    return field(metadata={"help": help, "unit": unit})


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("address the server listens on")
    port: int = setting("port the server listens on")
    data_dir: str = setting("folder of the SQLite files and key files")
    database_url: str = setting(
        "the durable database (accounts, audit, statistics); empty: SQLite in data_dir, "
        "or postgresql://user@host/db")
    store: str = setting('where open chats live: "sqlite" (one process) or "redis"')
    redis_url: str = setting("Redis to use with store = \"redis\"")
    redis_prefix: str = setting("key prefix in Redis, one per installation sharing it")
    redis_ttl_s: int = setting("how long a chat's Redis keys outlive their last write", "s")
    redis_max_connections: int = setting("Redis connections per process (a blocking pool)")
    redis_publish_recheck_s: float = setting(
        "a process alone on Redis stops publishing messages this long, then counts again",
        "s")
    ping_interval_s: float = setting("Engine.IO heartbeat interval; below any proxy's idle "
                                     "timeout", "s")
    ping_timeout_s: float = setting("a socket silent for interval + this is closed", "s")
    public_origins: list[str] = setting(
        'the addresses browsers open, e.g. ["https://chatt.example.se"]; required outside '
        "development")
    development: bool = setting("a laptop on http://127.0.0.1: relaxes production checks; "
                                "never in production")


@dataclass(frozen=True)
class SiteSettings:
    title: str = setting("the visitor page's title (lands in the browser's history)")
    visitor_path: str = setting('the visitor page\'s path, e.g. "/" or "/hej"')
    favicon: str = setting("the visitor page's icon, a same-origin path")
    default_lang: str = setting("the visitor page's language when none is asked for")
    languages: list[str] = setting("visitor languages offered (catalogues in "
                                   "tillit/config/locales/)")


@dataclass(frozen=True)
class SafetySettings:
    exit_url: str = setting("where the quick exit goes: a neutral, non-personalised site")


@dataclass(frozen=True)
class ResourcesSettings:
    social_services_number: str = setting(
        "the region's social services on-call number as people dial it; required outside "
        "development; never 112")


@dataclass(frozen=True)
class ChatSettings:
    resume_window_s: float = setting("how long a visitor whose connection dropped can resume",
                                   "s")
    sweep_interval_s: float = setting("how often timed-out chats end and presence is stamped",
                                      "s")
    max_text_chars: int = setting("longest text a message may carry", "characters")
    max_ct_bytes: int = setting("largest envelope ciphertext (base64url text)", "bytes")
    default_wait_per_place_s: float = setting("estimated wait per queue place without recent "
                                            "history", "s")


@dataclass(frozen=True)
class LimitsSettings:
    events_per_s: float = setting("events per socket per second (token bucket rate)", "1/s")
    events_burst: float = setting("events one socket may send at once (bucket size)")
    chat_messages_per_s: float = setting("messages per chat per second, both sides", "1/s")
    chat_messages_burst: float = setting("messages one chat may send at once (bucket size)")
    max_connections: int = setting("anonymous sockets per process (visitors, unjoined)")
    max_staff_connections: int = setting("counselor sockets per process, counted apart")
    namespace_join_s: float = setting("a connection in no namespace this long is closed", "s")
    max_payload_bytes: int = setting("largest Socket.IO frame; a larger one closes its socket",
                                     "bytes")
    shed_loop_lag_ms: float = setting("event loop lag past which new work gets busy (0: off)",
                                    "ms")
    shed_store_backlog: int = setting("writes waiting for the store past which new work gets "
                                      "busy (0: off)")


@dataclass(frozen=True)
class QueueSettings:
    max_length: int = setting("chats waiting at most; past it chat:start answers busy")
    gone_visitor_s: float = setting("a waiting chat whose visitor is gone leaves the queue after "
                                  "this", "s")
    push_interval_s: float = setting("at most one queue push per this interval", "s")


@dataclass(frozen=True)
class AbuseSettings:
    pow_bits_base: int = setting("proof-of-work bits asked at normal load", "bits")
    pow_fill_steps: list[str] = setting('"fill:bits" steps by queue fill')
    pow_rate_steps: list[str] = setting('"starts:bits" steps by chats started in the last '
                                        "minute")
    pow_max_bits: int = setting("the proof-of-work's ceiling", "bits")
    pow_ttl_s: float = setting("how long a challenge may be solved and used", "s")
    pow_used_max: int = setting("solved challenges remembered in one process (SQLite store)")


_DAY = 'opening hours as "HH:MM-HH:MM" ranges; empty: closed'


@dataclass(frozen=True)
class HoursSettings:
    timezone: str = setting("the time zone of the opening hours")
    mon: list[str] = setting(f"Monday's {_DAY}")
    tue: list[str] = setting(f"Tuesday's {_DAY}")
    wed: list[str] = setting(f"Wednesday's {_DAY}")
    thu: list[str] = setting(f"Thursday's {_DAY}")
    fri: list[str] = setting(f"Friday's {_DAY}")
    sat: list[str] = setting(f"Saturday's {_DAY}")
    sun: list[str] = setting(f"Sunday's {_DAY}")
    closed_dates: list[str] = setting('whole days closed, as "YYYY-MM-DD"')


@dataclass(frozen=True)
class CounselorSettings:
    max_parallel_chats: int = setting("chats one counselor may hold at once")
    grace_s: float = setting("a counselor gone this long has their chats put back in the queue",
                           "s")
    chat_roles: list[str] = setting("roles that may take chats from the queue")


@dataclass(frozen=True)
class RetentionSettings:
    ciphertext_grace_s: float = setting("how long ciphertext may stay after a chat ends", "s")
    notes_days: float = setting("counselors' notes are deleted this long after writing", "days")
    audit_days: float = setting("audit entries are deleted this long after writing (0: kept)",
                              "days")
    purge_every_s: float = setting("how often the purge job runs", "s")


@dataclass(frozen=True)
class NotesSettings:
    key_file: str = setting("the notes' AES-GCM key file; empty: <data_dir>/notes.key")
    max_chars: int = setting("longest note", "characters")


@dataclass(frozen=True)
class ConsoleSettings:
    lang: str = setting('the console\'s language ("sv" or "en")')
    totp_key_file: str = setting("the key sealing TOTP secrets; empty: <data_dir>/totp.key")
    session_max_age_s: float = setting("a console session ends this long after login", "s")
    session_idle_s: float = setting("a console session ends after this long without a request",
                                  "s")
    session_check_s: float = setting("how often open console sockets' sessions are re-read",
                                     "s")
    login_failures_per_account: int = setting("failed logins per username and window before "
                                              "429")
    login_window_s: float = setting("the window of login_failures_per_account", "s")
    login_concurrent_checks: int = setting("password checks running at once per process")
    login_max_names: int = setting("usernames whose failures are kept in memory")
    login_audit_interval_s: float = setting("one login.summary audit row per this interval", "s")


@dataclass(frozen=True)
class StatsSettings:
    min_cell: int = setting('counts below this are shown as "<min_cell"')
    min_base_pct: int = setting("no percentage rests on fewer chats than this")
    region: str = setting('the county or region, e.g. "AB Stockholms län"')
    min_wait_s_unanswered: float = setting("an unanswered chat counts only if its visitor waited "
                                         "this long", "s")
    apart_outcomes: list[str] = setting("closing outcomes counted apart from every figure")


@dataclass(frozen=True)
class ContinuitySettings:
    idle_days: int = setting("a mailbox untouched this long deletes itself, with its notes",
                             "days")
    max_messages: int = setting("most messages a mailbox holds")
    pow_bits_base: int = setting("proof-of-work bits asked for mailbox:create and mailbox:open")
    pow_fail_steps: list[str] = setting(
        '"failed opens in the last minute:bits" steps raising pow_bits_base')
    open_per_id: int = setting("mailbox:open/create per mailbox id and open_window_s")
    open_window_s: float = setting("the window of open_per_id", "s")


# The sections in default.toml's order: `Settings` (settings.py) has one attribute each.
SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "site": SiteSettings,
    "safety": SafetySettings,
    "resources": ResourcesSettings,
    "chat": ChatSettings,
    "limits": LimitsSettings,
    "queue": QueueSettings,
    "abuse": AbuseSettings,
    "hours": HoursSettings,
    "counselor": CounselorSettings,
    "retention": RetentionSettings,
    "notes": NotesSettings,
    "console": ConsoleSettings,
    "stats": StatsSettings,
    "continuity": ContinuitySettings,
}


class Setting(NamedTuple):
    """One row of the table."""

    name: str  # "section.key"
    type: Any  # int, float, str, bool or list[str]
    help: str
    unit: str

    @property
    def env(self) -> str:
        return "TILLIT_" + self.name.replace(".", "_").upper()


def _rows() -> tuple[Setting, ...]:
    rows = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            rows.append(Setting(f"{section}.{f.name}", hints[f.name], f.metadata["help"],
                                f.metadata["unit"]))
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _rows()
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A setting the service cannot run with: `tillit serve` prints it and exits."""


def type_name(kind: Any) -> str:
    """What a value of `kind` is, for an error message."""
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        kind, "a list of strings")


def check_value(row: Setting, value: Any, where: str) -> Any:
    """`value` (as TOML gives it) if it has the row's type; SettingsError naming `where`."""
    kind = row.type
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool or kind is int or kind is str or kind is float:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SettingsError(f"{row.name} ({where}) must be {type_name(kind)}, not {value!r}")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def from_text(row: Setting, raw: str, variable: str) -> Any:
    """A TILLIT_* variable's text as the row's type; SettingsError naming the variable."""
    kind = row.type
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise SettingsError(
            f"{variable}={raw!r}: {row.name} must be {type_name(kind)}"
        ) from None
    if kind is str:
        return raw
    return [part.strip() for part in raw.split(",") if part.strip()]


def markdown_table(defaults: dict[str, dict[str, Any]]) -> str:
    """docs/operations.md's settings table: name, type, default, unit, help."""
    lines = ["| setting | type | default | unit | what |", "| --- | --- | --- | --- | --- |"]
    for row in SETTINGS:
        section, key = row.name.split(".")
        default = defaults[section][key]
        shown = _toml_literal(default)
        kind = "list" if row.type not in (int, float, str, bool) else row.type.__name__
        lines.append(f"| `{row.name}` | {kind} | `{shown}` | {row.unit} | "
                     f"{row.help.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return repr(value)
