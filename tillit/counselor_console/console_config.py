"""The console page's JSON configuration: vocabularies, workflow data and texts.

Shipped in the `tillit-config` data island, so the console can suggest indicators from
keywords *locally* (the keywords travel to the browser; text and hits never travel
back), offer canned responses and referral cards in the visitor's language, and show
the acute-danger numbers, all without asking the server.
"""

from __future__ import annotations

from typing import Any

from tillit.chat_server.i18n import available_languages, get_translations
from tillit.chat_server.settings import Settings
from tillit.chat_server.visitor_help import configured, resource_hours, resource_status
from tillit.counselor_console.workflow_config import Workflow


def _labelled(entries: list[dict[str, Any]], gettext: Any) -> list[dict[str, Any]]:
    return [{"id": e["id"], "label": gettext(e["label"])} for e in entries]


def resource_card(entry: dict[str, Any], tr: Any, lang: str = "en") -> dict[str, Any]:
    """A referral card exactly as the visitor page shows it (`type: resource`); a line
    with set hours carries them in its text, since the visitor may read it later."""
    card: dict[str, Any] = {"type": "resource", "title": tr.gettext(entry["label"])}
    phone = entry.get("display_phone") or entry.get("phone")
    if phone:
        card["phone"] = phone
    if entry.get("url"):
        card["url"] = entry["url"]
    hours_line, _ = resource_status(entry, lang, tr, None)
    text = " ".join(t for t in (tr.gettext(entry["description"]) if entry.get("description")
                                else "", hours_line) if t)
    if text:
        card["text"] = text
    return card


def _week(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A line's hours for console.js to tell "closed now" itself: the page stays open."""
    hours = resource_hours(entry)
    if hours is None:
        return None
    return {"timezone": hours.zone.key,
            "week": [[list(r) for r in hours.week_ranges[day]] for day in
                     ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]}


def workflow_config(settings: Settings, workflow: Workflow, lang: str) -> dict[str, Any]:
    """What console.js needs of the workflow, labels in the console's language `lang`."""
    gettext = get_translations(lang, "console").gettext
    vtr = get_translations(lang, "visitor")  # resource texts live there
    vgettext = vtr.gettext
    resources = configured(workflow.resources, settings)
    visitor_langs = settings.vocab_ids("languages")
    with_catalogue = set(available_languages("visitor"))
    cards: dict[str, list[dict[str, Any]]] = {}
    for vlang in visitor_langs:
        card_lang = vlang if vlang in with_catalogue else "en"
        tr = get_translations(card_lang, "visitor")
        cards[vlang] = [{"id": e["id"], "audience": e.get("audience", "all"),
                         "card": resource_card(e, tr, card_lang)} for e in resources]
    by_id = {e["id"]: e for e in resources}

    def numbers(ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": i, "label": vgettext(by_id[i]["label"]), "audience":
                 by_id[i].get("audience", "all"),
                 "phone": by_id[i].get("display_phone") or by_id[i].get("phone") or ""}
                for i in ids if i in by_id]

    canned = []
    for entry in workflow.canned:
        texts = dict(entry.get("text", {}))
        canned.append({"id": entry["id"], "label": gettext(entry["label"]), "text": texts})
    return {
        "indicators": [
            {"id": e["id"], "group": e["group"], "acute": bool(e.get("acute")),
             "label": gettext(e["label"]), "keywords": e.get("keywords", {}),
             "exclude": e.get("exclude", {}), "resources": numbers(e.get("resources", []))}
            for e in workflow.indicators
        ],
        "indicator_groups": [
            {"id": g["id"], "label": gettext(g["label"]),
             "prompt": gettext(g["prompt"]) if g.get("prompt") else ""}
            for g in workflow.groups
        ],
        "decisions": [
            {**d, "label": gettext(d["label"])} for d in workflow.decisions
        ],
        "receivers": _labelled(workflow.receivers, gettext),
        "reasons": _labelled(workflow.reasons, gettext),
        "channels": _labelled(workflow.channels, gettext),
        "outcomes": _labelled(workflow.outcomes, gettext),
        "canned": canned,
        "canned_fallback": workflow.canned_fallback,
        "resources": [{"id": e["id"], "label": vgettext(e["label"]),
                       "hours": resource_status(e, lang, vtr, None)[0], "open": _week(e)}
                      for e in resources],
        "cards": cards,
        # The acute-danger banner: resources marked `acute = true` in config/resources.toml.
        "acute_numbers": [
            {"id": e["id"], "label": vgettext(e["label"]),
             "phone": e.get("display_phone") or e.get("phone")}
            for e in resources if e.get("acute")
        ],
        "legal_reference": workflow.legal_reference,
        "police_reference": workflow.police_reference,
        "others_reference": workflow.others_reference,
        "inform_wording": workflow.inform_wording,
        "anonymous_routine": [gettext(step) for step in workflow.anonymous_routine],
        "max_parallel": settings.counselor.max_parallel_chats,
        "max_note_chars": settings.notes.max_chars,
    }
