"""Role checks for console routes, enforced on the server for every request."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from tillit.counselor_console.routes import current_session
from tillit.counselor_console.sessions import Session
from tillit.counselor_console.staff_pages import render_staff_page


def forbidden_page(request: web.Request, session: Session) -> web.HTTPForbidden:
    """A 403 that is a page of the console: its styles, its language, the navigation of
    the account, and a way to the account's own start page."""
    html = render_staff_page(request, "forbidden.html", session)
    return web.HTTPForbidden(text=html, content_type="text/html")


async def require_role(request: web.Request, roles: Iterable[str]) -> Session:
    """The session if its role is one of `roles`; else a redirect to login or a 403."""
    session = await current_session(request)
    if session is None:
        if request.path.startswith("/api/") or request.path.endswith(".csv"):
            raise web.HTTPUnauthorized(text="log in first")
        raise web.HTTPFound("/console/login")
    if session.role not in set(roles):
        if request.path.startswith("/api/") or request.path.endswith(".csv"):
            raise web.HTTPForbidden(text="this account may not open this page")
        raise forbidden_page(request, session)
    return session


def check_csrf(request: web.Request, session: Session, form_token: str | None = None) -> None:
    """State-changing requests carry the session's CSRF token (header or form field)."""
    sent = request.headers.get("X-CSRF-Token") or form_token
    if sent != session.csrf_token or _from_another_site(request):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")


def _from_another_site(request: web.Request) -> bool:
    """True for a request that says it comes from another site.

    Under `Referrer-Policy: no-referrer` a browser sends a same-origin form POST with
    `Origin: null`, so `null` is decided by `Sec-Fetch-Site` (which a cross-site or
    sandboxed page cannot set to `same-origin`). The Host compared with `Origin` is the
    one the browser sent: a proxy must pass it on unchanged (docs/operations.md).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.split("://", 1)[-1] != request.host
    return False
