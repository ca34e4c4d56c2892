"""Keeping a long-running server's memory and pauses flat.

Two things decide both over an evening (PERFORMANCE.md finding 1, bench/README.md):

* Python's cyclic garbage collector: a full collection walks every object, which with
  thousands of sockets is a pause of hundreds of ms. The start-up objects are frozen
  out of its reach and collections are made rarer.
* glibc's heap: every message passes through strings and buffers of 0.5–2 KiB, which
  Python takes from malloc, not from its own small-object arenas. Freed, they leave
  holes between longer-lived blocks that malloc keeps instead of giving back, so the
  process grew by about a MiB a minute while the Python heap stayed flat.
  `malloc_trim(0)` hands whole free pages back to the kernel; once a minute it takes
  about a millisecond.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def tune_collector() -> None:
    """Freezes what start-up made and makes collections rarer (PERFORMANCE.md 1)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # The SQLite writer thread needs the GIL between statements; at the default 5 ms
    # switch interval a busy event loop makes each group commit wait (bench/README.md).
    sys.setswitchinterval(0.0005)


def heap_trimmer() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


async def trim_heap_forever(interval_s: float) -> None:
    """Gives freed heap pages back every `interval_s` seconds (0: never)."""
    trim = heap_trimmer()
    if trim is None or interval_s <= 0:
        return
    while True:
        await asyncio.sleep(interval_s)
        started = time.perf_counter()
        trim()
        took_ms = (time.perf_counter() - started) * 1000
        if took_ms > 20:
            log.warning("returning freed memory took %.0f ms", took_ms)
