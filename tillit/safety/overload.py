"""Past capacity, say `busy` instead of letting every chat slow down.

When more messages arrive than one process can relay, nothing is refused by the
token buckets (each chat stays within its own allowance), but the event loop falls
behind: every message of every chat waits longer, and memory grows with the backlog.
This monitor measures how late the loop wakes up and how many writes wait for the
store; past either limit (`[limits]` in config/) `msg:send`, `typing` and `chat:start`
are answered `busy` without being handled, so what is accepted is still relayed
promptly. The visitor's page sends a refused message again by itself a moment later
(docs/protocol.md: the same envelope, so never stored twice). Ending a chat, quick exit,
resume and everything a counselor does to finish a chat are never refused here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable

log = logging.getLogger(__name__)

# Events refused while overloaded: new work that can wait a moment without harm.
SHED_EVENTS = frozenset({"msg:send", "typing", "chat:start"})
SMOOTHING = 0.2  # weight of the newest lag sample
BUSY_MESSAGE = "the service is very busy right now; try again in a moment"
BUSY_ACK = json.dumps(
    [{"ok": False, "error": {"code": "busy", "message": BUSY_MESSAGE}}], separators=(",", ":")
)
# A Socket.IO event frame as it arrives (Engine.IO "4" message, Socket.IO "2" event,
# namespace, ack id), far enough to see the event's name.
_EVENT_FRAME = re.compile(r'42(/[a-z]+,)?([0-9]*)\["([a-z:]+)"')


class LoadMonitor:
    """`busy` while the loop wakes `max_lag_s` late on average or `max_backlog` writes
    wait (a limit of 0 or less is off); checked every `interval_s`.

    Measured on this machine (bench/README.md): at 2 000 messages/s the loop wakes
    0.4 ms late at the median and 7 ms at p99; at twice its capacity, 72 ms and more.
    """

    def __init__(self, max_lag_s: float, max_backlog: int,
                 backlog: Callable[[], int] = lambda: 0, interval_s: float = 0.05) -> None:
        self.max_lag_s = max_lag_s
        self.max_backlog = max_backlog
        self.backlog = backlog
        self.interval_s = interval_s
        self.lag_s = 0.0
        self.busy = False
        self.shed = 0  # events refused in the current busy spell

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, loop.time() - start - self.interval_s)
            # Smoothed, so that one pause (a collection, a burst of connects) does not
            # refuse anyone, while a loop that stays late does.
            self.lag_s += SMOOTHING * (lag - self.lag_s)
            self._update()

    def _update(self) -> None:
        backlog = self.backlog()
        busy = (0 < self.max_lag_s < self.lag_s) or (0 < self.max_backlog < backlog)
        if busy and not self.busy:
            log.warning("over capacity: refusing new messages with busy "
                        "(loop %.0f ms late, %d writes waiting)", self.lag_s * 1000, backlog)
        elif self.busy and not busy:
            log.warning("back under capacity after refusing %d events", self.shed)
            self.shed = 0
        self.busy = busy

    def refuse(self, event: str) -> bool:
        """True if `event` is to be answered `busy` now."""
        if self.busy and event in SHED_EVENTS:
            self.shed += 1
            return True
        return False


def refuse_before_decoding(monitor: LoadMonitor) -> Callable[[str], str | None]:
    """For the transport: while busy, the Socket.IO answer to a frame that is to be
    refused, read from the frame's first bytes without decoding it ("" for an event
    that asked for no answer), else None.

    A refusal that goes through JSON decoding, a handler task and an encoded ack cost
    a third of serving the message; past capacity every resend then added to the load
    it was refused for, and at 1.1 times capacity the server delivered a quarter of
    what it could (bench/README.md).
    """

    def screen(frame: str) -> str | None:
        if not monitor.busy:
            return None
        found = _EVENT_FRAME.match(frame)
        if found is None or not monitor.refuse(found.group(3)):
            return None
        namespace, ack_id = found.group(1) or "", found.group(2)
        return f"3{namespace}{ack_id}{BUSY_ACK}" if ack_id else ""

    return screen
