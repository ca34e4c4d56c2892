"""chat_server/memory.py: the heap trim gives freed memory back to the system.

The server's own growth (about a MiB a minute of freed, unreturned heap under steady
traffic) shows only over many minutes, so it is measured by bench/ (the soak); here a
separate Python process makes the same kind of holes quickly and checks that one trim
hands them back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chat_server.memory import heap_trimmer

ROOT = Path(__file__).resolve().parent.parent

FRAGMENT_AND_TRIM = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from chat_server.memory import heap_trimmer

def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

# Message-sized blocks (1.5 KiB, from malloc, not Python's arenas), one in fifty kept:
# what is freed sits between kept blocks, so malloc cannot shrink its heap by itself.
kept, passing = [], []
for i in range(60_000):
    passing.append(bytes(1500))
    if i % 50 == 0:
        kept.append(bytes(1500))
del passing
before = rss_kib()
heap_trimmer()()
print(before, rss_kib())
"""


@pytest.mark.skipif(heap_trimmer() is None, reason="no malloc_trim in this C library")
def test_a_trim_returns_freed_heap_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", FRAGMENT_AND_TRIM], capture_output=True,
                         text=True, check=True, timeout=60)
    before, after = (int(n) for n in out.stdout.split())
    assert before - after > 40 * 1024, (before, after)  # of the ~86 MiB freed
