"""Helpers for browser tests: Debian's Chromium and the steps a person takes on the pages."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("TILLIT_CHROMIUM", "/usr/bin/chromium")
# Chromium on a machine with no network beyond loopback: no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 15_000


def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or CHROMIUM
    if not Path(path).exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: "
                    "run scripts/install-browser-deps.sh")
    return path


async def new_page(
    browser: Browser, width: int = 1280, height: int = 800
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    return context, page


async def console_login(page: Page, base_url: str, account) -> None:  # noqa: ANN001
    """Log in through the real login page; lands on the console with the queue live."""
    await page.goto(f"{base_url}/console/login")
    await page.fill("#login-username", account.username)
    await page.fill("#login-password", account.password)
    await page.fill("#login-totp", account.next_totp())
    await page.click("#login-submit")
    await page.wait_for_url(f"{base_url}/console")
    await page.wait_for_selector("#conn-status[data-state='connected']")


async def start_visitor_chat(page: Page, base_url: str, lang: str = "sv") -> None:
    """Open the visitor page and press start; waits until the page shows the queue."""
    await page.goto(f"{base_url}/?lang={lang}")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-queue:not([hidden])")


async def message_texts(page: Page, scope: str = "") -> list[str]:
    texts = await page.locator(f"{scope} .message .message-text").all_inner_texts()
    return [t.strip() for t in texts]
