"""The console names a visitor's language so that a counselor can read it: a chat in
Sorani shows "کوردی (سۆرانی)" in the queue, the chat's details and its tab, drawn right
to left with the brackets in place, even next to a Latin-script age group."""

from __future__ import annotations

import pytest
from pages import console_login, new_page
from protocol_client import ok
from support import ServerProcess, connect_visitor

pytestmark = pytest.mark.browser

SORANI = "کوردی (سۆرانی)"

# x of every character of the element's text as drawn, in logical order.
CHAR_X_JS = """(el) => {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const node = walker.nextNode();
  const range = document.createRange();
  const xs = [];
  for (let i = 0; i < node.data.length; i++) {
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    const box = range.getBoundingClientRect();
    xs.push(box.x + box.width / 2);
  }
  return {text: node.data, xs};
}"""


async def assert_drawn_right_to_left(locator) -> None:  # noqa: ANN001
    drawn = await locator.evaluate(CHAR_X_JS)
    assert drawn["text"] == SORANI
    xs = drawn["xs"]
    text = drawn["text"]
    # Right to left: the first letter is rightmost, the closing bracket leftmost (the
    # bracket-pair rule of the bidi algorithm keeps it there beside Latin text).
    assert xs[0] == max(xs), drawn
    assert xs[text.index(")")] == min(xs), drawn
    assert xs[text.index("(")] < xs[text.index(" ")] < xs[0], drawn


async def test_a_sorani_chat_shows_its_language_name_right_to_left(
    browser, fresh_server: ServerProcess
) -> None:
    account = fresh_server.add_user()
    context, page = await new_page(browser, 1400, 900)
    await console_login(page, fresh_server.base_url, account)
    visitor = await connect_visitor(fresh_server.base_url)
    try:
        # "Under 13" (Latin script) follows the language name on the queue line.
        ok(await visitor.start(lang="ckb", age_group="under_13", role="self"))
        item = page.locator(".queue-item").first
        await item.wait_for()
        await assert_drawn_right_to_left(item.locator(".qi-lang"))

        await page.click("#take-next")
        panel = page.locator(".chat-panel:not([hidden])")
        await panel.wait_for()
        await visitor.wait_assigned()
        await assert_drawn_right_to_left(panel.locator(".meta-lang"))
        await assert_drawn_right_to_left(page.locator(".tab-meta bdi").first)
    finally:
        await visitor.disconnect()
        await context.close()
