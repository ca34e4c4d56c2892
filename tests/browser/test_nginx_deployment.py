"""The deployment docs/operations.md describes, for real (issue "Go-live security", 12, 2).

Debian's nginx runs deploy/nginx/tillit.conf.template, filled with envsubst exactly as the
docs say, on a free port with a throwaway self-signed certificate; behind it two Tillit
processes in production mode on one Redis and one data directory; in front of it the
real visitor page and the real console in Chromium, over https. Before
`server.public_origins` every browser's WebSocket through such a proxy got
`https://… is not an accepted origin` (400).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pages import console_login, message_texts, new_page, open_chat_in_two_pages
from playwright.async_api import Browser, Page
from support import (
    PRODUCTION_ENV,
    ROOT,
    ServerProcess,
    end_process,
    free_port,
    server_pair,
    wait_until_ready,
)

pytestmark = pytest.mark.browser

NGINX = Path("/usr/sbin/nginx")
ENVSUBST = Path("/usr/bin/envsubst")
TEMPLATE = ROOT / "deploy" / "nginx" / "tillit.conf.template"
OPERATIONS = ROOT / "docs" / "operations.md"
# The template's placeholders, in the order docs/operations.md fills them.
PLACEHOLDERS = (
    "TILLIT_SERVER_NAME", "TILLIT_PUBLIC_ORIGIN", "TILLIT_HTTPS_LISTEN", "TILLIT_HTTP_LISTEN",
    "TILLIT_TLS_CERT", "TILLIT_TLS_KEY", "TILLIT_UPSTREAMS", "TILLIT_NGINX_LOG_DIR",
)
# envsubst's SHELL-FORMAT: only these are replaced, so nginx's own $variables stay.
ENVSUBST_FORMAT = " ".join("${" + name + "}" for name in PLACEHOLDERS)
HANDSHAKE = "/socket.io/?EIO=4&transport=websocket"
# Client addresses nginx sees in the limit tests (all of 127/8 is loopback); the test
# proves that they reach no log of nginx's or Tillit's.
LIMITED_ADDRESS = "127.0.0.7"
OTHER_ADDRESS = "127.0.0.8"
BURST_ADDRESS = "127.0.0.9"


def production_env(public_origin: str) -> dict[str, str]:
    """The settings both Tillit processes run with besides their shared Redis
    (support.server_pair): production, as an operator sets it."""
    return {
        **PRODUCTION_ENV,
        "TILLIT_SERVER_PUBLIC_ORIGINS": public_origin,
        # Other production-only settings go here, one line each.
    }


def template_number(directive: str) -> int:
    """A number the template sets, e.g. `limit_conn tillit_conn 100;` -> 100."""
    pattern = rf"^\s*{re.escape(directive)}\s*(\d+)"
    found = re.search(pattern, TEMPLATE.read_text(), re.MULTILINE)
    assert found, f"{directive} is not in {TEMPLATE}"
    return int(found.group(1))


def fill_template(values: dict[str, str]) -> str:
    """The docs' command: `envsubst '${TILLIT_...} ...' < template`, with these values."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}
    res = subprocess.run([str(ENVSUBST), ENVSUBST_FORMAT], input=TEMPLATE.read_text(),
                         capture_output=True, text=True, env=env, timeout=30, check=True)
    return res.stdout


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tillit-test.invalid")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class NginxProcess:
    """Debian's nginx in the foreground, as the current user, everything under `prefix`.

    The outer nginx.conf stands in for Debian's /etc/nginx/nginx.conf: it only includes
    the filled template inside `http { }` and keeps nginx's own files in `prefix`.
    """

    def __init__(self, prefix: Path, site_conf: str, https_port: int) -> None:
        self.prefix = prefix
        self.https_port = https_port
        self.logs = prefix / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        (prefix / "tillit.conf").write_text(site_conf)
        temp = {name: prefix / "temp" / name for name in
                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the key in tmp
        (prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\n"
            f"error_log {self.logs}/main-error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            # As Debian's nginx.conf: an access log for every site that does not turn it off.
            f"    access_log {self.logs}/access.log;\n"
            + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items())
            + f"    include {prefix}/tillit.conf;\n"
            "}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None

    def _command(self, *extra: str) -> list[str]:
        return [str(NGINX), "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                "-e", str(self.logs / "startup-error.log"), *extra]

    def start(self) -> None:
        test = subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, f"nginx -t refused the filled template:\n{test.stderr}"
        self._stderr = open(self.logs / "stderr.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self._command("-g", f"daemon off; pid {self.prefix}/nginx.pid;"),
            stdout=subprocess.DEVNULL, stderr=self._stderr,
        )
        wait_until_ready(self.proc, self._listening, "nginx", self.stop, self.log_text)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        end_process(self.proc, signal.SIGQUIT)  # graceful: workers finish, then exit
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def log_text(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}"
                         for p in sorted(self.logs.iterdir()) if p.is_file())

    def files(self) -> list[Path]:
        """Every file nginx has under its prefix (logs, temp files, pid)."""
        return sorted(p for p in self.prefix.rglob("*") if p.is_file())


@dataclass
class Deployment:
    base_url: str  # the public origin: https://127.0.0.1:PORT
    http_url: str
    servers: tuple[ServerProcess, ServerProcess]
    nginx: NginxProcess
    redis_prefix: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not NGINX.exists() or not ENVSUBST.exists():
        missing = "Debian's nginx (/usr/sbin/nginx) or envsubst (gettext-base)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing: .ci/run installs it "
                        "(scripts/install-browser-deps.sh)")
        pytest.skip(f"{missing} is missing: run scripts/install-browser-deps.sh")
    tmp = tmp_path_factory.mktemp("tillit-nginx")
    https_port, http_port = free_port(), free_port()
    origin = f"https://127.0.0.1:{https_port}"
    cert, key = self_signed_certificate(tmp)
    with server_pair(tmp, production_env(origin)) as pair:
        site = fill_template({
            "TILLIT_SERVER_NAME": "127.0.0.1",
            "TILLIT_PUBLIC_ORIGIN": origin,
            "TILLIT_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
            "TILLIT_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "TILLIT_TLS_CERT": str(cert),
            "TILLIT_TLS_KEY": str(key),
            "TILLIT_UPSTREAMS": f"server 127.0.0.1:{pair.a.port}; server 127.0.0.1:{pair.b.port};",
            "TILLIT_NGINX_LOG_DIR": str(tmp / "nginx" / "logs"),
        })
        nginx = NginxProcess(tmp / "nginx", site, https_port)
        try:
            nginx.start()
            yield Deployment(origin, f"http://127.0.0.1:{http_port}", pair.servers, nginx,
                             pair.prefix)
        finally:
            nginx.stop()


