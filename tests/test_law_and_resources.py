"""Right law, right alarms: legal references, indicators, resources and their hours.

DOMAIN.md is the source: the duty to report is 19 kap. 1 § of the Social Services Act
(2025:400); 14 kap. 1 § of that act is something else and must never be cited for it.
"""

from __future__ import annotations

import re

from chat_server.settings import CONFIG_DIR, ROOT
from counselor_console.workflow_config import load_workflow

# "14 kap. 1 §" is only right when it names the OLD act (2001:453), for past events.
OLD_ACT_CITATION = re.compile(r"14\s*kap\.?\s*1\s*§[^.;]{0,40}2001:453")
ANY_14_1 = re.compile(r"14\s*kap\.?\s*1\s*§")


def _scanned_files() -> list:
    files = [*CONFIG_DIR.glob("*.toml"), *CONFIG_DIR.glob("locales/*/LC_MESSAGES/*.po"),
             *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    return [f for f in files if f.exists()]


def test_the_duty_to_report_cites_19_kap_1_and_never_14_kap_1_of_the_new_act() -> None:
    wf = load_workflow()
    assert "19 kap. 1 § socialtjänstlagen (2025:400)" in wf.legal_reference
    assert "19 kap. 4 §" in wf.others_reference
    offenders = []
    for path in _scanned_files():
        text = path.read_text(encoding="utf-8")
        for match in ANY_14_1.finditer(text):
            if not OLD_ACT_CITATION.match(text, match.start()):
                where = text[match.start():match.start() + 60]
                offenders.append(f"{path.relative_to(ROOT)}: {where!r}")
    assert not offenders, offenders


def test_the_docs_give_the_legal_basis_of_the_anonymity() -> None:
    ops = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "14 kap. 4 §" in ops and "14 kap. 5 §" in ops
