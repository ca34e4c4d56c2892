"""Texts that visitor.js shows, as gettext msgids (English), translated per request.

The page passes them to the browser in its JSON data island, so that the script needs
no translation logic of its own. Placeholders are `{n}`, `{name}` and `{code}`; the
script fills them in. Texts with a number have plural forms (`CLIENT_PLURALS`): the
page sends every form of the language plus a table of which form each number takes,
so plurals stay correct in languages with more than two forms.
"""

from __future__ import annotations

import gettext
from typing import Any

CLIENT_TEXTS: dict[str, str] = {
    "connecting": "Connecting…",
    "queue_next": "You are next in the queue.",
    "queue_position": "You are number {n} in the queue.",
    "queue_waiting": "You are in the queue.",
    "wait_unknown": "We cannot say yet how long you will wait.",
    "connection_lost": "The connection was lost. Trying to connect again…",
    "connection_back": "You are connected again.",
    "no_crypto": "Your browser cannot lock the chat. Try another browser. "
    "If you are in danger, call 112.",
    "typing": "The counselor is writing…",
    "counselor_joined": "{name} has joined the chat.",
    "requeued": "Your counselor had to leave the chat. You are back in the queue, and another "
    "counselor will answer you.",
    "chatting_with": "You are chatting with {name}",
    "counselor_default": "your counselor",
    "key_changed": "The code has changed. Compare the new code: {code}",
    "label_you": "You",
    "label_counselor": "Counselor",
    "sending": "Sending…",
    "not_sent": "Not sent.",
    "err_rate_limited": "You are sending too fast. Wait a moment and try again.",
    "err_too_large": "The message is too long.",
    "err_busy": "Many people are writing right now. Your message will be sent in a moment.",
    "err_generic": "Something went wrong. Please try again.",
    "err_start": "The chat could not start right now. Please try again in a while. "
    "If you are in danger, call 112.",
    "undecryptable": "A message could not be shown.",
    "ended_visitor": "You ended the chat.",
    "ended_counselor": "The counselor ended the chat.",
    "ended_timeout": "The chat ended because the connection was lost for too long.",
    "ended_left_queue": "You left the queue.",
    "ended_unknown": "The chat has ended.",
    "feedback_missing": "Choose an answer first.",
    "feedback_thanks": "Thank you for your answer!",
    "answers_sent": "Thank you. The counselor can see your answers.",
}

CLIENT_PLURALS: dict[str, tuple[str, str]] = {
    "wait_minutes": (
        "Estimated wait: about {n} minute.",
        "Estimated wait: about {n} minutes.",
    ),
}

# The mailbox screens' texts (docs/protocol.md E12): not in the page's data island but
# in the fragment visitor/mailbox.js fetches when it is needed (GET /mailbox-view), so
# that they do not weigh on every visit. Keys become data-* attributes (a-z and -).
MAILBOX_TEXTS: dict[str, str] = {
    "making": "Making your code…",
    "opening": "Opening your mailbox…",
    "check_code": "Check the code. It has 16 letters and numbers.",
    "not_found": "No mailbox opens with this code. Check the code and try again.",
    "with": "Your counselor: {name}",
    "proposed": "Proposed time to chat: {time} ({n} min).",
    "sent": "Sent. The counselor will read it when they can.",
    "gone": "The mailbox has been deleted.",
    "deleted": "The mailbox and all its messages are deleted.",
}
MAILBOX_EXPIRY: tuple[str, str] = (
    "The mailbox deletes itself after {n} day without a visit.",
    "The mailbox deletes itself after {n} days without a visit.",
)

# Numbers 0..199 are tabulated; a larger n uses the entry of 100 + n % 100, which picks
# the same form under every gettext plural rule in use (they look at n % 10, n % 100
# and small values of n).
PLURAL_TABLE_SIZE = 200


def _plural_index(translations: gettext.NullTranslations, n: int) -> int:
    rule = getattr(translations, "plural", None)
    if rule is None:  # NullTranslations: English rule
        return 0 if n == 1 else 1
    return int(rule(n))


def client_texts(translations: gettext.NullTranslations) -> dict[str, Any]:
    """Everything visitor.js needs to speak the request's language."""
    texts = {key: translations.gettext(msgid) for key, msgid in CLIENT_TEXTS.items()}
    index = [_plural_index(translations, n) for n in range(PLURAL_TABLE_SIZE)]
    sample: dict[int, int] = {}
    for n, form in enumerate(index):
        sample.setdefault(form, n)
    forms = {
        key: [
            translations.ngettext(singular, plural, sample[form]) if form in sample else plural
            for form in range(max(index) + 1)
        ]
        for key, (singular, plural) in CLIENT_PLURALS.items()
    }
    return {"texts": texts, "plural_index": index, "plurals": forms}


def msgids() -> list[str | tuple[str, str]]:
    """Every msgid of this module, for the catalogue check."""
    return [*CLIENT_TEXTS.values(), *CLIENT_PLURALS.values(), *MAILBOX_TEXTS.values(),
            MAILBOX_EXPIRY]


def mailbox_texts(translations: gettext.NullTranslations) -> dict[str, Any]:
    """The mailbox fragment's texts, and the expiry sentence in every plural form of the
    language (indexed like `plural_index` of the page's data island)."""
    index = [_plural_index(translations, n) for n in range(PLURAL_TABLE_SIZE)]
    sample: dict[int, int] = {}
    for n, form in enumerate(index):
        sample.setdefault(form, n)
    expiry = [translations.ngettext(*MAILBOX_EXPIRY, sample[form]) if form in sample
              else MAILBOX_EXPIRY[1] for form in range(max(index) + 1)]
    texts = {key: translations.gettext(msgid) for key, msgid in MAILBOX_TEXTS.items()}
    return {"mailbox_texts": texts, "expiry_forms": expiry}
