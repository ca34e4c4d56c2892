"""The visitor page is light: ≤150 kB uncompressed in all, usable within 3 s on slow 3G.

Measured through Chrome DevTools Protocol in Debian's Chromium against the real server:
`Network.dataReceived` gives decoded (uncompressed) bytes, `Network.loadingFinished`
the bytes on the wire. Slow 3G is WebPageTest's profile: 400 ms round trip, 400 kbit/s
down and up (`Network.emulateNetworkConditions`). "Usable" means the start button works:
the deferred scripts have run and wired the page (`html[data-ready]`).
"""

from __future__ import annotations

import time

import pytest
from pages import new_page, shipped_languages

pytestmark = pytest.mark.browser

BUDGET_BYTES = 150_000
USABLE_WITHIN_S = 3.0
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8,
           "uploadThroughput": 400_000 / 8}


async def _load(browser, url: str, throttle: bool) -> tuple[dict[str, list[int]], float]:  # noqa: ANN001
    context, page = await new_page(browser, 360, 740)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if throttle:
        await cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    urls: dict[str, str] = {}
    sizes: dict[str, list[int]] = {}  # url -> [decoded, on the wire, fetches]
    cdp.on("Network.responseReceived",
           lambda e: urls.__setitem__(e["requestId"], e["response"]["url"]))

    def sent(e: dict) -> None:
        sizes.setdefault(e["request"]["url"], [0, 0, 0])[2] += 1

    cdp.on("Network.requestWillBeSent", sent)

    def data(e: dict) -> None:
        sizes.setdefault(urls.get(e["requestId"], e["requestId"]), [0, 0, 0])[0] += e["dataLength"]

    def done(e: dict) -> None:
        sizes.setdefault(urls.get(e["requestId"], e["requestId"]), [0, 0, 0])[1] += int(
            e["encodedDataLength"])

    cdp.on("Network.dataReceived", data)
    cdp.on("Network.loadingFinished", done)
    started = time.monotonic()
    await page.goto(url)
    await page.wait_for_selector("html[data-ready] #start-chat:not([disabled])", timeout=20_000)
    usable_s = time.monotonic() - started
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(300)
    await context.close()
    return sizes, usable_s


@pytest.mark.parametrize("lang", shipped_languages())
async def test_page_weight_and_slow_3g(browser, server, lang: str) -> None:
    sizes, _ = await _load(browser, f"{server.base_url}/?lang={lang}", throttle=False)
    # Each file once: a second fetch of the same file (symbols.svg used to come two or
    # three times, `no-store` keeping it out of the memory cache) is weight for nothing.
    again = {u: v[2] for u, v in sizes.items() if v[2] > 1}
    assert not again, again
    decoded = sum(v[0] for v in sizes.values())
    wire = sum(v[1] for v in sizes.values())
    report = ", ".join(f"{u.rsplit('/', 1)[-1] or '/'}={v[0]}" for u, v in sorted(sizes.items()))
    print(f"\n{lang}: {decoded} B uncompressed, {wire} B on the wire: {report}")
    assert any("socket.io.min.js" in u for u in sizes)
    assert any("visitor/main.js" in u for u in sizes)
    assert decoded <= BUDGET_BYTES, report
    assert wire < decoded * 0.6, "text should be compressed on the wire"

    _, usable_s = await _load(browser, f"{server.base_url}/?lang={lang}", throttle=True)
    print(f"{lang}: usable after {usable_s:.2f} s on emulated slow 3G")
    assert usable_s <= USABLE_WITHIN_S


def test_static_text_is_gzipped_but_socketio_is_not(server) -> None:
    import urllib.request

    for path in ("/", "/static/visitor/main.js", "/static/vendor/socket.io.min.js"):
        req = urllib.request.Request(server.base_url + path, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req) as resp:
            assert resp.headers.get("Content-Encoding") == "gzip", path
    import urllib.error

    req = urllib.request.Request(  # refused (WebSocket only), but never compressed either
        server.base_url + "/socket.io/?EIO=4&transport=polling",
        headers={"Accept-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req)
    assert refused.value.code == 400
    assert refused.value.headers.get("Content-Encoding") is None
