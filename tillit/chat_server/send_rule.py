"""The send rule: whether a message may be stored in a chat (docs/protocol.md section 1).

This is the one reference. Each store applies it in the same atomic step that takes the
message's id: the SQLite store calls `refusal` with no await before the id
(stores/sqlite_store.py); the Redis store's Lua script `_APPEND_ENVELOPE`
(stores/redis_store.py) mirrors it line by line, in the same order, and
tests/test_send_rule.py checks that both stores give the same code for the same case.
"""

from __future__ import annotations

from tillit.chat_server.model import ACTIVE, Chat

# Why a message was not stored, by error code: the message sent with the code.
REFUSALS = {
    "not_found": "there is no such chat",
    "forbidden": "this chat is held by someone else",
    "conflict": "messages go only to an active chat",
    "invalid_payload": "epoch is ahead of the chat's",
}


def refusal(chat: Chat | None, epoch: int, holder: str | None) -> str | None:
    """The error code that refuses a message of `epoch` into `chat`, or None to store it.

    `holder`: the sending counselor, who must hold the chat (None for the visitor).
    """
    if chat is None:
        return "not_found"
    if holder is not None and chat.counselor != holder:
        return "forbidden"
    if chat.state != ACTIVE:
        return "conflict"
    if epoch > chat.epoch:
        return "invalid_payload"
    return None
