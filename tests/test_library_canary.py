"""Canary: the private names of python-engineio, python-socketio, bidict and aiosqlite
that the transport layer (tillit/chat_server/transport/: engineio_socket.py,
local_fanout.py, redis_fanout.py, aiosqlite_fastpath.py) relies on still exist.

Those modules subclass the libraries and reach past their public API for speed
(docs/architecture.md). A new release may rename any of it; the pins in pyproject.toml
bound the versions, and this test says which name went missing when someone widens them,
before a transport test fails in a way that is hard to read.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

import aiosqlite
import bidict
import pytest
import socketio
from engineio import async_server, async_socket
from engineio import exceptions as eio_exceptions
from socketio import packet as sio_packet

# (where it is looked up, the name, the module of ours that relies on it)
ENGINEIO = "tillit/chat_server/transport/engineio_socket.py"
FANOUT = "tillit/chat_server/transport/local_fanout.py"
REDIS = "tillit/chat_server/transport/redis_fanout.py"
AIOSQLITE = "tillit/chat_server/transport/aiosqlite_fastpath.py"


def _relied_on() -> list[tuple[str, Any, str, str]]:
    """(library, owner, name, user) for every name we rely on, private or not."""
    eio_socket = async_socket.AsyncSocket
    eio_server = async_server.AsyncServer
    return [
        ("python-engineio", eio_socket, "check_ping_timeout", ENGINEIO),
        ("python-engineio", eio_socket, "_websocket_handler", ENGINEIO),
        ("python-engineio", eio_socket, "receive", ENGINEIO),
        ("python-engineio", eio_socket, "close", ENGINEIO),
        ("python-engineio", eio_socket, "poll", ENGINEIO),
        # What LeanSocket reads and writes on the library's own socket after the class swap.
        ("python-engineio", eio_socket, "queue", ENGINEIO),
        ("python-engineio", eio_socket, "connected", ENGINEIO),
        ("python-engineio", eio_socket, "upgraded", ENGINEIO),
        ("python-engineio", eio_socket, "closed", ENGINEIO),
        ("python-engineio", eio_socket, "server", ENGINEIO),
        ("python-engineio", eio_server, "ping_interval", ENGINEIO),
        ("python-engineio", eio_server, "ping_timeout", ENGINEIO),
        ("python-engineio", eio_server, "_trigger_event", ENGINEIO),
        ("python-engineio", eio_server, "_handle_connect", ENGINEIO),
        ("python-engineio", eio_server, "reason", ENGINEIO),
        ("python-engineio", eio_server.reason, "TRANSPORT_CLOSE", ENGINEIO),
        ("python-engineio", eio_exceptions, "QueueEmpty", ENGINEIO),
        ("python-engineio", eio_exceptions, "UnknownPacketError", ENGINEIO),
        ("python-engineio", eio_exceptions, "SocketIsClosedError", ENGINEIO),
        ("python-socketio", socketio.AsyncServer, "_engineio_server_class", ENGINEIO),
        ("python-socketio", socketio.AsyncServer, "_send_eio_packet", FANOUT),
        ("python-socketio", socketio.AsyncServer, "packet_class", FANOUT),
        ("python-socketio", socketio.AsyncManager, "rooms", FANOUT),
        ("python-engineio", eio_server, "sockets", ENGINEIO),
        ("python-engineio", eio_server, "max_http_buffer_size", ENGINEIO),
        ("python-socketio", sio_packet.Packet, "json", FANOUT),
        ("python-socketio", sio_packet.Packet, "data_is_binary", FANOUT),
        ("python-socketio", sio_packet.Packet, "decode", FANOUT),
        ("bidict", bidict.bidict, "_fwdm", FANOUT),
        ("python-socketio", socketio.AsyncRedisManager, "_publish", REDIS),
        ("python-socketio", socketio.AsyncRedisManager, "_listen", REDIS),
        ("python-socketio", socketio.AsyncRedisManager, "_redis_connect", REDIS),
        # The manager's own JSON module (5.16.1 on); before it, messages went unread.
        ("python-socketio", socketio.AsyncManager, "json", REDIS),
        ("aiosqlite", aiosqlite.Connection, "_execute", AIOSQLITE),
        ("aiosqlite", aiosqlite.Connection, "_conn", AIOSQLITE),
    ]


# Keyword arguments our overrides pass or take: a changed signature breaks them as surely.
PARAMETERS = [
    ("python-engineio", async_socket.AsyncSocket.close, ("wait", "abort", "reason"), ENGINEIO),
]


def _instance(owner: type) -> Any:
    """Instance attributes are only on an instance: make one as the app does."""
    if owner is socketio.AsyncServer:
        return socketio.AsyncServer(async_mode="aiohttp")
    if owner is async_server.AsyncServer:
        return async_server.AsyncServer(async_mode="aiohttp")
    if owner in (bidict.bidict, socketio.AsyncManager):
        return owner()
    if owner is async_socket.AsyncSocket:
        return owner(async_server.AsyncServer(async_mode="aiohttp"), "canary")
    return None


def _has(owner: Any, name: str) -> bool:
    if hasattr(owner, name):
        return True
    instance = _instance(owner) if isinstance(owner, type) else None
    return instance is not None and hasattr(instance, name)


def missing_names() -> list[str]:
    """One line per name that is gone, saying which library, which name and who needs it."""
    missing = []
    for library, owner, name, user in _relied_on():
        if not _has(owner, name):
            label = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
            missing.append(f"{library} {version(library)} has no {label}.{name} "
                           f"(used by {user})")
    for library, func, names, user in PARAMETERS:
        params = inspect.signature(func).parameters
        for name in names:
            if name not in params:
                missing.append(f"{library} {version(library)}: {func.__qualname__} takes no "
                               f"{name!r} argument (used by {user})")
    return missing


def test_every_private_library_name_we_rely_on_still_exists() -> None:
    missing = missing_names()
    assert not missing, (
        "A library no longer has a name Tillit's transport relies on; adapt the module named "
        "or keep the upper bound in pyproject.toml:\n  " + "\n  ".join(missing)
    )


def test_the_canary_names_a_name_that_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(async_socket.AsyncSocket, "check_ping_timeout")
    monkeypatch.delattr(socketio.AsyncServer, "_send_eio_packet")
    missing = missing_names()
    assert len(missing) == 2, missing
    assert ("AsyncSocket.check_ping_timeout (used by "
            "tillit/chat_server/transport/engineio_socket.py)") in missing[0]
    assert ("AsyncServer._send_eio_packet (used by "
            "tillit/chat_server/transport/local_fanout.py)") in missing[1]
    assert missing[0].startswith(f"python-engineio {version('python-engineio')} has no")


def test_a_library_socket_becomes_a_lean_socket_in_place() -> None:
    """The class swap in LeanEngineServer._trigger_event: the library's socket, as
    `_handle_connect` made it, takes LeanSocket's class and keeps its state."""
    from tillit.chat_server.transport.engineio_socket import LeanSocket

    server = async_server.AsyncServer(async_mode="aiohttp")
    sock = async_socket.AsyncSocket(server, "canary")
    queue = sock.queue
    sock.__class__ = LeanSocket
    assert isinstance(sock, LeanSocket)
    assert sock.queue is queue and sock.server is server and not sock.closed
    assert sock._idle_limit() == server.ping_interval + server.ping_timeout


