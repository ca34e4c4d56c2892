"""The quick exit in Debian's Chromium (issue 3, items 1, 2, 6 and 8), with the
back/forward cache on and a persistent profile, as on a young person's own phone.

The exit URL points at `ExitSite`, a neutral page on another 127.0.0.1 port. The
counselor is the independent protocol client, so the time until they hear "left by
quick exit" is measured from outside the page.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pages import (
    ExitSite,
    chat_texts_in_page,
    chat_then_start_a_draft,
    chat_with_python_counselor,
    first_page,
    launch_profile,
    start_visitor_chat,
)
from support import MakeCounselor, ServerProcess

pytestmark = pytest.mark.browser

VISITOR_TEXT = "Tranbär-Kompass-5521: min bror läser mina meddelanden"
COUNSELOR_TEXT = "Ekorre-Lykta-8834: du gör rätt som hör av dig"
DRAFT_TEXT = "Mullvad-Regn-2290 halvskrivet"


def arrivals(site: ExitSite) -> list[dict[str, str]]:
    """Request headers of every arrival at the exit URL (not the site's favicon)."""
    return [headers for path, headers in site.hits if path == "/vader"]


async def log_line(srv: ServerProcess, text: str, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while text not in srv.log_text():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def assert_exit_not_covered(page) -> None:  # noqa: ANN001
    """The control is inside the viewport and the topmost element at its centre."""
    box = await page.locator("#quick-exit").bounding_box()
    size = page.viewport_size
    assert box and box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"]
    on_top = await page.evaluate(
        """([x, y]) => { const el = document.elementFromPoint(x, y);
                         return !!el && !!el.closest('#quick-exit'); }""",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "something covers the quick exit"


async def test_shift_three_times_while_typing_leaves_and_the_counselor_knows_within_a_second(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess,
    make_counselor: MakeCounselor,
) -> None:
    context = await launch_profile(pw, tmp_path / "profile")
    try:
        page = await first_page(context)
        counselor = await make_counselor(exit_server)
        chat_id = await chat_then_start_a_draft(
            page, exit_site.origin, exit_server.base_url, counselor,
            (VISITOR_TEXT, COUNSELOR_TEXT, DRAFT_TEXT),
        )
        # Typing a message when someone walks in.
        await page.keyboard.press("Shift")
        assert "1" in await page.inner_text("#exit-status")
        await page.keyboard.press("Shift")
        status = page.locator("#exit-status")
        assert await status.get_attribute("role") == "status"
        assert "2" in await status.inner_text()

        started = time.perf_counter()
        await page.keyboard.press("Shift")
        ended = await counselor.wait_for_event(
            "chat:ended", lambda d: d.get("chat_id") == chat_id, wait_s=5
        )
        elapsed = time.perf_counter() - started
        await page.wait_for_url(exit_site.url)

        print(f"\ncounselor saw quick_exit {elapsed * 1000:.0f} ms after the third Shift")
        assert ended == {"chat_id": chat_id, "by": "visitor", "reason": "quick_exit"}
        # At once (about 0.1 s measured), not when the resume window runs out; with
        # room for a busy machine.
        assert elapsed < 3.0, f"{elapsed:.3f}s"
        # Ended by the beacon (the page's socket is not asked when the beacon is accepted).
        assert await log_line(exit_server, "POST /api/visitor/exit 204"), exit_server.log_text()
        assert "referer" not in arrivals(exit_site)[-1]

        # Back leads to the page before the chat, never to the chat.
        await page.go_back(wait_until="commit")
        await page.wait_for_url(exit_site.origin + "/innan", wait_until="commit")
        text = await chat_texts_in_page(page)
        for secret in (VISITOR_TEXT, COUNSELOR_TEXT, DRAFT_TEXT):
            assert secret not in text
    finally:
        await context.close()


async def test_shift_as_a_modifier_other_keys_and_a_pause_reset_the_count(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess
) -> None:
    context = await launch_profile(pw, tmp_path / "profile")
    try:
        page = await first_page(context)
        await page.clock.install()
        url = exit_server.base_url + "/?lang=en"
        await page.goto(url)
        status = page.locator("#exit-status")

        await page.keyboard.press("Shift")
        await page.keyboard.press("Shift")
        assert "2 of 3" in await status.inner_text()
        await page.keyboard.press("KeyA")  # any other key
        assert await status.inner_text() == ""

        await page.keyboard.press("Shift")
        await page.keyboard.press("Shift+KeyB")  # Shift as a modifier: a capital letter
        assert await status.inner_text() == ""

        await page.keyboard.press("Shift")
        await page.keyboard.press("Shift")
        await page.clock.run_for(5_100)  # more than 5 s after the last press
        assert await status.inner_text() == ""
        await page.keyboard.press("Shift")
        assert "1 of 3" in await status.inner_text()
        assert page.url == url

        # Each press within 5 s of the last, even if the three take longer than 5 s.
        await page.clock.run_for(4_000)
        await page.keyboard.press("Shift")
        await page.clock.run_for(4_000)
        await page.keyboard.press("Shift")
        await page.wait_for_url(exit_site.url)
    finally:
        await context.close()


async def test_the_button_leaves_is_never_covered_and_back_does_not_return(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess,
    make_counselor: MakeCounselor,
) -> None:
    context = await launch_profile(pw, tmp_path / "profile", width=360, height=640)
    try:
        page = await first_page(context)
        await page.goto(exit_site.origin + "/innan")
        await page.goto(exit_server.base_url + "/?lang=sv")
        await assert_exit_not_covered(page)
        await page.mouse.wheel(0, 5000)
        await assert_exit_not_covered(page)

        # The skip link comes first in the tab order and moves focus, adding no history.
        length = await page.evaluate("history.length")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "skip-to-exit"
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "quick-exit"
        assert await page.evaluate("[history.length, location.hash]") == [length, ""]

        counselor = await make_counselor(exit_server)
        chat_id = await chat_with_python_counselor(
            page, exit_server.base_url, counselor, VISITOR_TEXT, COUNSELOR_TEXT
        )
        await page.mouse.wheel(0, 5000)
        await assert_exit_not_covered(page)

        await page.click("#quick-exit")
        await page.wait_for_url(exit_site.url)
        ended = await counselor.wait_for_event(
            "chat:ended", lambda d: d.get("chat_id") == chat_id, wait_s=3
        )
        assert ended["reason"] == "quick_exit"
        await page.go_back(wait_until="commit")
        await page.wait_for_url(exit_site.origin + "/innan", wait_until="commit")
    finally:
        await context.close()


async def test_without_javascript_the_exit_is_a_plain_link_off_the_site(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess
) -> None:
    context = await launch_profile(pw, tmp_path / "profile", java_script_enabled=False)
    try:
        page = await first_page(context)
        await page.goto(exit_server.base_url + "/?lang=sv")
        link = page.locator("#quick-exit")
        assert await link.get_attribute("href") == exit_site.url
        assert set((await link.get_attribute("rel")).split()) >= {"nofollow", "noreferrer"}
        await assert_exit_not_covered(page)
        # The start form cannot work without JavaScript, and submitting it would put the
        # answers into the URL and the history: it is not shown.
        assert not await page.locator("#start-form").is_visible()
        before = len(arrivals(exit_site))
        await link.click()
        await page.wait_for_url(exit_site.url)
        assert len(arrivals(exit_site)) == before + 1
        assert "referer" not in arrivals(exit_site)[-1]
    finally:
        await context.close()


async def test_the_safety_information_opens_in_the_page_without_history(
    pw, tmp_path: Path, exit_server: ServerProcess
) -> None:
    context = await launch_profile(pw, tmp_path / "profile")
    try:
        page = await first_page(context)
        await page.goto(exit_server.base_url + "/?lang=en")
        length = await page.evaluate("history.length")
        info = page.locator("#safety-info")
        assert not await info.locator("ul").first.is_visible()
        await info.locator("summary").click()
        text = await info.inner_text()
        for words in ("cannot erase your browser history", "private window",
                      "monitoring apps", "nobody else checks", "nobody can see your screen"):
            assert words in text, words
        assert await page.evaluate("[history.length, location.hash]") == [length, ""]
        # Reachable in the middle of a chat too: it sits above every view.
        await start_visitor_chat(page, exit_server.base_url, lang="en")
        assert await info.locator("summary").is_visible()
        await page.click("#leave-queue")
    finally:
        await context.close()
