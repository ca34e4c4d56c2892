"""New-chat signals in the console (issue 15): opt-in sound and desktop notification.

`window.Notification` and `AudioContext` are the browser's APIs, not ours: an init script
replaces them with recorders so the test sees what the page asks of them."""

from __future__ import annotations

import json

import pytest
from pages import console_login, new_page
from protocol_client import VisitorClient, ok
from support import ServerProcess, connect_visitor

pytestmark = pytest.mark.browser

RECORDERS = """
(() => {
  window.__signals = {asks: [], notes: [], tones: []};
  class FakeNotification {
    constructor(title, options) {
      window.__signals.notes.push({title, options: JSON.parse(JSON.stringify(options || {}))});
    }
    close() {}
  }
  FakeNotification.permission = "default";
  FakeNotification.requestPermission = () => {
    window.__signals.asks.push({gesture: navigator.userActivation.isActive});
    FakeNotification.permission = "granted";
    return Promise.resolve("granted");
  };
  window.Notification = FakeNotification;
  class FakeAudioContext {
    constructor() { this.state = "running"; this.currentTime = 0; this.destination = {}; }
    resume() { return Promise.resolve(); }
    createGain() {
      const ramp = () => {};
      return {gain: {setValueAtTime: ramp, exponentialRampToValueAtTime: ramp},
              connect() {}};
    }
    createOscillator() {
      const osc = {frequency: {setValueAtTime(f) { osc.f = f; }}, connect() {}, stop() {},
                   start() { window.__signals.tones.push(osc.f); }};
      return osc;
    }
  }
  window.AudioContext = FakeAudioContext;
})();
"""


async def recorded(page) -> dict:  # noqa: ANN001
    return await page.evaluate("() => JSON.parse(JSON.stringify(window.__signals))")


async def test_notification_asked_on_a_click_and_shown_without_chat_content(
    browser, server: ServerProcess
) -> None:
    account = server.add_user()
    context, page = await new_page(browser, 1280, 720)
    await context.add_init_script(RECORDERS)
    await console_login(page, server.base_url, account)
    visitors: list[VisitorClient] = []

    async def visitor_waits(**answers) -> VisitorClient:  # noqa: ANN003
        visitor = await connect_visitor(server.base_url)
        visitors.append(visitor)
        ok(await visitor.start(**answers))
        await page.locator(f".queue-item[data-chat-id='{visitor.chat_id}']").wait_for()
        return visitor

    try:
        # Both off by default; a chat arriving now gives neither, and nothing was asked.
        assert not await page.locator("#signal-sound").is_checked()
        assert not await page.locator("#signal-notify").is_checked()
        await visitor_waits(lang="sv")
        assert await recorded(page) == {"asks": [], "notes": [], "tones": []}

        # Ticking the box asks for permission, within the click.
        await page.locator("#signal-notify").click()
        await page.wait_for_function("window.__signals.asks.length === 1")
        assert (await recorded(page))["asks"] == [{"gesture": True}]
        assert await page.locator("#signal-notify").is_checked()
        await page.locator("#signal-sound").click()

        plain = await visitor_waits(lang="ar", age_group="13_15", topics=["violence"])
        await page.wait_for_function("window.__signals.notes.length === 1")
        urgent = await visitor_waits(lang="en", danger_now=True)
        await page.wait_for_function("window.__signals.notes.length === 2")
        seen = await recorded(page)
        first, second = seen["notes"]
        assert first["title"] == "Ny chatt väntar"
        assert second["title"] == "Brådskande chatt väntar"
        assert first["options"]["tag"] != second["options"]["tag"]
        assert second["options"]["requireInteraction"] and not first["options"].get(
            "requireInteraction")
        # Nothing about the chat: no id, language, age, topic or text.
        shown = json.dumps(seen["notes"], ensure_ascii=False)
        assert "body" not in first["options"] and "body" not in second["options"]
        for needle in (plain.chat_id, urgent.chat_id, "Arabiska", "العربية", "Arabic",
                       "13_15", "13–15", "violence", "Hot eller våld", "English", "Engelska"):
            assert needle not in shown, needle
        # The chime: two notes for a new chat, three higher ones for danger now.
        assert seen["tones"] == [660, 880, 880, 1175, 880]
        assert seen["asks"] == [{"gesture": True}]  # asked once, never again
    finally:
        for visitor in visitors:
            await visitor.end()
            await visitor.disconnect()
        await context.close()