def _record_failures(page: Page, problems: list[str]) -> None:
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.on("websocket", lambda ws: ws.on(
        "socketerror", lambda error: problems.append(f"websocket {ws.url}: {error}")))


# ------------------------------------------------------------------ the docs and the template


def test_operations_doc_shows_the_template_verbatim() -> None:
    template = TEMPLATE.read_text()
    doc = OPERATIONS.read_text()
    assert f"```nginx\n{template}```" in doc, (
        f"docs/operations.md must show {TEMPLATE.relative_to(ROOT)} verbatim")
    # ... and fills it the way this test does: every placeholder, nothing else.
    assert set(re.findall(r"\$\{(TILLIT_[A-Z_]+)\}", template)) == set(PLACEHOLDERS)
    assert f"envsubst '{ENVSUBST_FORMAT}'" in doc


# ------------------------------------------------------------------------- through nginx


async def test_visitor_and_counselor_chat_over_https_through_nginx(
    browser: Browser, deployment: Deployment
) -> None:
    base = deployment.base_url
    account = deployment.servers[0].add_user()
    problems: list[str] = []

    # The console's socket is connected, through nginx, before the visitor's.
    chat = await open_chat_in_two_pages(browser, base, account, ignore_https_errors=True,
                                        watch=lambda page: _record_failures(page, problems))
    visitor, counselor, panel = chat.visitor, chat.counselor, chat.panel
    visitor_code = (await visitor.inner_text("#safety-code")).replace(" ", "")
    assert visitor_code == await panel.locator(".safety-code").get_attribute("data-code")

    await chat.visitor_sends("Hej, jag vet inte vem jag ska prata med")
    await chat.counselor_sends("Du kan prata med mig. Vad har hänt?")
    assert await message_texts(visitor, "#messages") == [
        "Hej, jag vet inte vem jag ska prata med", "Du kan prata med mig. Vad har hänt?"]
    assert await message_texts(counselor, ".chat-panel:not([hidden])") == [
        "Hej, jag vet inte vem jag ska prata med", "Du kan prata med mig. Vad har hänt?"]

    await chat.counselor_closes()

    # Logging out goes through the console's CSRF and origin checks behind the proxy.
    await counselor.click("#logout")
    await counselor.wait_for_url(f"{base}/console/login")
    await counselor.goto(f"{base}/console")
    await counselor.wait_for_url(f"{base}/console/login")  # the session is gone
    await chat.close()
    assert not problems, problems

    # Both processes served a socket (least_conn: the console's socket held one process
    # busy when the visitor's arrived), so the chat crossed processes over Redis.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all("GET /socket.io/ 101" in s.log_text() for s in deployment.servers):
            break
        await asyncio.sleep(0.2)
    assert [("GET /socket.io/ 101" in s.log_text()) for s in deployment.servers] == [True, True]


