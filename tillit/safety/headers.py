"""No-trace headers on every response: nothing cached, no referrer, a strict CSP.

The page must leave nothing in the browser worth finding (README.md "The quick exit
and what stays on the visitor's device"), and the same headers cost the console
nothing, so they go on everything.
"""

from __future__ import annotations

from aiohttp import web

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

NO_TRACE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


async def add_no_trace_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: also reaches static files, errors and the WebSocket."""
    for name, value in NO_TRACE_HEADERS.items():
        response.headers[name] = value
    response.headers.popall("Server", None)
    if _is_visitor(request):
        response.headers.popall("Set-Cookie", None)
    response.headers.popall("ETag", None)
    response.headers.popall("Last-Modified", None)


def _is_visitor(request: web.Request) -> bool:
    """Visitor responses never set a cookie, whatever a library would like to."""
    path = request.path
    return not (path.startswith("/console") or path.startswith("/api/console"))
