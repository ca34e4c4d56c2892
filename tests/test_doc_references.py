"""Every document the code and docs refer to is in the repository.

PROTOCOL.md, DESIGN.md and PERFORMANCE.md were design notes outside it; the protocol is
docs/protocol.md and the measured facts the code relies on are in docs/architecture.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GONE = ("PROTOCOL.md", "DESIGN.md", "PERFORMANCE.md")


def test_no_file_refers_to_a_document_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".ico", ".woff2", ".mo"} or not path.is_file():
            continue
        if path == Path(__file__).resolve():  # names them to look for them
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}: {doc}" for doc in GONE if doc in text]
    assert not found, "\n".join(found)
