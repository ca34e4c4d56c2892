"""Socket.IO fan-out inside one process, without the per-emit overhead a chat does not need.

A chat message is one emit to a room of one or two sockets, and a counselor's own
message is also emitted to the counselor room minus its sender, which is almost
always empty. `socketio.AsyncManager.emit` builds and JSON-encodes the packet before
it looks at the room, and spawns a task per recipient; at 2 000 messages/s that is a
measurable share of a core (bench/README.md). This manager encodes nothing for an
empty room and sends to a single recipient directly; everything else (callbacks,
several recipients, rooms) is the library's own code.

A frame nested deeper than the JSON decoder follows (it raises RecursionError at about
a thousand levels) is not an error of the connection: `TextPacket` hands the event on
with `TOO_DEEP` as its payload, and the namespace answers `invalid_payload` to its ack.

`TextPacket` answers "is there binary data in this payload?" without building a list
per level: Tillit's events carry only JSON text (docs/protocol.md), and the check runs on
every event, ack and emit. It also encodes and decodes with one JSON encoder and one
decoder made once: the library calls `json.dumps(data, separators=...)` and
`json.loads(text, parse_int=...)`, and the standard library builds a new encoder or
decoder for every call that passes options.

With Redis, `tillit.chat_server.transport.redis_fanout` publishes each emit for the other
processes and delivers to this process's own sockets through this same fast path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet


def _bounded_int(digits: str) -> int:
    """Refuses the integers engine.io refuses too: CPython's int() of a long digit
    string costs quadratic time."""
    if len(digits) > 100:
        raise ValueError("integer too long")
    return int(digits)


class _TooDeep:
    """The payload of an event whose JSON is nested too deeply to decode."""

    def __repr__(self) -> str:
        return "TOO_DEEP"


TOO_DEEP: Any = _TooDeep()
# The event name at the start of an event's JSON array, if it has one.
_EVENT_NAME = re.compile(r'\[\s*"([a-z:_]{1,32})"')


class PacketJson:
    """The `json` a Socket.IO packet class uses, with its encoder and decoder made once."""

    _encoder = json.JSONEncoder(separators=(",", ":"))
    _decoder = json.JSONDecoder(parse_int=_bounded_int)

    @classmethod
    def dumps(cls, data: Any, **_options: Any) -> str:
        return cls._encoder.encode(data)

    @classmethod
    def loads(cls, text: str | bytes, **_options: Any) -> Any:
        if isinstance(text, (bytes, bytearray)):
            text = text.decode()
        return cls._decoder.decode(text)


class TextPacket(sio_packet.Packet):
    json = PacketJson

    def decode(self, encoded_packet: Any) -> int:
        """The library's decoding; an event nested too deeply becomes `[name, TOO_DEEP]`
        so that its sender gets an ack (namespace and id are read before the JSON)."""
        try:
            return super().decode(encoded_packet)
        except RecursionError:
            if self.packet_type != sio_packet.EVENT or not isinstance(encoded_packet, str):
                raise ValueError("payload nested too deeply") from None
            start = encoded_packet.find("[")
            name = _EVENT_NAME.match(encoded_packet, max(start, 0))
            self.data = [name.group(1) if name else "invalid", TOO_DEEP]
            return 0

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        todo = [data]
        while todo:
            item = todo.pop()
            if isinstance(item, (bytes, bytearray)):
                return True
            if isinstance(item, list):
                todo.extend(item)
            elif isinstance(item, dict):
                todo.extend(item.values())
        return False


class LocalManager(socketio.AsyncManager):
    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        target = to or room
        if callback or not isinstance(target, str) or namespace not in self.rooms:
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, to=to, **kwargs)
        members = self.rooms[namespace].get(target)
        if not members:
            return None
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        recipients = [eio_sid for sid, eio_sid in members._fwdm.items() if sid not in skip]
        if len(recipients) != 1:
            if not recipients:
                return None
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      to=to, **kwargs)
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace,
                                       data=[event, *args])
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            await self.server._send_eio_packet(
                recipients[0], eio_packet.Packet(eio_packet.MESSAGE, part))
        return None
