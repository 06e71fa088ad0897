"""Base of the local vendor-API peers: an aiohttp app on 127.0.0.1, port chosen by the OS."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class HttpPeer:
    """Serves the routes a subclass adds in `routes`; `url` is set once it listens."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        """Add the vendor's routes to `app`."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
