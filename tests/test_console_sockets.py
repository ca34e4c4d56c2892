"""Console sockets end with their session: logout, disable and reset disconnect them,
a session ended elsewhere is caught by the periodic check, and only chat roles hear
the live queue."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest
from protocol_client import CounselorClient, VisitorClient, ok
from support import (
    CSRF_FIELD,
    TEST_USER_AGENT,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    http_session,
    running_server,
    server_fixture,
    server_pair,
)

CSRF_JSON = re.compile(r'"csrf_token": "([^"]+)"')


sock_server = server_fixture({
    "TILLIT_CONSOLE_SESSION_CHECK_S": "60",
    "TILLIT_COUNSELOR_GRACE_S": "2",
    "TILLIT_CHAT_SWEEP_INTERVAL_S": "1",
}, doc=("The periodic check is slow here (60 s): what is seen within seconds is the "
         "immediate path. Chats of a counselor gone return to the queue after 2 s."))


async def log_out(srv: ServerProcess, cookie: str) -> None:
    """Log out as the console does: the CSRF token from the page, then the POST."""
    async with http_session(cookie) as client:
        async with client.get(f"{srv.base_url}/console") as resp:
            csrf = CSRF_JSON.search(await resp.text()).group(1)
        async with client.post(f"{srv.base_url}/api/console/logout",
                               headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200


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

    await log_out(sock_server, counselor.session_cookie)
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
        async with http_session(admin_client.session_cookie) as client:
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
    with running_server(tmp_path_factory.mktemp("tillit-check"),
                        {"TILLIT_CONSOLE_SESSION_CHECK_S": "1"}) as srv:
        counselor = await make_counselor(srv)
        acct = counselor.account  # type: ignore[attr-defined]
        ok(await counselor.queue_list())
        # `tillit user disable` is another process: this server hears of it from the database.
        srv.cli("user", "disable", acct.username, "--data-dir", str(srv.data_dir))
        took = await until(lambda: not counselor.connected, 15)
        print(f"the periodic check closed the socket after {took:.2f} s")


async def test_logout_on_one_process_disconnects_the_socket_on_another(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two processes on one Redis and one data folder; the periodic check is slow (60 s),
    so only the cross-process disconnect can close the socket within seconds."""
    with server_pair(tmp_path_factory.mktemp("tillit-pair"),
                     {"TILLIT_CONSOLE_SESSION_CHECK_S": "60"}) as pair:
        first, second = pair.servers
        acct = first.add_user("counselor_aster_twoproc")
        cookie = (await CounselorClient.login(first.base_url, acct.username, acct.password,
                                              acct.next_totp(), TEST_USER_AGENT)).session_cookie
        on_second = CounselorClient(second.base_url, cookie, TEST_USER_AGENT)
        await on_second.connect()
        ok(await on_second.queue_list())
        await log_out(first, cookie)
        took = await until(lambda: not on_second.connected, 10)
        print(f"logout on one process closed the socket on the other after {took:.2f} s")


async def test_an_idle_socket_is_closed_when_its_session_times_out(
    tmp_path_factory: pytest.TempPathFactory, make_counselor: MakeCounselor,
) -> None:
    """No event from the socket: only the periodic check (without renewing the idle
    time) can notice that `console.session_idle_s` has passed."""
    with running_server(tmp_path_factory.mktemp("tillit-idle"), {
            "TILLIT_CONSOLE_SESSION_CHECK_S": "1", "TILLIT_CONSOLE_SESSION_IDLE_S": "4"}) as srv:
        counselor = await make_counselor(srv)
        started = time.monotonic()
        await until(lambda: not counselor.connected, 20)
        took = time.monotonic() - started
        print(f"idle socket closed after {took:.2f} s (idle limit 4 s, check every 1 s)")
        assert took > 2  # not at once: the session was live until it went idle
