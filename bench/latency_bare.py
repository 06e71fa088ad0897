"""Latency bench, the floor: a bare `websockets` broadcast of a ~2 KB frame every interval.

Run as its own process (`latency_bare.py --port P`) by bench/latency.py before the wallboard
server, with the same client processes: what the clients measure here is what this machine
(its loopback, its two cores, the clients' own CPU) costs any broadcast, so the server's
figures are judged against it. Each message is a delta the bench clients understand: the
followed key carries a counter and `meta.ts` the wall time at which the broadcast began.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
from latency_stats import KEY, META_TS


def message(seq: int, size: int) -> str:
    """A delta of about `size` bytes: the counter, the send time and padding."""
    body = {"type": "delta", "seq": seq, "changes": {KEY: seq, META_TS: time.time(), "pad": ""},
            "removed": []}
    body["changes"]["pad"] = "x" * max(0, size - len(orjson.dumps(body)))  # type: ignore[index]
    return orjson.dumps(body).decode()


async def serve(port: int, interval_s: float, size: int) -> None:
    """Accept websockets on any path; broadcast one message per interval to all of them."""
    from websockets.asyncio.server import ServerConnection, broadcast
    from websockets.asyncio.server import serve as ws_serve

    connections: set[ServerConnection] = set()

    async def handler(conn: ServerConnection) -> None:
        connections.add(conn)
        try:
            await conn.wait_closed()
        finally:
            connections.discard(conn)

    # No compression, as on the wallboard's board sockets: the same bytes on the wire.
    async with ws_serve(handler, "127.0.0.1", port, compression=None, max_size=None,
                        backlog=1024):
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        start, seq = loop.time(), 0
        while True:
            seq += 1
            # On a fixed grid, like a push timer: a late tick does not shift the next ones.
            await asyncio.sleep(max(0.0, start + seq * interval_s - loop.time()))
            broadcast(connections, message(seq, size))


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=200.0)
    parser.add_argument("--bytes", type=int, default=2048, help="message size")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.interval_ms / 1000, args.bytes))


if __name__ == "__main__":
    main()
