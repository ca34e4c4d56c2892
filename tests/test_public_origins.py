"""`server.public_origins` (issue "Go-live security", point 12): behind a TLS-terminating
proxy the process sees plain http, so Engine.IO's own same-origin check refused every
real browser (`https://… is not an accepted origin`, 400). The configured origins are
checked at start-up and trusted; production refuses to start without them.

The whole deployment through a real nginx is tests/browser/test_nginx_deployment.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
from support import ROOT, ServerProcess, server_fixture

from tillit.app import create_app, create_socketio
from tillit.chat_server.event_namespace import SocketGate
from tillit.chat_server.settings import SettingsError, load_settings, public_origins
from tillit.safety.rate_limit import Limits, TrafficGuard

PUBLIC = "https://chatt.example.test"
HANDSHAKE = "/socket.io/?EIO=4&transport=websocket"


def _origins(value: str, development: bool = False) -> list[str]:
    return public_origins(load_settings(environ={
        "TILLIT_SERVER_PUBLIC_ORIGINS": value,
        "TILLIT_SERVER_DEVELOPMENT": "true" if development else "false",
    }))


@pytest.mark.parametrize(("written", "expected"), [
    ("https://chatt.example.se", ["https://chatt.example.se"]),
    # As browsers write `Origin`: lower case, no default port, no trailing slash.
    ("https://Chatt.Example.SE:443/", ["https://chatt.example.se"]),
    ("https://chatt.example.se:8443", ["https://chatt.example.se:8443"]),
    ("https://chatt.example.se, https://samtal.example.se",
     ["https://chatt.example.se", "https://samtal.example.se"]),
    ("https://[2001:db8::1]", ["https://[2001:db8::1]"]),
])
def test_public_origins_are_read_as_browsers_write_them(
    written: str, expected: list[str]
) -> None:
    assert _origins(written) == expected


@pytest.mark.parametrize(("written", "why"), [
    ("chatt.example.se", "must start with https://"),
    ("http://chatt.example.se", "must start with https://"),
    ("https://chatt.example.se/chatt", "more than scheme, host and port"),
    ("https://chatt.example.se?x=1", "more than scheme, host and port"),
    ("https://*", "no plain host name"),
    ("https://user@chatt.example.se", "no plain host name"),
    ("https://chatt.example.se:99999", "is not a URL"),
])
def test_a_malformed_public_origin_is_refused_with_what_to_write(written: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _origins(written)
    message = str(caught.value)
    assert "server.public_origins" in message and why in message
    assert '"https://host"' in message


def test_production_refuses_to_start_without_public_origins() -> None:
    settings = load_settings(environ={"TILLIT_SERVER_DEVELOPMENT": "false"})
    with pytest.raises(SettingsError, match=r"server\.public_origins is empty"):
        create_app(settings)  # refused before anything starts
    # Development keeps Engine.IO's same-origin check on the request (127.0.0.1).
    dev = load_settings(environ={"TILLIT_SERVER_DEVELOPMENT": "true"})
    assert public_origins(dev) == []
    guard = TrafficGuard(Limits(**dev.section("limits")), backlog=lambda: 0)
    gate = SocketGate(guard, staff_session=lambda environ: asyncio.sleep(0, False))
    sio = create_socketio(dev, gate, screen=lambda frame: None)
    assert sio.eio.cors_allowed_origins is None
    # http:// is a development address only.
    assert _origins("http://127.0.0.1:8080", development=True) == ["http://127.0.0.1:8080"]


def test_serve_refuses_a_malformed_public_origin_with_a_clear_message(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "TILLIT_SERVER_DEVELOPMENT": "true",
           "TILLIT_SERVER_PUBLIC_ORIGINS": "chatt.example.se"}
    res = subprocess.run(
        [sys.executable, "-m", "tillit", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, cwd=ROOT, env=env, timeout=60, text=True,
    )
    assert res.returncode == 2, res
    assert res.stderr.startswith("tillit: server.public_origins: 'chatt.example.se'"), res.stderr
    assert "Traceback" not in res.stderr


behind_proxy = server_fixture({"TILLIT_SERVER_PUBLIC_ORIGINS": PUBLIC})


async def _handshake(srv: ServerProcess, origin: str, host: str) -> tuple[int, str]:
    """A browser's WebSocket as a TLS proxy passes it on: http, with the browser's Host and
    Origin. Returns the HTTP status and, once upgraded, Engine.IO's first frame."""
    async with aiohttp.ClientSession() as client:
        try:
            async with client.ws_connect(srv.base_url + HANDSHAKE, origin=origin,
                                         headers={"Host": host}) as ws:
                frame = await ws.receive(timeout=10)
                return 101, str(frame.data)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, exc.message


async def test_the_public_origin_is_accepted_over_the_proxys_plain_http(
    behind_proxy: ServerProcess,
) -> None:
    status, first = await _handshake(behind_proxy, PUBLIC, "chatt.example.test")
    assert status == 101 and first.startswith("0{"), (status, first)  # Engine.IO's open


async def test_another_sites_origin_is_still_refused(behind_proxy: ServerProcess) -> None:
    status, _ = await _handshake(behind_proxy, "https://elsewhere.example", "chatt.example.test")
    assert status == 400
    # Once origins are configured, a matching Host no longer makes an origin acceptable.
    status, _ = await _handshake(behind_proxy, "http://chatt.example.test", "chatt.example.test")
    assert status == 400