async def test_admin_forms_and_several_console_tabs_work_through_nginx(
    browser: Browser, deployment: Deployment
) -> None:
    base = deployment.base_url
    admin = deployment.servers[1].add_user("admin_orion_gate", role="admin")
    new_name = f"counselor_lumen_{secrets.token_hex(3)}"
    problems: list[str] = []
    context, page = await new_page(browser, ignore_https_errors=True)
    _record_failures(page, problems)
    await console_login(page, base, admin)
    # A counselor with several tabs stays far below nginx's limits (an admin takes no
    # chats: /console sends them to the accounts page).
    counselor = deployment.servers[0].add_user("counselor_orion_tabs")
    counselor_context, first = await new_page(browser, ignore_https_errors=True)
    _record_failures(first, problems)
    await console_login(first, base, counselor)
    for _ in range(4):
        tab = await counselor_context.new_page()
        _record_failures(tab, problems)
        await tab.goto(f"{base}/console")
        await tab.wait_for_selector("#conn-status[data-state='connected']")
    await counselor_context.close()

    await page.goto(f"{base}/console/admin?lang=en")
    await page.fill("#new-username", new_name)
    await page.fill("#new-display", "Lumen")
    await page.select_option("#new-role", "counselor")
    await page.click("#create-account button[type=submit]")
    await page.wait_for_selector("#secret-password")  # shown once, after the POST

    await page.goto(f"{base}/console/admin?lang=en")
    row = page.locator(f"#accounts tr[data-username='{new_name}']")
    await row.locator(".acc-toggle").click()
    await page.wait_for_selector(".admin-done")
    row = page.locator(f"#accounts tr[data-username='{new_name}']")
    await row.locator("form[action$='/enable']").wait_for()  # now offers "Enable"
    await context.close()
    assert not problems, problems


async def test_nginx_sends_no_version_and_no_permessage_deflate(
    deployment: Deployment,
) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client:
        async with client.get(f"{deployment.base_url}/?lang=en") as resp:
            assert resp.status == 200
            assert resp.headers.getall("Server") == ["nginx"]  # no version, no aiohttp
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
            assert resp.headers["Cache-Control"] == "no-store"  # Tillit's own headers pass
        async with client.get(f"{deployment.http_url}/?lang=en",
                              allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == f"{deployment.base_url}/?lang=en"
        async with client.ws_connect(
            deployment.base_url + HANDSHAKE, origin=deployment.base_url,
            headers={"Sec-WebSocket-Extensions": "permessage-deflate"}, compress=0,
        ) as ws:
            assert "Sec-WebSocket-Extensions" not in ws._response.headers
            assert "Python" not in ws._response.headers.get("Server", "")
            assert str((await ws.receive(timeout=10)).data).startswith("0{")


@pytest.fixture
async def sockets() -> AsyncIterator[list[aiohttp.ClientWebSocketResponse]]:
    """WebSockets a test opens; all closed at the end."""
    opened: list[aiohttp.ClientWebSocketResponse] = []
    yield opened
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)


