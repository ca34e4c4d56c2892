"""Helpers for browser tests: Debian's Chromium and the steps a person takes on the pages."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Playwright

from tillit.chat_server.settings import load_settings

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


def shipped_languages() -> tuple[str, ...]:
    """`site.languages`, or the subset named in TILLIT_TEST_LANGS (e.g. "ckb,ps") so that a
    change to some languages can run the all-language browser tests for those only."""
    shipped = tuple(load_settings(environ={}).site.languages)
    wanted = [x.strip() for x in os.environ.get("TILLIT_TEST_LANGS", "").split(",") if x.strip()]
    unknown = set(wanted) - set(shipped)
    if unknown:
        raise ValueError(f"TILLIT_TEST_LANGS names languages not shipped: {sorted(unknown)}")
    return tuple(lang for lang in shipped if lang in wanted) if wanted else shipped


def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or CHROMIUM
    if not Path(path).exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: "
                    "run scripts/install-browser-deps.sh")
    return path


async def new_page(
    browser: Browser, width: int = 1280, height: int = 800, bypass_csp: bool = False,
    ignore_https_errors: bool = False,
) -> tuple[BrowserContext, Page]:
    """`bypass_csp` only for tests that inject a checker (axe-core) into the page;
    `ignore_https_errors` for a throwaway self-signed certificate."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=bypass_csp,
        ignore_https_errors=ignore_https_errors,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    return context, page


# Where each role lands after logging in (issue 14).
HOME = {"counselor": "/console", "supervisor": "/console/stats", "admin": "/console/admin"}


async def console_login(page: Page, base_url: str, account) -> None:  # noqa: ANN001
    """Log in through the real login page; lands on the role's own page (a counselor's
    console with the queue live)."""
    await page.goto(f"{base_url}/console/login")
    await page.fill("#login-username", account.username)
    await page.fill("#login-password", account.password)
    await page.fill("#login-totp", account.next_totp())
    await page.click("#login-submit")
    await page.wait_for_url(f"{base_url}{HOME[account.role]}")
    if account.role == "counselor":
        await page.wait_for_selector("#conn-status[data-state='connected']")


async def start_visitor_chat(page: Page, base_url: str, lang: str = "sv") -> None:
    """Open the visitor page and press start; waits until the server has put the chat in
    the queue (the page shows the queue view at once, busy until the server answers)."""
    await page.goto(f"{base_url}/?lang={lang}")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-queue:not([hidden]) #queue-status:not([aria-busy])")


async def message_texts(page: Page, scope: str = "") -> list[str]:
    texts = await page.locator(f"{scope} .message .message-text").all_inner_texts()
    return [t.strip() for t in texts]


@dataclass
class ChatPages:
    """One chat between the real console and the real visitor page, each in a browser
    context of its own (a counselor's desk and a young person's phone)."""

    counselor_context: BrowserContext
    counselor: Page
    visitor_context: BrowserContext
    visitor: Page
    panel: Locator  # the console's panel of this chat

    async def visitor_sends(self, text: str) -> None:
        """Type and send on the visitor page; returns once the console shows it."""
        await self.visitor.fill("#message-input", text)
        await self.visitor.click("#send")
        await self.panel.locator(
            ".message.from-visitor .message-text", has_text=text).first.wait_for()

    async def counselor_sends(self, text: str) -> None:
        """Type and send in the console; returns once the visitor page shows it."""
        await self.panel.locator(".message-input").fill(text)
        await self.panel.locator(".send").click()
        await self.visitor.locator(
            "#messages .message.from-counselor .message-text", has_text=text).first.wait_for()

    async def counselor_closes(self) -> None:
        """Close the chat with the closing form's defaults; the visitor page shows the end."""
        await self.panel.locator(".close-chat").click()  # opens the closing form
        await self.panel.locator(".close-submit").click()
        await self.visitor.wait_for_selector("#chat-ended:not([hidden])")

    async def close(self) -> None:
        await self.visitor_context.close()
        await self.counselor_context.close()


async def open_chat_in_two_pages(
    browser: Browser, base_url: str, account,  # noqa: ANN001 - a support.Account
    counselor_size: tuple[int, int] = (1280, 800), ignore_https_errors: bool = False,
    watch: Callable[[Page], None] | None = None,
) -> ChatPages:
    """The counselor logs in to the console, a visitor starts a chat on the visitor page
    and the counselor accepts it from the queue; returns once both pages show the chat.
    `watch` is called with each page before it first loads (to record failures)."""
    counselor_context, counselor = await new_page(
        browser, *counselor_size, ignore_https_errors=ignore_https_errors)
    if watch:
        watch(counselor)
    await console_login(counselor, base_url, account)
    visitor_context, visitor = await new_page(
        browser, 360, 740, ignore_https_errors=ignore_https_errors)
    if watch:
        watch(visitor)
    await start_visitor_chat(visitor, base_url)
    item = counselor.locator(".queue-item").first
    await item.wait_for()
    await item.locator(".accept").click()
    panel = counselor.locator(".chat-panel:not([hidden])")
    await panel.wait_for()
    await visitor.wait_for_selector("#view-chat:not([hidden])")
    return ChatPages(counselor_context, counselor, visitor_context, visitor, panel)


# --------------------------------------------------------------------------- no trace (issue 3)

