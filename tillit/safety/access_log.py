"""An access log that cannot name anyone: no address, no user agent, no query string."""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AnonymousAccessLogger(AbstractAccessLogger):
    """`GET /path 200 1.2ms`: enough to run the service, nothing about the person."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Engine.IO and Socket.IO log packets (content, sids) at INFO when asked: keep them quiet.
    for name in ("engineio", "socketio", "engineio.server", "socketio.server"):
        logging.getLogger(name).setLevel(logging.WARNING)
