"""Queue order and honest waiting estimates."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict, deque

from chat_server.model import Chat


def urgency_key(chat: Chat) -> tuple[int, int, float]:
    """Danger now first, then children, then whoever has waited longest."""
    return (0 if chat.meta.get("danger_now") else 1, 0 if chat.is_child else 1, chat.created_at)


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
        recent = self._by_lang.get(chat.meta.get("lang") or "") or self._all
        if len(recent) >= 3:
            typical = statistics.median(recent) * max(1, position) / max(1, min(position, 3))
        else:
            typical = self.default_per_place_s * max(1, position)
        return max(0, round(typical - waited))