async def test_a_group_commit_is_one_trip_to_aiosqlites_thread(tmp_path: Any) -> None:
    """aiosqlite_fastpath.commit_runs takes the fast path with the installed aiosqlite,
    writes every run in one transaction, and rolls all of it back when one write fails."""
    from tillit.chat_server.transport import aiosqlite_fastpath

    conn = await aiosqlite.connect(tmp_path / "canary.sqlite3", isolation_level=None)
    try:
        assert aiosqlite_fastpath.has_fast_path(conn), (
            f"aiosqlite {version('aiosqlite')}: Connection._execute or ._conn is gone "
            f"(used by {AIOSQLITE}); group commits fall back to one trip per statement")
        await conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        await aiosqlite_fastpath.commit_runs(conn, [
            ("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")]),
            ("UPDATE t SET v = ? WHERE k = ?", [("c", 2)]),
        ])
        assert await conn.execute_fetchall("SELECT k, v FROM t ORDER BY k") == [(1, "a"), (2, "c")]
        with pytest.raises(Exception, match="UNIQUE"):
            await aiosqlite_fastpath.commit_runs(conn, [
                ("INSERT INTO t VALUES (?, ?)", [(3, "d")]),
                ("INSERT INTO t VALUES (?, ?)", [(1, "again")]),
            ])
        assert await conn.execute_fetchall("SELECT count(*) FROM t") == [(2,)]
        assert not conn.in_transaction
    finally:
        await conn.close()


def test_ci_lowest_pins_every_lower_bound_of_pyproject() -> None:
    """`make test-lowest` must test exactly the lower bounds pyproject.toml declares."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    declared = {}
    for spec in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, lower = re.fullmatch(  # type: ignore[union-attr]
            r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?>=([^,]+),<.+", spec).groups()
        declared[name.lower()] = lower
    pinned = {}
    for line in (root / "ci" / "lowest.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, exact = line.partition("==")
            pinned[name.lower()] = exact
    assert set(pinned) == set(declared)
    for name, lower in declared.items():
        # 3.9 is pinned as 3.9.0, 5.0.1 as 5.0.1: the pin is the bound's first release.
        assert pinned[name].split(".")[: len(lower.split("."))] == lower.split("."), name
