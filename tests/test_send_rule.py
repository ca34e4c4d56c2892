"""The send rule is written once (chat_server/send_rule.py) and mirrored by the Redis
store's Lua script: for every refused case both real stores give the rule's code."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from support import new_chat, open_store

from tillit.chat_server import send_rule
from tillit.chat_server.model import ACTIVE, ENDED, QUEUED, Chat
from tillit.chat_server.stores import SendRefused

# (what the chat is like, who sends, the envelope's epoch) -> the rule's code
CASES = [
    ("missing", None, 1, "not_found"),
    ("queued", None, 0, "conflict"),
    ("ended", None, 1, "conflict"),
    ("active", "counselor-b", 1, "forbidden"),
    ("queued", "counselor-b", 0, "forbidden"),  # the holder is checked before the state
    ("active", None, 2, "invalid_payload"),
    ("active", "counselor-a", 2, "invalid_payload"),
    ("active", "counselor-a", 1, None),
    ("active", None, 0, None),  # an older epoch: a message sent before a re-key
]


def chat_like(kind: str) -> Chat:
    chat = new_chat()
    if kind in ("active", "ended"):
        chat.state, chat.epoch, chat.counselor = ACTIVE, 1, "counselor-a"
    if kind == "ended":
        chat.state = ENDED
    if kind == "queued":
        chat.state = QUEUED
    return chat


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_both_stores_refuse_as_the_rule_says(kind: str, tmp_path: Path) -> None:
    async with open_store(kind, tmp_path) as store:
        for state, holder, epoch, code in CASES:
            chat = chat_like(state)
            if state != "missing":
                await store.save_chat(chat)
            assert send_rule.refusal(None if state == "missing" else chat, epoch,
                                     holder) == code
            env: dict[str, Any] = {"chat_id": chat.chat_id, "id": 0, "epoch": epoch,
                                   "dir": "v2c" if holder is None else "c2v", "seq": 0,
                                   "nonce": secrets.token_urlsafe(12), "ct": "x", "ts": 1}
            if code is None:
                assert await store.append_checked(chat.chat_id, env, holder) == (1, True)
                continue
            with pytest.raises(SendRefused) as caught:
                await store.append_checked(chat.chat_id, env, holder)
            assert caught.value.code == code, (state, holder, epoch)
            if state != "missing":
                assert await store.envelopes_after(chat.chat_id, 0) == []
