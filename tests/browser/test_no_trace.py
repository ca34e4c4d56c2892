"""No trace on the device (issue 3, items 3, 4 and 8), proven in Debian's Chromium with
the back/forward cache on and a persistent profile on disk.

After a full chat: no cookie or storage of any kind, no request to another site, the
no-trace headers on every response; a page restored from the back/forward cache shows
nothing of the chat; and once the browser is closed, no text from either side is
anywhere in the profile folder (history, cache, autofill, storage).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pages import (
    ExitSite,
    browser_storage,
    chat_texts_in_page,
    chat_then_start_a_draft,
    chat_with_python_counselor,
    find_in_profile,
    first_page,
    launch_profile,
)
from support import MakeCounselor, ServerProcess

pytestmark = pytest.mark.browser

VISITOR_TEXT = "Blåbär-Fyrtorn-6043: pappa tar min telefon varje kväll"
COUNSELOR_TEXT = "Hassel-Kanot-7719: vi kan prata om vem du litar på"
DRAFT_TEXT = "Gräsand-Moln-3381 som aldrig skickades"
# Chromium's switch that lets `Cache-Control: no-store` pages into the back/forward cache
# (other browsers may do so): the worst case for a page that shows a chat.
CCNS_BFCACHE = (
    "--enable-features=CacheControlNoStoreEnterBackForwardCache:"
    "level/restore-unless-cookie-change"
)


def secrets(chat_id: str) -> dict[str, str]:
    return {"visitor text": VISITOR_TEXT, "counselor text": COUNSELOR_TEXT,
            "draft": DRAFT_TEXT, "visitor marker": "Blåbär-Fyrtorn",
            "counselor marker": "Hassel-Kanot", "chat id": chat_id}


async def test_a_full_chat_stores_nothing_and_asks_no_one_else(
    pw, tmp_path: Path, exit_server: ServerProcess, make_counselor: MakeCounselor
) -> None:
    context = await launch_profile(pw, tmp_path / "profile")
    responses = []
    requests: list[str] = []
    context.on("response", lambda r: responses.append(r))
    context.on("request", lambda r: requests.append(r.url))
    try:
        page = await first_page(context)
        counselor = await make_counselor(exit_server)
        await chat_with_python_counselor(
            page, exit_server.base_url, counselor, VISITOR_TEXT, COUNSELOR_TEXT
        )
        await page.click("#end-chat")
        await page.click("#end-confirmed")
        await page.wait_for_selector("#chat-ended:not([hidden])")
        await page.check("#helped-yes")
        await page.click("#send-feedback")
        await page.wait_for_timeout(300)

        assert await browser_storage(page) == {
            "cookie": "", "local": 0, "session": 0, "indexeddb": [], "caches": [],
            "workers": 0, "notification": "default",
        }
        assert await context.cookies() == []

        own = urlsplit(exit_server.base_url).netloc
        foreign = [u for u in requests if urlsplit(u).netloc != own]
        assert foreign == [], foreign
        assert len(responses) >= 6
        for resp in responses:
            h = await resp.all_headers()
            assert h.get("cache-control") == "no-store", resp.url
            assert h.get("referrer-policy") == "no-referrer", resp.url
            assert "default-src 'self'" in h.get("content-security-policy", ""), resp.url
            assert "set-cookie" not in h, resp.url
    finally:
        await context.close()


async def test_the_closed_profile_holds_no_chat_text(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess,
    make_counselor: MakeCounselor,
) -> None:
    profile = tmp_path / "profile"
    context = await launch_profile(pw, profile)
    try:
        page = await first_page(context)
        counselor = await make_counselor(exit_server)
        chat_id = await chat_then_start_a_draft(
            page, exit_site.origin, exit_server.base_url, counselor,
            (VISITOR_TEXT, COUNSELOR_TEXT, DRAFT_TEXT),
        )
        for _ in range(3):
            await page.keyboard.press("Shift")
        await page.wait_for_url(exit_site.url)
        await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    finally:
        await context.close()

    # Positive control: the scanner does find what the browser keeps, e.g. the exit
    # page's title in the History database, and the neutral title of the chat page.
    kept = find_in_profile(profile, {"exit title": ExitSite.TITLE, "page title": "Samtal"})
    assert any(name.startswith("exit title") for _, name in kept), kept
    assert any(Path(f).name == "History" for f, _ in kept), kept

    leaks = find_in_profile(profile, secrets(chat_id))
    assert leaks == [], leaks


async def test_leaving_and_coming_back_shows_nothing_of_the_chat(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess,
    make_counselor: MakeCounselor,
) -> None:
    """Chromium as shipped (back/forward cache on): away with an ordinary link, then Back."""
    context = await launch_profile(pw, tmp_path / "profile")
    try:
        page = await first_page(context)
        cdp = await context.new_cdp_session(page)
        await cdp.send("Page.enable")
        not_cached: list[list[str]] = []
        cdp.on("Page.backForwardCacheNotUsed", lambda e: not_cached.append(
            [x["reason"] for x in e["notRestoredExplanations"]]))
        counselor = await make_counselor(exit_server)
        chat_id = await chat_with_python_counselor(
            page, exit_server.base_url, counselor, VISITOR_TEXT, COUNSELOR_TEXT
        )
        await page.goto(exit_site.origin + "/annat")
        # The page's keys went with it, so the chat ended (a beacon on pagehide).
        ended = await counselor.wait_for_event(
            "chat:ended", lambda d: d.get("chat_id") == chat_id, wait_s=3
        )
        assert ended["by"] == "visitor" and "reason" not in ended
        await page.go_back()
        await page.wait_for_selector("#view-start:not([hidden])")
        text = await chat_texts_in_page(page)
        assert VISITOR_TEXT not in text and COUNSELOR_TEXT not in text
        # Chromium keeps a no-store page with a WebSocket out of the cache altogether.
        assert not_cached and "MainResourceHasCacheControlNoStore" in not_cached[-1]
    finally:
        await context.close()


async def test_a_page_restored_from_the_back_forward_cache_shows_nothing(
    pw, tmp_path: Path, exit_site: ExitSite, exit_server: ServerProcess
) -> None:
    """The worst case: a browser that does put the no-store page into the cache.

    Chromium, with the switch that allows it, restores the page without a chat (a page
    that used a WebSocket is never restored, nor is the chat view, which loads a no-store
    image sprite). Text is put on screen as a chat would, then an init script reads what
    the restored document holds before the page reloads itself, and keeps it in
    `window.name`, which survives that reload.
    """
    context = await launch_profile(
        pw, tmp_path / "profile", width=1280, height=800, extra_args=[CCNS_BFCACHE]
    )
    try:
        page = await first_page(context)
        cdp = await context.new_cdp_session(page)
        await cdp.send("Page.enable")
        kinds: list[str] = []
        cdp.on("Page.frameNavigated", lambda e: kinds.append(e.get("type", "")))
        cdp.on("Page.backForwardCacheNotUsed", lambda e: kinds.extend(
            x["reason"] for x in e["notRestoredExplanations"]))
        await context.add_init_script(
            """addEventListener('pageshow', (e) => { if (e.persisted) window.name = 'restored:' +
                 (document.body ? document.body.innerText : '') + '|' +
                 Array.from(document.querySelectorAll('textarea'))
                      .map(t => t.value).join('|'); });"""
        )
        # Whether Chromium keeps the page depends on timing (a late no-store subresource
        # keeps it out); try a few times until it does.
        for _attempt in range(4):
            await page.goto(exit_server.base_url + "/?lang=sv", wait_until="networkidle")
            await page.evaluate(
                """([said, draft]) => {
                     const p = document.createElement('p');
                     p.className = 'message from-counselor';
                     p.textContent = said;
                     const field = document.createElement('textarea');
                     field.value = draft;
                     document.getElementById('main').prepend(p, field); }""",
                [COUNSELOR_TEXT, DRAFT_TEXT],
            )
            assert COUNSELOR_TEXT in await chat_texts_in_page(page)
            await page.goto(exit_site.origin + "/annat")
            await page.go_back(wait_until="commit")
            await page.wait_for_selector("#view-start:not([hidden])")
            if "BackForwardCacheRestore" in kinds:
                break
        assert "BackForwardCacheRestore" in kinds, kinds
        restored = await page.evaluate("window.name")
        assert restored.startswith("restored:"), restored
        assert restored[len("restored:"):].strip("|\n ") == "", restored
        assert COUNSELOR_TEXT not in await chat_texts_in_page(page)
    finally:
        await context.close()
