"""Typed keys for what the console's routes share: the durable database (accounts,
sessions, audit, notes, statistics facts) and the login throttle. The chat core never
reads them (tillit/chat_server/app_keys.py holds the keys it does read)."""

from __future__ import annotations

import aiosqlite
from aiohttp import web

from tillit.safety.login_throttle import LoginThrottle

DURABLE_DB = web.AppKey("durable_db", aiosqlite.Connection)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
