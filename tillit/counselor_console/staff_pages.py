"""The server-rendered staff pages' one way to render: the console's templates, the page's
language, and the navigation of the logged-in account (templates/_staff_nav.html)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tillit.chat_server.app_keys import SETTINGS
from tillit.chat_server.templating import render
from tillit.counselor_console.routes import TEMPLATES, _lang, staff_context
from tillit.counselor_console.sessions import Session


def console_lang(request: web.Request) -> str:
    """`?lang=sv|en`, else `console.lang`."""
    return _lang(request)


def render_staff_page(request: web.Request, name: str, session: Session, **context: Any) -> str:
    return render(TEMPLATES, name, _lang(request), "console",
                  site_title=request.app[SETTINGS].site.title,
                  **staff_context(request, session), **context)


def staff_page(request: web.Request, name: str, session: Session, status: int = 200,
               **context: Any) -> web.Response:
    html = render_staff_page(request, name, session, **context)
    return web.Response(text=html, content_type="text/html", status=status)
