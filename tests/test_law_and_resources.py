"""Right law, right alarms: legal references, indicators, resources and their hours.

DOMAIN.md is the source: the duty to report is 19 kap. 1 § of the Social Services Act
(2025:400); 14 kap. 1 § of that act is something else and must never be cited for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from protocol_client import ok
from support import PRODUCTION_ENV, ROOT, MakeCounselor, MakeVisitor, ServerProcess, free_port

from tillit.chat_server.settings import CONFIG_DIR
from tillit.counselor_console.workflow_config import load_workflow

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
    from tillit.counselor_console.keywords import suggest

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


# ---- 3. Resources: the right centre, honest hours, a real regional number -------------------

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _page(settings_env: dict[str, str], lang: str, when: dt.datetime) -> dict:
    from tillit.chat_server import visitor_help
    from tillit.chat_server.i18n import get_translations
    from tillit.chat_server.settings import load_settings

    settings = load_settings(environ=settings_env)
    tr = get_translations(lang, "visitor")
    context = visitor_help.help_context(settings, lang, tr, now=when)
    return {r["label"]: r for r in context["resources"]}


def test_a_line_outside_its_hours_is_shown_closed_with_its_hours() -> None:
    tuesday_late = dt.datetime(2026, 11, 24, 22, 30, tzinfo=STOCKHOLM)
    tuesday_noon = dt.datetime(2026, 11, 24, 12, 0, tzinfo=STOCKHOLM)
    late, noon = _page({}, "sv", tuesday_late), _page({}, "sv", tuesday_noon)
    men = "Stödlinjen för män: 020-80 80 80"
    assert late[men]["closed_now"] and late[men]["hours"] == "Öppet: alla dagar 07:00–21:00"
    assert not noon[men]["closed_now"] and noon[men]["hours"] == late[men]["hours"]
    trans = "Stödlinjen för transpersoner: 020-55 00 00"
    assert late[trans]["closed_now"] and "11:00–19:00" in late[trans]["hours"]
    # Lines open all day and night carry no hours and are never "closed now".
    assert not late["BRIS: 116 111"]["closed_now"] and not late["BRIS: 116 111"]["hours"]
    assert not late["Självmordslinjen: 90101"]["closed_now"]


def test_the_professionals_line_of_nch_keeps_its_three_mornings() -> None:
    from tillit.chat_server.i18n import get_translations
    from tillit.chat_server.visitor_help import resource_hours, resource_status

    wf = load_workflow()
    nch = next(r for r in wf.resources if r["id"] == "nch_professionals")
    hours = resource_hours(nch)
    assert hours is not None
    assert hours.is_open(dt.datetime(2026, 11, 25, 10, 0, tzinfo=STOCKHOLM))  # Wednesday
    assert not hours.is_open(dt.datetime(2026, 11, 26, 10, 0, tzinfo=STOCKHOLM))  # Thursday
    text, closed = resource_status(nch, "en", get_translations("en", "visitor"),
                                   dt.datetime(2026, 11, 26, 10, 0, tzinfo=STOCKHOLM))
    assert closed and text == "Open: Mon, Wed, Fri 09:00–12:00"


def test_nch_is_not_called_nck_and_the_new_resources_exist() -> None:
    from tillit.chat_server.i18n import get_translations

    sv = get_translations("sv", "visitor").gettext
    label = sv("NCH support line for professionals: 010-223 57 60")
    assert label.startswith("NCH") and "NCK" not in label
    ids = {r["id"] for r in load_workflow().resources}
    assert {"sjalvmordslinjen", "terrafem", "tris", "elektra", "rfsl"} <= ids


def test_the_social_services_on_call_is_the_operators_number_never_112() -> None:
    wf = load_workflow()
    [entry] = [r for r in wf.resources if r["id"] == "socialjour"]
    assert "112" not in (entry.get("phone", ""), entry.get("display_phone", ""))
    when = dt.datetime(2026, 11, 24, 12, 0, tzinfo=STOCKHOLM)
    unset = _page({"TILLIT_SERVER_DEVELOPMENT": "true"}, "en", when)
    assert "Social services on-call (socialjour)" not in unset
    set_ = _page({"TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER": "020-11 22 33"}, "en", when)
    entry = set_["Social services on-call (socialjour)"]
    assert (entry["phone"], entry["display_phone"]) == ("0201122 33".replace(" ", ""),
                                                        "020-11 22 33")


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tillit", "serve", "--host", "127.0.0.1", "--port",
         str(free_port()), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env={**base, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_the_server_refuses_to_start_without_the_regional_number_outside_development(
    tmp_path: Path,
) -> None:
    env = dict(PRODUCTION_ENV)
    del env["TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER"]
    proc = _serve(tmp_path, env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "resources.social_services_number" in err.decode()
    assert "TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER" in err.decode()


def test_a_production_server_with_the_number_starts_and_shows_it(tmp_path: Path) -> None:
    srv = ServerProcess(
        tmp_path, {**PRODUCTION_ENV, "TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER": "020-11 22 33"}
    )
    srv.start()
    try:
        with urllib.request.urlopen(f"{srv.base_url}/?lang=sv", timeout=30) as res:
            page = res.read().decode()
    finally:
        srv.stop()
    assert 'href="tel:0201122 33"'.replace(" ", "") in page and "020-11 22 33" in page
    assert "Stängt nu." in page or "Öppet: alla dagar 07:00–21:00" in page


# ---- 4. Promise only what can be kept; 5. the wording in every visitor language -------------


def test_the_page_promises_to_try_to_tell_first_not_to_tell_first() -> None:
    from tillit.chat_server.i18n import get_translations
    from tillit.chat_server.visitor_pages import TEMPLATES_DIR

    template = (TEMPLATES_DIR / "visitor.html").read_text(encoding="utf-8")
    assert "we will tell you first" not in template
    assert "we try to tell you first" in template
    msgid = next(line for line in template.splitlines() if "we try to tell you first" in line)
    msgid = msgid.split('_("', 1)[1].split('")', 1)[0]
    assert "försöker" in get_translations("sv", "visitor").gettext(msgid)


def test_the_duty_wording_exists_in_every_visitor_language_at_the_laws_threshold() -> None:
    wording = load_workflow().inform_wording
    missing = [lang for lang in VISITOR_LANGS if not wording.get(lang, "").strip()]
    assert not missing, missing
    # Each is its own text, not a silent copy of the English one.
    copies = [lang for lang in VISITOR_LANGS if lang != "en" and wording[lang] == wording["en"]]
    assert not copies, copies
    assert "får veta eller misstänker" in wording["sv"] and "förstår att" not in wording["sv"]
    assert "learn of or suspect" in wording["en"] and "understand that" not in wording["en"]
    # No promise that cannot hold after a quick exit or in acute danger.
    assert "try to" in wording["en"] and "försöker" in wording["sv"]
    assert "behind your back" not in wording["en"]


# ---- 14. The threat model says what the encryption and the safety code can do ---------------


def test_the_threat_model_and_the_page_are_honest_about_the_safety_code() -> None:
    from tillit.chat_server.visitor_pages import TEMPLATES_DIR

    doc = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    for needed in ("leaked database", "honest-but-curious operator", "altered JavaScript",
                   "spyware", "cannot reveal an active man in the middle", "737 392"):
        assert needed in doc, needed
    template = (TEMPLATES_DIR / "visitor.html").read_text(encoding="utf-8")
    assert "nobody else can read the chat" not in template
    assert "How private is the chat?" in template


async def test_a_visitor_who_chooses_the_self_harm_topic_ranks_like_danger_now(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor(fresh_server)
    child, at_risk = await make_visitor(fresh_server), await make_visitor(fresh_server)
    ok(await child.start(lang="sv", age_group="13_15", topics=["control"]))
    await asyncio.sleep(0.02)
    ok(await at_risk.start(lang="ar", age_group="18_25", topics=["self_harm"]))
    queue = ok(await counselor.queue_list())["queue"]
    assert [e["chat_id"] for e in queue] == [at_risk.chat_id, child.chat_id]
    assert queue[0]["acute"] is True
    accepted = ok(await counselor.take_next())
    assert accepted["chat_id"] == at_risk.chat_id
    # The console opens with the indicator marked: the acute banner and its numbers.
    assert accepted["report"]["indicators"] == ["self_harm"] and accepted["report"]["acute"]
    report = ok(await counselor.indicators(at_risk.chat_id, []))["report"]
    assert not report["acute"]  # the counselor may unmark it
