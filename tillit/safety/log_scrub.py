"""Error reports without the client's address or request bytes (issue 3, item 7).

aiohttp reports a request it could not handle as "Error handling request from <peer
address>" with a traceback. For a malformed request that traceback quotes the offending
bytes of the request itself, which can be any header: a user agent, a forwarded address,
a cookie. The access log is already anonymous (`safety/access_log.py`); this filter makes
the error reports so too, keeping what an operator needs: the exception type, the status,
and the traceback of an exception raised by our own code.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"
_PREFIX = "Error handling request"


class ServerErrorScrubber(logging.Filter):
    """Drops the peer address; replaces a parser error's quoted request by its type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_PREFIX):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            # Its message quotes the raw request line or header: keep only type and status.
            record.msg = "%s: %s %s (a malformed request; its bytes are not logged)"
            record.args = (_PREFIX, type(exc).__name__, exc.code)
            record.exc_info = None
            record.exc_text = None
        else:
            record.msg = _PREFIX
            record.args = ()
        return True


def scrub_server_errors() -> None:
    """Installs the filter on aiohttp's server logger, once per process."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ServerErrorScrubber) for f in logger.filters):
        logger.addFilter(ServerErrorScrubber())
