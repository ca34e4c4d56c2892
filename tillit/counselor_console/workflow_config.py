"""The console's vocabularies as data: indicators, reporting, canned responses, closing form.

Everything an operator may correct without code (DOMAIN.md: "every legal reference,
number and list lives in config/ as data") is read here from config/*.toml, once, and
shared by the server's validation and the console page.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tillit.chat_server.config_files import config_path

FILES = ("indicators", "reporting", "canned_responses", "closing_form", "resources")


@dataclass(frozen=True)
class Workflow:
    indicators: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    receivers: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    canned: list[dict[str, Any]]
    canned_fallback: str
    resources: list[dict[str, Any]]
    legal_reference: str
    police_reference: str
    others_reference: str
    inform_wording: dict[str, str]
    anonymous_routine: list[str]
    acute_ids: frozenset[str] = field(default_factory=frozenset)

    def ids(self, name: str) -> list[str]:
        return [entry["id"] for entry in getattr(self, name)]

    def decision(self, decision_id: str) -> dict[str, Any]:
        return next(d for d in self.decisions if d["id"] == decision_id)


def _read(config_dir: Path | None, name: str) -> dict[str, Any]:
    path = config_dir / f"{name}.toml" if config_dir else config_path(f"{name}.toml")
    with open(path, "rb") as fh:
        return tomllib.load(fh)


@lru_cache(maxsize=4)
def load_workflow(config_dir: Path | None = None) -> Workflow:
    """The workflow from `config_dir` (tests), else the operator's files over the defaults."""
    data = {name: _read(config_dir, name) for name in FILES}
    ind, rep = data["indicators"], data["reporting"]
    group_ids = {g["id"] for g in ind["groups"]}
    for entry in ind["indicators"]:
        if entry["group"] not in group_ids:
            raise ValueError(f"indicator {entry['id']!r}: unknown group {entry['group']!r}")
    return Workflow(
        indicators=ind["indicators"],
        groups=ind["groups"],
        decisions=rep["decisions"],
        receivers=rep["receivers"],
        reasons=rep["reasons"],
        channels=rep.get("channels", []),
        outcomes=data["closing_form"]["outcomes"],
        canned=data["canned_responses"]["canned"],
        canned_fallback=data["canned_responses"].get("fallback", "en"),
        resources=data["resources"]["resources"],
        legal_reference=rep["legal_reference"],
        police_reference=rep.get("police_reference", ""),
        others_reference=rep.get("others_reference", ""),
        inform_wording=dict(rep["inform_wording"]),
        anonymous_routine=list(rep["anonymous_routine"]),
        acute_ids=frozenset(e["id"] for e in ind["indicators"] if e.get("acute")),
    )
