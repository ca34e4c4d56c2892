"""The yardstick: a minimal aiohttp WebSocket relay with acknowledgements.

Each socket joins `/ws?chat=<n>&side=v|c`; every text frame is acknowledged to its
sender (`{"ack": seq}`) and forwarded as is to the other side of the same chat. No
Socket.IO, no storage, no validation: what one core can relay at most, so that
`bench/loadgen.py` can print Tillit's throughput as a share of it.

Run: `python bench/bare_relay.py --port 9100` (bench/loadgen.py starts it itself).
"""

from __future__ import annotations

import argparse
import gc
import json

from aiohttp import WSMsgType, web

PEERS: dict[tuple[str, str], web.WebSocketResponse] = {}
OTHER = {"v": "c", "c": "v"}


async def relay(request: web.Request) -> web.WebSocketResponse:
    chat, side = request.query["chat"], request.query["side"]
    ws = web.WebSocketResponse(max_msg_size=64 * 1024, compress=False)
    await ws.prepare(request)
    PEERS[(chat, side)] = ws
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            seq = json.loads(msg.data)["seq"]
            await ws.send_str(f'{{"ack":{seq}}}')
            peer = PEERS.get((chat, OTHER[side]))
            if peer is not None:
                await peer.send_str(msg.data)
    finally:
        PEERS.pop((chat, side), None)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)  # the same GC tuning as `tillit serve`
    app = web.Application()
    app.router.add_get("/ws", relay)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
