"""Right law, right alarms: legal references, indicators, resources and their hours.

DOMAIN.md is the source: the duty to report is 19 kap. 1 § of the Social Services Act
(2025:400); 14 kap. 1 § of that act is something else and must never be cited for it.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from conftest import MakeCounselor, MakeVisitor, ServerProcess
from protocol_client import ok

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


# ---- 2. Suicidal thoughts raise the alarm --------------------------------------------------

VISITOR_LANGS = ("sv", "sv-x-easy", "en", "ar", "so", "fa", "prs", "ti",
                 "ckb", "kmr", "tr", "ps", "am")


def _suggest(text: str, lang: str | None) -> list[str]:
    from counselor_console.keywords import suggest

    return suggest(load_workflow().indicators, text, lang)


def test_self_harm_is_its_own_acute_indicator_first_with_keywords_in_every_language() -> None:
    wf = load_workflow()
    first = wf.indicators[0]
    assert (first["id"], first["group"], first["acute"]) == ("self_harm", "acute", True)
    assert "self_harm" in wf.acute_ids
    missing = [lang for lang in VISITOR_LANGS if not first["keywords"].get(lang)]
    assert not missing, missing
    assert {"sjalvmordslinjen", "bris"} <= set(first["resources"])


@pytest.mark.parametrize(("text", "lang"), [
    ("Jag vill ta livet av mig", "sv"),
    ("ibland tänker jag att jag ska ta livet av mig ikväll", None),
    ("jag orkar inte leva längre", "sv"),
    ("Jag vill dö", "sv-x-easy"),
    ("I want to kill myself", "en"),
    ("أريد أن أقتل نفسي", "ar"),
    ("أفكر في الانتحار", "ar"),
    ("Kendimi öldürmek istiyorum", "tr"),
])
def test_first_person_suicide_suggests_self_harm_and_not_a_threat_to_kill(
    text: str, lang: str | None
) -> None:
    hits = _suggest(text, lang)
    assert "self_harm" in hits and "threat_to_kill" not in hits, hits


@pytest.mark.parametrize(("text", "lang"), [
    ("Pappa sa att han ska döda mig", "sv"),
    ("De hotar att ta livet av henne", "sv"),
    ("my brother said he will kill me", "en"),
    ("قال أخي إنه سيقتلني", "ar"),
])
def test_a_threat_to_kill_is_still_one(text: str, lang: str) -> None:
    hits = _suggest(text, lang)
    assert "threat_to_kill" in hits and "self_harm" not in hits, hits


async def test_a_chat_marked_with_suicide_risk_and_put_back_in_the_queue_comes_first(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor(fresh_server)
    colleague = await make_counselor(fresh_server)
    returned_first, child, at_risk = [await make_visitor(fresh_server) for _ in range(3)]
    # An adult whose chat went back to the queue first, and a child waiting: both would
    # rank above a later returned adult on the old order.
    ok(await returned_first.start(lang="sv", age_group="18_25"))
    ok(await counselor.accept(returned_first.chat_id))
    await returned_first.wait_assigned()
    ok(await counselor.transfer(returned_first.chat_id, "queue"))
    await asyncio.sleep(0.02)
    ok(await child.start(lang="sv", age_group="13_15"))
    await asyncio.sleep(0.02)
    ok(await at_risk.start(lang="sv", age_group="18_25"))
    ok(await counselor.accept(at_risk.chat_id))
    await at_risk.wait_assigned()
    report = ok(await counselor.indicators(at_risk.chat_id, ["self_harm"]))["report"]
    assert report["acute"]
    ok(await counselor.transfer(at_risk.chat_id, "queue"))
    requeued = await at_risk.wait_for_event("chat:requeued")
    assert requeued["position"] == 1

    queue = ok(await colleague.queue_list())["queue"]
    assert [e["chat_id"] for e in queue] == [
        at_risk.chat_id, returned_first.chat_id, child.chat_id]
    assert queue[0]["acute"] is True and queue[1]["acute"] is False
    assert ok(await colleague.take_next())["chat_id"] == at_risk.chat_id
