"""Typed keys for what the application shares between its parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite
import socketio
from aiohttp import web

from tillit.chat_server.settings import Settings

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("settings", Settings)
DURABLE_DB = web.AppKey("durable_db", aiosqlite.Connection)
CHATS = web.AppKey("chats", "ChatService")
LOGIN_THROTTLE = web.AppKey("login_throttle", "LoginThrottle")
STORE = web.AppKey("ephemeral_store", object)  # read by /healthz
SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)  # the one Socket.IO server
