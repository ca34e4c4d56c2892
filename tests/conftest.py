"""Fixtures of the whole suite; what they are built from lives in support.py.

* `server`: one server per test module (tests share it and must clean up their chats);
* `fresh_server`: a server of its own, for a test that inspects the data directory;
* `make_counselor`: creates a counselor account with the CLI (`user add --json`, with an
  invented display name such as "Aster 3"),
  logs in over HTTP with password + TOTP and connects to `/counselor`;
* `make_visitor`: a connected `VisitorClient`;
* browser fixtures for tests/browser/: `pw`, `browser`, `exit_site`, `exit_server`.

Test modules import helpers from `support` (and tests/browser/pages.py), never from here.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from protocol_client import CounselorClient, VisitorClient
from support import (
    READS_DURABLE_SQLITE,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    close_held_chats,
    connect_counselor,
    connect_visitor,
    drop_test_databases,
    durable_choice,
    running_server,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from pages import CHROMIUM_ARGS, ExitSite, chromium_path  # noqa: E402
from playwright.async_api import Browser, Playwright, async_playwright  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _durable_of_this_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before the module's servers start: may they get a PostgreSQL database
    (TILLIT_TEST_DATABASE=postgresql; support.READS_DURABLE_SQLITE)?"""
    name = request.module.__name__.rpartition(".")[2]
    durable_choice.keep_sqlite = name in READS_DURABLE_SQLITE
    yield
    durable_choice.keep_sqlite = False


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_test_databases()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole test module."""
    with running_server(tmp_path_factory.mktemp("tillit")) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own (for tests that inspect the data directory)."""
    with running_server(tmp_path) as srv:
        yield srv


@pytest.fixture
async def make_counselor(request: pytest.FixtureRequest) -> AsyncIterator[MakeCounselor]:
    """Factory: a new counselor account, logged in and connected to `/counselor`.

    Closes the chats each one still holds on teardown, so a shared server's queue
    and counselor capacity are not disturbed by earlier tests.
    """
    made: list[CounselorClient] = []

    async def make(
        srv: ServerProcess | None = None, username: str | None = None,
        languages: str | None = None, role: str = "counselor", display_name: str | None = None,
    ) -> CounselorClient:
        c = await connect_counselor(
            srv or request.getfixturevalue("server"), username, languages=languages,
            role=role, display_name=display_name,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            await close_held_chats(c)
        except Exception:  # noqa: BLE001 - best effort: the test itself already reported
            pass
        await c.disconnect()


@pytest.fixture
async def make_visitor(request: pytest.FixtureRequest) -> AsyncIterator[MakeVisitor]:
    """Factory: a connected visitor (not started); ends its chat on teardown."""
    made: list[VisitorClient] = []

    async def make(srv: ServerProcess | None = None) -> VisitorClient:
        v = await connect_visitor((srv or request.getfixturevalue("server")).base_url)
        made.append(v)
        return v

    yield make
    for v in made:
        try:
            if v.chat_id and not v.events_named("chat:ended"):
                if not v.connected:
                    await v.resume()
                await v.end()
        except Exception:  # noqa: BLE001 - best effort
            pass
        await v.disconnect()


# -- browser fixtures (tests/browser/)


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


@pytest.fixture(scope="module")
def exit_site() -> Iterator[ExitSite]:
    """A neutral site on another 127.0.0.1 port, standing in for `safety.exit_url`."""
    site = ExitSite().start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def exit_server(
    tmp_path_factory: pytest.TempPathFactory, exit_site: ExitSite
) -> Iterator[ServerProcess]:
    """A server whose quick exit leads to `exit_site` (nothing leaves the machine)."""
    with running_server(
        tmp_path_factory.mktemp("tillit-exit"), {"TILLIT_SAFETY_EXIT_URL": exit_site.url}
    ) as srv:
        yield srv
