"""Queue order, "take next", and honest waiting estimates."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable

from tillit.chat_server.model import Chat


def in_danger(chat: Chat) -> bool:
    """Danger now (the visitor said so) or an acute indicator marked, e.g. suicide risk."""
    return chat.answers.danger_now or chat.flags.acute


def urgency_key(chat: Chat) -> tuple[int, int, int, float]:
    """Danger now first, then chats returned to the queue, then children, then longest wait.

    "Danger now" includes a chat whose counselor marked an acute indicator (self-harm or
    suicide, a threat to kill, ...) and which then went back to the queue.

    A returned chat had a conversation going when its counselor was lost (or handed it
    back): it goes to the head of the queue, behind only someone in danger right now.
    """
    return (
        0 if in_danger(chat) else 1,
        0 if chat.flags.returned else 1,
        0 if chat.is_child else 1,
        chat.created_at,
    )


def pick_next(queue: Iterable[Chat], languages: Iterable[str], username: str | None = None,
              online: Callable[[str], bool] | None = None) -> Chat | None:
    """The chat "take next" gives a counselor.

    The urgency order decides; within the same urgency (danger now, returned, child) a
    chat in one of the counselor's languages comes before one in another language. A
    chat with no language stated counts as a match. No languages: plain urgency order.

    A returning contact offered first to its mailbox's counselor (`flags.prefer`) comes
    first for them, after danger now, and is skipped by colleagues while that counselor
    is `online`; once they are not, it is an ordinary returning chat of the queue.
    """
    spoken = frozenset(languages)

    def key(chat: Chat) -> tuple[int, int, int, int, int, float]:
        danger, returned, child, created = urgency_key(chat)
        lang = chat.answers.lang
        match = 0 if not spoken or lang is None or lang in spoken else 1
        mine = 0 if username is not None and chat.flags.prefer == username else 1
        return (danger, mine, returned, child, match, created)

    def reserved(chat: Chat) -> bool:
        prefer = chat.flags.prefer
        return (prefer is not None and prefer != username and online is not None
                and online(prefer))

    return min((c for c in queue if not reserved(c)), key=key, default=None)


class WaitEstimator:
    """Recent waiting times per language, so the estimate reflects this evening's queue."""

    def __init__(self, default_per_place_s: float, keep: int = 20) -> None:
        self.default_per_place_s = default_per_place_s
        self._by_lang: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=keep))
        self._all: deque[float] = deque(maxlen=keep)

    def record(self, lang: str | None, waited_s: float) -> None:
        self._all.append(waited_s)
        self._by_lang[lang or ""].append(waited_s)

    def estimate(self, chat: Chat, position: int, now: float | None = None) -> int:
        now = time.time() if now is None else now
        waited = now - chat.created_at
        recent = self._by_lang.get(chat.answers.lang or "") or self._all
        if len(recent) >= 3:
            typical = statistics.median(recent) * max(1, position) / max(1, min(position, 3))
        else:
            typical = self.default_per_place_s * max(1, position)
        return max(0, round(typical - waited))
