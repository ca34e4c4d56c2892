"""Text compression on the wire for pages and static files, never for Socket.IO.

A young person on a cheap phone with a weak signal pays for every byte (issue 7: the
visitor page must be usable within 3 s on slow 3G). HTML, CSS, JavaScript and SVG
shrink to about a third with gzip. The Engine.IO path is left alone: its WebSocket
refuses permessage-deflate on purpose (docs/architecture.md, measured fact 3), and its polling
answers are small and already base64 ciphertext.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

# Below this a gzip header costs more than it saves.
MIN_BYTES = 512
TEXT_SUFFIXES = (".html", ".css", ".js", ".svg", ".json", ".txt")
TEXT_TYPES = ("text/html", "text/css", "application/javascript", "text/javascript",
              "image/svg+xml", "application/json", "text/plain")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def compressible(request: web.Request, response: web.StreamResponse, skip_prefix: str) -> bool:
    """Text responses outside `skip_prefix` (the Socket.IO path)."""
    if request.path.startswith(skip_prefix) or response.status != 200:
        return False
    if isinstance(response, web.FileResponse):
        return request.path.endswith(TEXT_SUFFIXES)
    if isinstance(response, web.Response):
        body = response.body
        size = len(body) if isinstance(body, (bytes, bytearray)) else 0
        return response.content_type in TEXT_TYPES and size >= MIN_BYTES
    return False


def compression_middleware(skip_prefix: str):  # noqa: ANN201 - aiohttp middleware
    """gzip or deflate, whichever the browser offers (aiohttp reads Accept-Encoding)."""

    @web.middleware
    async def compress_text(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if compressible(request, response, skip_prefix):
            response.enable_compression()
            response.headers["Vary"] = "Accept-Encoding"
        return response

    return compress_text
