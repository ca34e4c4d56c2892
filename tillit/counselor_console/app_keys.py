"""Typed keys for what the console's routes share: the durable database (accounts,
sessions, audit, notes, statistics facts), the login throttle and who is online. The
chat core never reads them (tillit/chat_server/app_keys.py holds the keys it reads)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.safety.login_throttle import LoginThrottle

# The durable database (tillit/durable/): SQLite in the data folder, or PostgreSQL.
DURABLE_DB = web.AppKey("durable_db", AsyncEngine)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
# Counted as online by the operations panel (CounselorNamespace.online_usernames).
STAFF_ONLINE = web.AppKey("staff_online", Callable[[], "Awaitable[set[str]]"])