def _client_from(address: str) -> aiohttp.ClientSession:
    """HTTP from a given loopback address, so nginx sees that as the client's."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=False, local_addr=(address, 0), limit=0))


async def _open_socket(client: aiohttp.ClientSession, deployment: Deployment
                       ) -> aiohttp.ClientWebSocketResponse | int:
    """An Engine.IO WebSocket through nginx, or the HTTP status that refused it."""
    try:
        ws = await client.ws_connect(deployment.base_url + HANDSHAKE, origin=deployment.base_url)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    first = await ws.receive(timeout=10)
    assert str(first.data).startswith("0{"), first
    return ws


async def test_limit_conn_refuses_one_address_past_its_sockets_and_logs_no_address(
    deployment: Deployment, sockets: list[aiohttp.ClientWebSocketResponse]
) -> None:
    per_address = template_number("limit_conn tillit_conn")
    async with _client_from(LIMITED_ADDRESS) as client, _client_from(OTHER_ADDRESS) as other:
        results = await asyncio.gather(
            *(_open_socket(client, deployment) for _ in range(per_address)))
        opened = [r for r in results if not isinstance(r, int)]
        sockets.extend(opened)
        assert len(opened) == per_address, [r for r in results if isinstance(r, int)]

        assert await _open_socket(client, deployment) == 429  # the N+1th from this address
        neighbour = await _open_socket(other, deployment)  # another address is not affected
        assert not isinstance(neighbour, int), neighbour
        sockets.append(neighbour)

        await sockets.pop(0).close()  # one closes: this address may open one again
        deadline = time.monotonic() + 10
        again: aiohttp.ClientWebSocketResponse | int = 429
        while time.monotonic() < deadline:
            again = await _open_socket(client, deployment)
            if not isinstance(again, int):
                break
            await asyncio.sleep(0.2)
        assert not isinstance(again, int), again
        sockets.append(again)
    _assert_no_address_logged(deployment, LIMITED_ADDRESS, OTHER_ADDRESS)


async def test_limit_req_lets_a_burst_through_then_refuses_and_logs_no_address(
    deployment: Deployment,
) -> None:
    burst = template_number("limit_req zone=tillit_req burst=")
    rate = float(re.search(r"zone=tillit_req:\S+ rate=(\d+)r/s", TEMPLATE.read_text()).group(1))
    passed = 0
    refused = False
    started = time.monotonic()
    async with _client_from(BURST_ADDRESS) as client:
        for _ in range(burst * 3):
            async with client.get(f"{deployment.base_url}/healthz") as resp:
                if resp.status == 429:
                    refused = True
                    break
                assert resp.status == 200
                passed += 1
    elapsed = time.monotonic() - started
    assert refused, f"{passed} requests in {elapsed:.1f}s and none refused"
    # At least the burst (what page loads may use at once), at most the burst plus what
    # the rate refilled meanwhile.
    assert burst <= passed <= burst + rate * elapsed + 1, (passed, elapsed)
    # ... nor, now that they are closed, the sockets of the limit_conn test.
    _assert_no_address_logged(deployment, BURST_ADDRESS, LIMITED_ADDRESS, OTHER_ADDRESS)


def _assert_no_address_logged(deployment: Deployment, *addresses: str) -> None:
    logs = deployment.nginx.files()
    assert any(p.name == "tillit-error.log" for p in logs)  # the template's error log
    for path in logs:
        text = path.read_bytes().decode(errors="replace")
        for address in addresses:
            assert address not in text, f"{address} in nginx's {path.name}"
    for srv in deployment.servers:
        for address in addresses:
            assert address not in srv.log_text(), f"{address} in Tillit's log"

