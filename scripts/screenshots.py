#!/usr/bin/env python3
"""Regenerates docs/screenshots/<lang>-<state>.png: the visitor page at 360 px, every state.

So that a person can look at the page without running it (issue 7). Starts the real
server twice through its CLI (open, and closed via TILLIT_HOURS_*), drives the chat
states with the independent protocol client as the counselor, and takes each picture
in Debian's Chromium. Run: `.venv/bin/python scripts/screenshots.py [--out DIR] [sv ar ...]`;
without languages it takes every shipped one (`site.languages`), in that order.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from pages import CHROMIUM_ARGS, chromium_path  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402
from protocol_client import CounselorClient, ok  # noqa: E402
from support import CLOSED_ALL_WEEK, TEST_USER_AGENT, ServerProcess  # noqa: E402

from tillit.chat_server.settings import load_settings  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Languages to shoot (default: all of `site.languages`) and where the pictures go."""
    shipped = list(load_settings(environ={}).site.languages)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("langs", nargs="*", metavar="LANG", help=f"default: {' '.join(shipped)}")
    parser.add_argument("--out", type=Path, default=OUT, help="default: docs/screenshots")
    args = parser.parse_args(argv)
    unknown = [lang for lang in args.langs if lang not in shipped]
    if unknown:
        parser.error(f"not in site.languages: {' '.join(unknown)}")
    args.langs = args.langs or shipped
    return args


async def shot(page: Page, out: Path, lang: str, state: str) -> None:
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.screenshot(path=str(out / f"{lang}-{state}.png"), full_page=True)
    print(out / f"{lang}-{state}.png")


async def main(langs: list[str], out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(Path(tmp) / "open")
        closed = ServerProcess(Path(tmp) / "closed", CLOSED_ALL_WEEK)
        srv.start()
        closed.start()
        try:
            acct = srv.add_user("counselor_screenshot", role="counselor")
            counselor = await CounselorClient.login(
                srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
            await counselor.connect()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 360, "height": 740})
                for lang in langs:
                    await page.goto(f"{srv.base_url}/?lang={lang}")
                    await page.wait_for_selector("html[data-ready]")
                    await shot(page, out, lang, "1-start")
                    await page.check("#danger-yes")
                    await page.locator("#emergency").scroll_into_view_if_needed()
                    await page.screenshot(path=str(out / f"{lang}-2-questions.png"))
                    await page.click("#start-chat")
                    await page.wait_for_selector("#est-wait:not(:empty)")
                    await page.select_option("#q-age", "13_15")  # asked while waiting
                    await shot(page, out, lang, "3-queue")
                    chat_id = ok(await counselor.queue_list())["queue"][0]["chat_id"]
                    ok(await counselor.accept(chat_id))
                    await page.wait_for_selector("#view-chat:not([hidden])")
                    ok(await counselor.send(chat_id, "Hej! Jag heter Kim. Vad vill du prata om?"))
                    await page.locator("#messages .from-counselor").first.wait_for()
                    await page.fill("#message-input", "Jag är rädd för resan i sommar.")
                    await page.press("#message-input", "Enter")
                    await counselor.receive()
                    if await page.get_attribute("#feelings-toggle", "aria-expanded") == "false":
                        await page.click("#feelings-toggle")
                    await page.locator("#feelings-board .feeling").first.click()
                    await counselor.receive()
                    await page.wait_for_selector("#messages [data-type='feeling'][data-id]")
                    await shot(page, out, lang, "4-chat")
                    ok(await counselor.close(chat_id, {}))
                    await page.wait_for_selector("#chat-ended:not([hidden])")
                    await shot(page, out, lang, "5-ended")
                    await page.goto(f"{closed.base_url}/?lang={lang}")
                    await page.wait_for_selector("#view-closed:not([hidden])")
                    await shot(page, out, lang, "6-out-of-hours")
                await browser.close()
            await counselor.disconnect()
        finally:
            srv.stop()
            closed.stop()


if __name__ == "__main__":
    ARGS = parse_args()
    ARGS.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(ARGS.langs, ARGS.out))
