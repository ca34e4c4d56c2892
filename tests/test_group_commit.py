"""Group commit (tillit/chat_server/stores/group_commit.py): nobody is told "written" before
their batch is, batches are applied in the order writes came, a failed batch fails
only its own writers, and closing leaves no writer waiting for ever.

`apply` here is a stand-in for the disk that the test can hold and break: the one
thing a running service never does on purpose.
"""

from __future__ import annotations

import asyncio

import pytest

from tillit.chat_server.stores import StoreUnavailable
from tillit.chat_server.stores.group_commit import GroupCommit


class HeldDisk:
    """Records each batch; holds a batch until released; fails batches on request."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.written: list[str] = []
        self.gates: list[asyncio.Event] = []
        self.fail_next = False

    async def apply(self, batch: list[str]) -> list[str]:
        self.started.append(batch)
        gate = asyncio.Event()
        self.gates.append(gate)
        fail, self.fail_next = self.fail_next, False
        await gate.wait()
        if fail:
            raise OSError("disk full")
        self.written.extend(batch)
        return [f"ok:{w}" for w in batch]


async def until(condition, what: str) -> None:  # noqa: ANN001 - a small test helper
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(what)


@pytest.mark.parametrize("depth", [1, 2])
async def test_batches_in_flight_never_exceed_depth_and_land_in_order(depth: int) -> None:
    disk = HeldDisk()
    commits = GroupCommit(disk.apply, "test", depth=depth)
    commits.start()
    try:
        first = asyncio.ensure_future(commits.submit("a"))
        await until(lambda: len(disk.started) == 1, "first batch started")
        rest = [asyncio.ensure_future(commits.submit(w)) for w in ("b", "c")]
        await asyncio.sleep(0.02)
        assert len(disk.started) == depth  # a second batch starts only with depth 2
        assert commits.backlog == 3
        assert not first.done()  # not written yet, so not acknowledged
        while not all(f.done() for f in [first, *rest]):
            for gate in disk.gates:
                gate.set()
            await asyncio.sleep(0.005)
        assert [f.result() for f in [first, *rest]] == ["ok:a", "ok:b", "ok:c"]
        assert disk.written == ["a", "b", "c"]
        assert commits.backlog == 0
    finally:
        await commits.stop()


async def test_a_failed_batch_fails_its_own_writers_only() -> None:
    disk = HeldDisk()
    commits = GroupCommit(disk.apply, "test", depth=2)
    commits.start()
    try:
        disk.fail_next = True
        doomed = asyncio.ensure_future(commits.submit("a"))
        await until(lambda: len(disk.started) == 1, "first batch started")
        fine = asyncio.ensure_future(commits.submit("b"))
        await until(lambda: len(disk.started) == 2, "second batch started")
        for gate in disk.gates:
            gate.set()
        with pytest.raises(OSError):
            await doomed
        assert await fine == "ok:b"
        assert disk.written == ["b"]
        assert commits.backlog == 0
    finally:
        await commits.stop()


async def test_closing_answers_every_waiting_writer() -> None:
    disk = HeldDisk()
    commits = GroupCommit(disk.apply, "test", depth=1)
    commits.start()
    in_flight = asyncio.ensure_future(commits.submit("a"))
    await until(lambda: len(disk.started) == 1, "first batch started")
    queued = asyncio.ensure_future(commits.submit("b"))
    await asyncio.sleep(0.01)
    await commits.stop()
    for writer in (in_flight, queued):
        with pytest.raises(StoreUnavailable):
            await writer
    assert disk.written == []