# Playwright turns the back/forward cache off by default; the no-trace tests need it on,
# as it is in a young person's browser.
BFCACHE_OFF_ARG = "--disable-back-forward-cache"


async def launch_profile(
    pw: Playwright, user_data_dir: Path, *, java_script_enabled: bool = True,
    width: int = 360, height: int = 740, extra_args: list[str] | None = None,
) -> BrowserContext:
    """Debian's Chromium with a persistent profile on disk and the back/forward cache on."""
    context = await pw.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=chromium_path(),
        args=[*CHROMIUM_ARGS, *(extra_args or [])],
        ignore_default_args=[BFCACHE_OFF_ARG],
        java_script_enabled=java_script_enabled,
        viewport={"width": width, "height": height},
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def first_page(context: BrowserContext) -> Page:
    """The page a persistent profile opens with (or a new one)."""
    return context.pages[0] if context.pages else await context.new_page()


class ExitSite:
    """A stand-in for `safety.exit_url` on 127.0.0.1 (no network here beyond loopback).

    A plain threaded HTTP server, so that one instance can serve a whole test module; it
    records every request's path and headers (to prove that no Referer reaches it).
    """

    TITLE = "Vädret i dag – Lövskog"

    def __init__(self) -> None:
        self.hits: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                site.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{site.TITLE}"
                        "</title></head><body><p>Sol och 18 grader.</p></body></html>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        """What the server gets as `safety.exit_url`."""
        return f"{self.origin}/vader"

    def start(self) -> ExitSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


async def chat_texts_in_page(page: Page) -> str:
    """Everything the page shows or holds in its fields, for 'no chat text' checks."""
    return await page.evaluate(
        """() => (document.documentElement ? document.documentElement.innerText : '') + '\\n' +
              Array.from(document.querySelectorAll('textarea, input'))
                   .map(el => el.value).join('\\n')"""
    )


async def browser_storage(page: Page) -> dict:
    """What the page's origin holds in every storage API a web page can use."""
    return await page.evaluate(
        """async () => ({
            cookie: document.cookie,
            local: localStorage.length,
            session: sessionStorage.length,
            indexeddb: indexedDB.databases ? (await indexedDB.databases()).map(d => d.name) : [],
            caches: 'caches' in window ? await caches.keys() : [],
            workers: navigator.serviceWorker
                ? (await navigator.serviceWorker.getRegistrations()).length : 0,
            notification: 'Notification' in window ? Notification.permission : 'absent',
        })"""
    )


def find_in_profile(profile: Path, needles: dict[str, str]) -> list[tuple[str, str]]:
    """(file, needle name) for every needle found in any file of a closed browser profile,
    as UTF-8 and as UTF-16LE (Chromium keeps some strings, e.g. in LevelDB, as UTF-16)."""
    found = []
    encoded = {
        (name, enc): text.encode(enc) for name, text in needles.items()
        for enc in ("utf-8", "utf-16-le")
    }
    for path in sorted(p for p in profile.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for (name, enc), needle in encoded.items():
            if needle in data:
                found.append((str(path.relative_to(profile)), f"{name} ({enc})"))
    return found


async def chat_with_python_counselor(
    page: Page, base_url: str, counselor, visitor_text: str, counselor_text: str  # noqa: ANN001
) -> str:
    """Start a chat on the real page, let a protocol-client counselor take it, and exchange
    one message each way (the counselor's text decrypted and shown in the page)."""
    await start_visitor_chat(page, base_url)
    queue = (await counselor.queue_list())["queue"]
    assert len(queue) == 1, queue
    chat_id = queue[0]["chat_id"]
    ack = await counselor.accept(chat_id)
    assert ack.get("ok"), ack
    await page.wait_for_selector("#view-chat:not([hidden])")
    await page.fill("#message-input", visitor_text)
    await page.press("#message-input", "Enter")
    got = await counselor.receive()
    assert got.text == visitor_text
    assert (await counselor.send(chat_id, counselor_text)).get("ok")
    await page.locator("#messages .message.from-counselor .message-text").first.wait_for()
    assert counselor_text in await message_texts(page, "#messages")
    return chat_id



async def chat_then_start_a_draft(
    page: Page, site_origin: str, base_url: str, counselor,  # noqa: ANN001
    texts: tuple[str, str, str],
) -> str:
    """The quick-exit scene: arrive from another site, chat one message each way with a
    protocol-client counselor, then start typing a draft (visitor, counselor, draft)."""
    visitor_text, counselor_text, draft = texts
    await page.goto(site_origin + "/innan")
    chat_id = await chat_with_python_counselor(
        page, base_url, counselor, visitor_text, counselor_text
    )
    await page.click("#message-input")
    await page.keyboard.type(draft)
    return chat_id

# ----------------------------------------------------------------------- accessibility (issue 7)

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, MPL-2.0
SERIOUS = ("serious", "critical")


async def axe_violations(page: Page, what: str) -> list[str]:
    """Runs the vendored axe-core (all its rules: WCAG 2.x A/AA and best practice) on the page.

    The page's context must be made with `bypass_csp=True`: the strict CSP would
    rightly refuse the injected script. Returns readable serious and critical findings.
    """
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]})"""
    )
    return [
        f"{what}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v.get("impact") in SERIOUS
    ]

