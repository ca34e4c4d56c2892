"""Browser fixtures: Playwright and a fresh Debian Chromium per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pages import CHROMIUM_ARGS, chromium_path
from playwright.async_api import Browser, Playwright, async_playwright


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def pw() -> AsyncIterator[Playwright]:
    async with async_playwright() as playwright:
        yield playwright


@pytest.fixture
async def browser(pw: Playwright) -> AsyncIterator[Browser]:
    browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    await browser.close()
