"""Typed keys for what the application shares between its parts."""

from __future__ import annotations

import socketio
from aiohttp import web

from tillit.chat_server.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CHATS = web.AppKey("chats", "ChatService")
STORE = web.AppKey("ephemeral_store", object)  # read by /healthz
SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)  # the one Socket.IO server
MAILBOXES = web.AppKey("mailboxes", "MailboxService")  # docs/protocol.md E12
