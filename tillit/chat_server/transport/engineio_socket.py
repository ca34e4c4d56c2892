"""Engine.IO's WebSocket transport without a new asyncio task per frame.

python-engineio 4.x waits for every incoming frame with
`asyncio.wait_for(asyncio.ensure_future(ws.wait()), timeout)` and for every outgoing
packet with `asyncio.wait_for(queue.get(), timeout)`. On Python 3.11 each `wait_for`
wraps its awaitable in a Task with a timer and a waiter future: three to four tasks per
chat message (one frame in, a `msg:new` and an ack out) on top of the handler's own.
At 2 000 messages/s that machinery was the largest share of the server's core
(bench/README.md). Here the reader keeps the same idle deadline with one watchdog timer
per connection (`_IdleWatchdog`), and no task or timer is made per frame.

Outgoing packets are written straight to the WebSocket by whoever sends them, while
nothing is queued and the connection's write buffer has room: aiohttp writes an
uncompressed frame synchronously, so the order of `send` calls is the order on the
wire, and the per-socket writer task (a queue hand-off and a task switch per packet)
only runs when it must: before the first frame, and while a slow reader's buffer is
full, so that a sender never waits for someone else's connection.

Everything else, including the polling-to-WebSocket upgrade, is the library's own code;
`LeanEngineServer` hands each new socket this class before the connection's first
frame is read. Behaviour on the wire is unchanged: every test that talks to a server
(the protocol client, the browsers, the load generator) goes through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket


class LeanSocket(AsyncSocket):
    _direct: Any = None  # the WebSocket, while packets may bypass the queue
    _room: int = 0  # bytes the transport may buffer before it asks writers to wait

    async def send(self, pkt: packet.Packet) -> None:
        if not await self.check_ping_timeout():
            return
        ws = self._direct
        if ws is not None:
            data = pkt.encode()
            transport = ws.environ["aiohttp.request"].transport
            if (
                transport is not None
                and transport.get_write_buffer_size() + len(data) + 16 < self._room
            ):
                try:
                    await ws.send(data)  # written before it returns: nothing to wait for
                except Exception:  # the peer is gone; the reader notices and closes
                    self._direct = None
                return
            self._direct = None  # full: queue behind what is buffered
        await self.queue.put(pkt)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        if self.closed and self._direct is not None:
            # Nothing queued is left to flush: end the connection now rather than leave
            # it to a client that may never hang up (the queue-less writer has no timer).
            self._direct = None
            self.queue.put_nowait(None)

    def _idle_limit(self) -> float:
        return self.server.ping_interval + self.server.ping_timeout

    async def poll(self) -> list[packet.Packet]:
        """The packets waiting to be sent: `[]` once the socket is closing."""
        try:
            async with asyncio.timeout(self._idle_limit()):
                return await self._queued_packets()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None

    async def _queued_packets(self) -> list[packet.Packet]:
        first = await self.queue.get()
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)  # the writer sees the end on its next poll
                break
            packets.append(pkt)
        return packets

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from long-polling: rare here, the library's path
            return await super()._websocket_handler(ws)
        self.connected = True
        self.upgraded = True
        writer = asyncio.ensure_future(self._write_frames(ws))
        watchdog = _IdleWatchdog(self._idle_limit())
        max_size = self.server.max_http_buffer_size
        screen = self.server.screen
        while True:
            try:
                with watchdog:
                    frame = await ws.wait()
            except (Exception, asyncio.CancelledError):  # closed, timed out or torn down
                break
            if frame is None or len(frame) > max_size:
                break
            if type(frame) is str:
                answer = screen(frame)
                if answer is not None:  # answered (or dropped) without decoding
                    if answer:
                        await self.send(packet.Packet(packet.MESSAGE, data=answer))
                    continue
            try:
                await self.receive(packet.Packet(encoded_packet=frame))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
        watchdog.stop()
        await self.queue.put(None)  # lets the writer finish
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _write_frames(self, ws: Any) -> None:
        transport = ws.environ["aiohttp.request"].transport
        self._room = transport.get_write_buffer_limits()[1] if transport is not None else 0
        while True:
            # No deadline here: packets mostly bypass the queue, and the reader's
            # watchdog, not a quiet queue, decides when a connection is dead.
            packets = await self._queued_packets()
            if not packets:
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except Exception:
                break
            if self.queue.empty() and not self.closed:
                self._direct = ws  # caught up: senders may write directly again
        self._direct = None
        await ws.close()


class _IdleWatchdog:
    """Cancels the reading task once it has waited `limit` seconds for one frame.

    `asyncio.timeout` around each read arms and cancels a timer per frame (a tenth of
    the loop's work at saturation); this timer is armed once per `limit` and, when it
    fires while a frame has arrived since, moves itself to that frame's deadline.
    """

    def __init__(self, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._limit = limit
        self._since: float | None = None  # when the current wait began; None between
        self._fired = False
        self._timer = self._loop.call_at(self._loop.time() + limit, self._check)

    def __enter__(self) -> None:
        self._since = self._loop.time()

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        self._since = None
        if self._fired and kind is asyncio.CancelledError and self._task is not None:
            self._task.uncancel()  # our own cancel, now a plain timeout
            raise TimeoutError from error

    def _check(self) -> None:
        since = self._since
        now = self._loop.time()
        if since is not None and now - since >= self._limit and self._task is not None:
            self._fired = True
            self._task.cancel()
            return
        start = since if since is not None else now
        self._timer = self._loop.call_at(start + self._limit, self._check)

    def stop(self) -> None:
        self._timer.cancel()


class LeanEngineServer(engineio.AsyncServer):
    def __init__(
        self,
        *,
        screen: Callable[[str], str | None],
        admit: Callable[[str, dict[str, Any]], Awaitable[bool]],
        gone: Callable[[str], None],
        **options: Any,
    ) -> None:
        super().__init__(**options)
        # May answer a text frame before it is decoded: returns the Socket.IO packet to
        # send back ("" for none) or None to handle the frame as usual.
        self.screen = screen
        # Whether a new connection (sid, environ) is taken in, and word that one is
        # gone: the connection caps (tillit.chat_server.event_namespace.SocketGate).
        self.admit = admit
        self.gone = gone

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # `_handle_connect` has just made the socket and reads nothing from it
            # before this event; from here on it is a LeanSocket.
            sock = self.sockets.get(args[0])
            if type(sock) is AsyncSocket:
                sock.__class__ = LeanSocket
            if not await self.admit(args[0], args[1]):
                return False  # the library answers 401 and forgets the socket
            try:
                result = await super()._trigger_event(event, *args, **kwargs)
            except BaseException:
                self.gone(args[0])
                raise
            if result is not None and result is not True:
                self.gone(args[0])
            return result
        if event == "disconnect":
            try:
                return await super()._trigger_event(event, *args, **kwargs)
            finally:
                self.gone(args[0])
        return await super()._trigger_event(event, *args, **kwargs)


class LeanSocketIOServer(socketio.AsyncServer):
    """`socketio.AsyncServer` on the lean transport; nothing else differs. Its
    `screen`, `admit` and `gone` keywords reach `LeanEngineServer`."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return LeanEngineServer
