"""Past capacity the server says `busy` to new messages, and loses nothing it acked.

The overload is real: the server process is stopped (SIGSTOP) while messages arrive,
as when its core is taken by something else, so its event loop wakes far too late;
the monitor's own clock is not touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable

from protocol_client import error_code, ok, open_chat
from support import MakeCounselor, MakeVisitor, ServerProcess

from tillit.safety.overload import LoadMonitor, refuse_before_decoding

# How long a condition may take to come true on a busy machine: a deadline, not a sleep.
WITHIN_S = 10.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {WITHIN_S} s"
        await asyncio.sleep(0.01)


async def test_monitor_refuses_new_work_while_the_loop_runs_late() -> None:
    monitor = LoadMonitor(max_lag_s=0.1, max_backlog=0, interval_s=0.01)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.05)
        assert not monitor.refuse("msg:send")
        time.sleep(0.6)  # noqa: ASYNC251 - the loop is blocked on purpose: a busy process
        await _until(lambda: monitor.busy, "busy after a 0.6 s stall")
        assert monitor.lag_s > 0.1
        assert monitor.refuse("msg:send") and monitor.refuse("chat:start")
        assert not monitor.refuse("chat:end") and not monitor.refuse("chat:resume")
        await _until(lambda: not monitor.busy, "back under capacity")
        assert not monitor.refuse("msg:send")
    finally:
        task.cancel()


async def test_a_store_backlog_past_the_limit_is_busy() -> None:
    waiting = [0]
    monitor = LoadMonitor(max_lag_s=0, max_backlog=100, backlog=lambda: waiting[0],
                          interval_s=0.01)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.03)
        assert not monitor.busy
        waiting[0] = 101
        await _until(lambda: monitor.busy, "busy past the backlog limit")
        assert monitor.refuse("typing")
    finally:
        task.cancel()


def test_refusals_are_read_off_the_frame_without_decoding_it() -> None:
    monitor = LoadMonitor(max_lag_s=0.1, max_backlog=0)
    screen = refuse_before_decoding(monitor)
    send = '42/visitor,17["msg:send",{"chat_id":"c","epoch":1,"seq":3,"ct":"AAAA"}]'
    assert screen(send) is None  # not busy: handled as usual
    monitor.busy = True
    answer = screen(send)
    assert answer is not None and answer.startswith("3/visitor,17[")
    [ack] = json.loads(answer[len("3/visitor,17"):])
    assert ack["ok"] is False and ack["error"]["code"] == "busy" and ack["error"]["message"]
    assert screen('42/counselor,5["typing",{"chat_id":"c","on":true}]').startswith(
        "3/counselor,5[")
    assert screen('42/visitor,["typing",{"chat_id":"c","on":true}]') == ""  # no ack asked
    # What finishes a chat or reaches the counselor is never refused.
    for kept in ('42/visitor,8["chat:end",{"chat_id":"c"}]',
                 '42/visitor,9["chat:resume",{}]', '40/visitor,', "3", '43/visitor,2[{}]'):
        assert screen(kept) is None, kept
    assert monitor.shed == 3


async def test_a_stalled_server_answers_busy_and_the_resent_messages_arrive_once(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    visitor = await make_visitor(fresh_server)
    counselor = await make_counselor(fresh_server)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="16_17")
    ok(await visitor.send("Före"))
    assert (await counselor.receive()).text == "Före"

    assert fresh_server.proc is not None
    envelopes = [visitor.crypto.seal_text(f"Under stoppet {n}") for n in range(6)]
    os.kill(fresh_server.proc.pid, signal.SIGSTOP)
    try:
        sends = [asyncio.create_task(visitor.send_envelope(env)) for env in envelopes]
        await asyncio.sleep(1.5)  # the frames wait in the socket; the loop's clock runs
    finally:
        os.kill(fresh_server.proc.pid, signal.SIGCONT)
    acks = await asyncio.gather(*sends)
    codes = [error_code(a) for a in acks]
    assert "busy" in codes, acks
    assert set(codes) <= {"busy", None}

    # Once the server has caught up, the page sends the same envelopes again (as the
    # page does: again while the answer is still busy).
    for env, ack in zip(envelopes, acks, strict=True):
        deadline = time.monotonic() + WITHIN_S
        while error_code(ack) == "busy" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            ack = await visitor.send_envelope(env)
        ok(ack, "resent msg:send")
    got = await counselor.receive_n(len(envelopes))
    assert sorted(m.text for m in got) == [f"Under stoppet {n}" for n in range(6)]
    assert [m.id for m in got] == sorted(m.id for m in got)
    assert counselor.duplicates == 0
    ok(await counselor.send(chat_id, "Jag fick allt."))
    assert (await visitor.receive()).text == "Jag fick allt."
