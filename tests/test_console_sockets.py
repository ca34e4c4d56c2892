"""Console sockets end with their session: logout, disable and reset disconnect them,
a session ended elsewhere is caught by the periodic check, and only chat roles hear
the live queue."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest
from protocol_client import CounselorClient, VisitorClient, ok
from support import (
    REDIS_URL,
    TEST_USER_AGENT,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    start_server,
)

CSRF_JSON = re.compile(r'"csrf_token": "([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def sock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The periodic check is slow here (60 s): what is seen within seconds is the
    immediate path. Chats of a counselor gone return to the queue after 2 s."""
    srv = start_server(tmp_path_factory.mktemp("tillit-sock"), {
        "TILLIT_CONSOLE_SESSION_CHECK_S": "60",
        "TILLIT_COUNSELOR_GRACE_S": "2",
        "TILLIT_CHAT_SWEEP_INTERVAL_S": "1",
    })
    yield srv
    srv.stop()


def http(cookie: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"User-Agent": TEST_USER_AGENT, "Cookie": f"tillit_session={cookie}"},
        cookie_jar=aiohttp.DummyCookieJar())


async def until(check: Callable[[], bool], wait_s: float) -> float:
    """Seconds until `check()` held (polling); fails after `wait_s`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > wait_s:
            raise AssertionError(f"not within {wait_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def chat_between(counselor: CounselorClient, visitor: VisitorClient) -> str:
    ok(await visitor.start(lang="sv", danger_now=False))
    assert visitor.chat_id
    ok(await counselor.accept(visitor.chat_id))
    await visitor.wait_assigned()
    ok(await visitor.send("hej"))
    assert (await counselor.receive()).text == "hej"
    return visitor.chat_id


async def test_logout_disconnects_the_open_socket_and_its_chats_return_to_the_queue(
    sock_server: ServerProcess, make_counselor: MakeCounselor, make_visitor: MakeVisitor,
) -> None:
    counselor = await make_counselor(sock_server)
    colleague = await make_counselor(sock_server)
    visitor = await make_visitor(sock_server)
    chat_id = await chat_between(counselor, visitor)

    async with http(counselor.session_cookie) as client:
        async with client.get(f"{sock_server.base_url}/console") as resp:
            csrf = CSRF_JSON.search(await resp.text()).group(1)
        async with client.post(f"{sock_server.base_url}/api/console/logout",
                               headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200
    # Before: the socket stayed open and decrypted new messages 32 s later.
    took = await until(lambda: not counselor.connected, 10)
    print(f"logout closed the socket after {took:.2f} s")
    events_before = len(counselor.events)
    ok(await visitor.send("efter utloggning"))
    await asyncio.sleep(1.0)
    assert not any(e == "msg:new" for e, _ in counselor.events[events_before:])
    # After the grace period the chat is back in the queue for a colleague.
    await visitor.wait_for_event("chat:requeued", wait_s=15)
    queue = ok(await colleague.queue_list())["queue"]
    assert chat_id in [entry["chat_id"] for entry in queue]
    ok(await colleague.accept(chat_id))


async def test_disable_and_reset_by_an_admin_disconnect_every_socket_of_the_account(
    sock_server: ServerProcess, make_counselor: MakeCounselor,
) -> None:
    admin = sock_server.add_user("admin_sirius_sockets", role="admin")
    admin_client = await CounselorClient.login(
        sock_server.base_url, admin.username, admin.password, admin.next_totp(),
        TEST_USER_AGENT)
    for action in ("disable", "reset"):
        tab1 = await make_counselor(sock_server)
        acct = tab1.account  # type: ignore[attr-defined]
        tab2 = await CounselorClient.login(sock_server.base_url, acct.username, acct.password,
                                           acct.next_totp(), TEST_USER_AGENT)
        await tab2.connect()
        async with http(admin_client.session_cookie) as client:
            async with client.get(f"{sock_server.base_url}/console/admin") as resp:
                csrf = CSRF_FIELD.search(await resp.text()).group(1)
            async with client.post(
                f"{sock_server.base_url}/console/admin/accounts/{acct.username}/{action}",
                data={"csrf_token": csrf}, allow_redirects=False,
            ) as resp:
                assert resp.status in (200, 303), action
        tabs = (tab1, tab2)
        took = await until(lambda tabs=tabs: not any(t.connected for t in tabs), 10)
        print(f"{action} closed both sockets after {took:.2f} s")


async def test_a_supervisor_socket_hears_no_live_queue(
    sock_server: ServerProcess, make_counselor: MakeCounselor, make_visitor: MakeVisitor,
) -> None:
    supervisor = await make_counselor(sock_server, role="supervisor")
    admin = await make_counselor(sock_server, role="admin")
    counselor = await make_counselor(sock_server)
    visitor = await make_visitor(sock_server)
    ok(await visitor.start(lang="sv", danger_now=True))
    await counselor.wait_for_event(
        "queue:update", lambda d: visitor.chat_id in [c["chat_id"] for c in d["queue"]])
    await asyncio.sleep(1.5)  # more queue pushes would have come by now
    assert supervisor.events_named("queue:update") == []
    assert admin.events_named("queue:update") == []
    ok(await counselor.accept(visitor.chat_id))
    await visitor.wait_assigned()
    assert supervisor.events_named("chat:accepted") == []


async def test_a_session_ended_by_another_process_is_caught_by_the_periodic_check(
    tmp_path_factory: pytest.TempPathFactory, make_counselor: MakeCounselor,
) -> None:
    srv = start_server(tmp_path_factory.mktemp("tillit-check"),
                        {"TILLIT_CONSOLE_SESSION_CHECK_S": "1"})
    try:
        counselor = await make_counselor(srv)
        acct = counselor.account  # type: ignore[attr-defined]
        ok(await counselor.queue_list())
        # `tillit user disable` is another process: this server hears of it from the database.
        srv.cli("user", "disable", acct.username, "--data-dir", str(srv.data_dir))
        took = await until(lambda: not counselor.connected, 15)
        print(f"the periodic check closed the socket after {took:.2f} s")
    finally:
        srv.stop()


async def test_logout_on_one_process_disconnects_the_socket_on_another(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two processes on one Redis and one data folder; the periodic check is slow (60 s),
    so only the cross-process disconnect can close the socket within seconds."""
    env = {
        "TILLIT_STORE": "redis", "TILLIT_REDIS_URL": REDIS_URL,
        "TILLIT_SERVER_REDIS_PREFIX": f"tillit-test-login-{os.getpid()}-{time.time_ns()}",
        "TILLIT_CONSOLE_SESSION_CHECK_S": "60",
    }
    first = start_server(tmp_path_factory.mktemp("tillit-a"), env)
    second = ServerProcess(tmp_path_factory.mktemp("tillit-b"), env)
    second.data_dir = first.data_dir
    second.start()
    try:
        acct = first.add_user("counselor_aster_twoproc")
        cookie = (await CounselorClient.login(first.base_url, acct.username, acct.password,
                                              acct.next_totp(), TEST_USER_AGENT)).session_cookie
        on_second = CounselorClient(second.base_url, cookie, TEST_USER_AGENT)
        await on_second.connect()
        ok(await on_second.queue_list())
        async with http(cookie) as client:
            async with client.get(f"{first.base_url}/console") as resp:
                csrf = CSRF_JSON.search(await resp.text()).group(1)
            async with client.post(f"{first.base_url}/api/console/logout",
                                   headers={"X-CSRF-Token": csrf}) as resp:
                assert resp.status == 200
        took = await until(lambda: not on_second.connected, 10)
        print(f"logout on one process closed the socket on the other after {took:.2f} s")
    finally:
        second.stop()
        first.stop()


async def test_an_idle_socket_is_closed_when_its_session_times_out(
    tmp_path_factory: pytest.TempPathFactory, make_counselor: MakeCounselor,
) -> None:
    """No event from the socket: only the periodic check (without renewing the idle
    time) can notice that `console.session_idle_s` has passed."""
    srv = start_server(tmp_path_factory.mktemp("tillit-idle"), {
        "TILLIT_CONSOLE_SESSION_CHECK_S": "1", "TILLIT_CONSOLE_SESSION_IDLE_S": "4"})
    try:
        counselor = await make_counselor(srv)
        started = time.monotonic()
        await until(lambda: not counselor.connected, 20)
        took = time.monotonic() - started
        print(f"idle socket closed after {took:.2f} s (idle limit 4 s, check every 1 s)")
        assert took > 2  # not at once: the session was live until it went idle
    finally:
        srv.stop()
