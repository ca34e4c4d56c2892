"""Supervisor statistics, audit log and operations panel through the real server.

Issue 5, "Done when": six Swedish and two Arabic chats on one day, each started by a
visitor and accepted and closed by a counselor; the supervisor's CSV for that day shows
`language,sv,6` and `language,ar,<5`, no chat id anywhere, the page draws SVG charts,
and a counselor gets 403 on both.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from protocol_client import ok, open_chat
from support import (
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    http_get,
    staff_cookie,
)

TODAY = date.today().isoformat()


@pytest.fixture(scope="module")
def chat_ids() -> list[str]:
    return []


async def test_six_swedish_and_two_arabic_chats_give_sv_6_and_ar_hidden(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor,
    chat_ids: list[str],
) -> None:
    counselor = await make_counselor(languages="sv,ar")
    for lang in ["sv"] * 6 + ["ar"] * 2:
        visitor = await make_visitor()
        chat_id = await open_chat(visitor, counselor, lang=lang, age_group="18_25",
                                  role="self")
        chat_ids.append(chat_id)
        ok(await visitor.send("Hej, ett påhittat meddelande"), "msg:send")
        ok(await counselor.close(chat_id, {"outcome": "completed"}), "chat:close")
    supervisor = await staff_cookie(server, "supervisor")

    status, csv_text, headers = await http_get(
        server, f"/console/stats.csv?from={TODAY}&to={TODAY}", supervisor)
    assert status == 200, csv_text
    assert headers["Content-Type"].startswith("text/csv")
    lines = csv_text.splitlines()
    assert lines[0] == "dimension,value,count"
    assert "language,sv,6" in lines, csv_text
    assert "language,ar,<5" in lines, csv_text
    assert "total,chats,8" in lines
    assert all(len(line.split(",")) == 3 for line in lines)
    for chat_id in chat_ids:
        assert chat_id not in csv_text

    status, html, _ = await http_get(server, f"/console/stats?from={TODAY}&to={TODAY}", supervisor)
    assert status == 200
    assert html.count("<svg") >= 10 and "<table" in html
    assert 'id="bd-language"' in html and "<rect" in html
    for chat_id in chat_ids:
        assert chat_id not in html
    assert " style=" not in html and "<script>" not in html and "<style" not in html

    # The CLI writes the very same CSV from the data folder.
    out = server.cli("stats", "export", "--from", TODAY, "--to", TODAY,
                     "--data-dir", str(server.data_dir))
    assert out == csv_text


async def test_a_counselor_gets_403_on_the_page_and_the_csv(server: ServerProcess) -> None:
    counselor = await staff_cookie(server, "counselor")
    for path in ("/console/stats", "/console/stats.csv", f"/console/stats.csv?from={TODAY}",
                 "/console/audit", "/console/ops", "/api/console/ops"):
        status, _, _ = await http_get(server, path, counselor)
        assert status == 403, path


async def test_the_console_links_to_statistics_for_supervisors_only(
    server: ServerProcess,
) -> None:
    for role, linked in (("supervisor", True), ("admin", True), ("counselor", False)):
        cookie = await staff_cookie(server, role)
        status, html, headers = await http_get(server, "/console", cookie)
        if role != "counselor":  # roles without chats land on their own page (issue 14)
            assert status == 302, role
            status, html, _ = await http_get(server, headers["Location"], cookie)
        assert status == 200
        assert ('href="/console/stats"' in html) is linked, role


async def test_without_a_session_page_redirects_and_data_is_refused(
    server: ServerProcess,
) -> None:
    status, _, headers = await http_get(server, "/console/stats", None)
    assert status == 302 and headers["Location"] == "/console/login"
    assert (await http_get(server, "/console/stats.csv", None))[0] == 401
    assert (await http_get(server, "/api/console/ops", None))[0] == 401


@pytest.mark.parametrize(("query", "message"), [
    ("from=2025-02-30&to=2025-03-01", "not a real date"),
    ("from=14/03/2025", "YYYY-MM-DD"),
    ("from=2025-03-02&to=2025-03-01", "on or before"),
    ("from=2020-01-01&to=2025-01-01", "at most 366 days"),
])
async def test_bad_periods_get_400_with_a_clear_message(
    server: ServerProcess, query: str, message: str
) -> None:
    supervisor = await staff_cookie(server, "supervisor")
    status, text, _ = await http_get(server, f"/console/stats.csv?{query}", supervisor)
    assert status == 400 and message in text, text
    status, html, _ = await http_get(server, f"/console/stats?{query}", supervisor)
    assert status == 400 and message in html and 'role="alert"' in html


async def test_default_period_is_the_last_30_days(server: ServerProcess) -> None:
    supervisor = await staff_cookie(server, "supervisor")
    status, html, _ = await http_get(server, "/console/stats", supervisor)
    assert status == 200
    first = (date.today() - timedelta(days=29)).isoformat()
    assert f'value="{first}"' in html and f'value="{TODAY}"' in html


async def test_admin_sees_audit_log_with_filters_and_supervisor_does_not(
    server: ServerProcess,
) -> None:
    admin = await staff_cookie(server, "admin")
    status, html, _ = await http_get(server, f"/console/audit?from={TODAY}&to={TODAY}", admin)
    assert status == 200 and "account.create" in html and "<table" in html
    status, html, _ = await http_get(
        server, f"/console/audit?from={TODAY}&to={TODAY}&action=login.failed", admin)
    assert status == 200 and "account.create</td>" not in html
    status, html, _ = await http_get(server, "/console/audit?from=yesterday", admin)
    assert status == 400 and "YYYY-MM-DD" in html
    supervisor = await staff_cookie(server, "supervisor")
    assert (await http_get(server, "/console/audit", supervisor))[0] == 403
    assert (await http_get(server, "/console/ops", supervisor))[0] == 403


async def test_operations_panel_counts_without_content(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor,
) -> None:
    admin = await staff_cookie(server, "admin")
    counselor = await make_counselor()
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"), "chat:start")
    status, body, _ = await http_get(server, "/api/console/ops", admin)
    assert status == 200
    data = json.loads(body)
    assert set(data) == {"counselors_online", "queue_length", "longest_wait_s",
                         "chats_in_progress"}
    assert data["counselors_online"] >= 1 and data["queue_length"] >= 1
    assert isinstance(data["longest_wait_s"], int) and data["longest_wait_s"] >= 0
    assert visitor.chat_id not in body
    status, html, _ = await http_get(server, "/console/ops", admin)
    assert status == 200 and 'src="/static/ops.js"' in html and visitor.chat_id not in html
    await counselor.disconnect()
