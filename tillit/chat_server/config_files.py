"""Where each configuration file comes from: the operator's folder first, then the default.

The defaults (settings, vocabularies, resources, the law's wording, catalogues) ship
inside the package, so an installed Tillit runs from any working directory. An operator
changes them without touching the installed package: a folder named by `--config-dir`
or `TILLIT_CONFIG_DIR` (e.g. /etc/tillit) holds `tillit.toml` (settings) and any shipped
file it replaces, under the same relative path (`resources.toml`,
`locales/sv/LC_MESSAGES/visitor.po`). A file the folder does not hold is the default.

The folder is read from the environment at each lookup, not kept in a global, so every
process of one installation (and each test server) resolves the same way; `tillit`
sets the variable from `--config-dir` before anything is read.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_VAR = "TILLIT_CONFIG_DIR"
# The operator's settings file inside the folder (the same keys as default.toml).
SETTINGS_FILE = "tillit.toml"


def operator_dir() -> Path | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    return Path(raw).expanduser().resolve() if raw else None


def config_path(relative: str) -> Path:
    """The operator's copy of `relative` if the folder holds one, else the shipped default."""
    folder = operator_dir()
    if folder is not None:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return PACKAGED_DIR / relative


def operator_settings_file() -> Path | None:
    folder = operator_dir()
    if folder is None:
        return None
    candidate = folder / SETTINGS_FILE
    return candidate if candidate.is_file() else None


def locale_names() -> set[str]:
    """Language folders under locales/, shipped or the operator's."""
    names: set[str] = set()
    for base in (PACKAGED_DIR, operator_dir()):
        if base is not None and (base / "locales").is_dir():
            names.update(p.name for p in (base / "locales").iterdir() if p.is_dir())
    return names
