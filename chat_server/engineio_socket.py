"""Engine.IO's WebSocket transport without a new asyncio task per frame.

python-engineio 4.x waits for every incoming frame with
`asyncio.wait_for(asyncio.ensure_future(ws.wait()), timeout)` and for every outgoing
packet with `asyncio.wait_for(queue.get(), timeout)`. On Python 3.11 each `wait_for`
wraps its awaitable in a Task with a timer and a waiter future: three to four tasks per
chat message (one frame in, a `msg:new` and an ack out) on top of the handler's own.
At 2 000 messages/s that machinery was the largest share of the server's core
(bench/README.md). `asyncio.timeout` keeps the same deadlines with one timer handle and
no task (the change python-websockets made for the same reason).

Everything else, including the polling-to-WebSocket upgrade, is the library's own code;
`LeanEngineServer` hands each new socket this class before the connection's first
frame is read. Behaviour on the wire is unchanged: every test that talks to a server
(the protocol client, the browsers, the load generator) goes through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import socketio
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket


class LeanSocket(AsyncSocket):
    def _idle_limit(self) -> float:
        return self.server.ping_interval + self.server.ping_timeout

    async def poll(self) -> list[packet.Packet]:
        """The packets waiting to be sent: `[]` once the socket is closing."""
        try:
            async with asyncio.timeout(self._idle_limit()):
                first = await self.queue.get()
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None
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
        idle = self._idle_limit()
        max_size = self.server.max_http_buffer_size
        while True:
            try:
                async with asyncio.timeout(idle):
                    frame = await ws.wait()
            except (Exception, asyncio.CancelledError):  # closed, timed out or torn down
                break
            if frame is None or len(frame) > max_size:
                break
            try:
                await self.receive(packet.Packet(encoded_packet=frame))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
        await self.queue.put(None)  # lets the writer finish
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _write_frames(self, ws: Any) -> None:
        while True:
            try:
                packets = await self.poll()
            except exceptions.QueueEmpty:
                break
            if not packets:
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except Exception:
                break
        await ws.close()


class LeanEngineServer(engineio.AsyncServer):
    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # `_handle_connect` has just made the socket and reads nothing from it
            # before this event; from here on it is a LeanSocket.
            sock = self.sockets.get(args[0])
            if type(sock) is AsyncSocket:
                sock.__class__ = LeanSocket
        return await super()._trigger_event(event, *args, **kwargs)


class LeanSocketIOServer(socketio.AsyncServer):
    """`socketio.AsyncServer` on the lean transport; nothing else differs."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return LeanEngineServer
