"""A small aiohttp server on its own thread and event loop, for the local stand-ins of
outside services (fake LLM, WeCom receiver): real HTTP that this process, a subprocess
or a Ray worker can reach."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Self

from aiohttp import web


class BackgroundServer:
    """Subclasses add their routes in `routes(app)` and may pass AppRunner options."""

    thread_name = "background-server"
    runner_options: dict[str, Any] = {}  # noqa: RUF012 - read-only class default

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start serving; returns once the port accepts connections."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (requests sleeping in `pause` are woken up)."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def pause(self, seconds: float) -> None:
        """Sleep in a handler, cut short when the server stops."""
        if seconds <= 0:
            return
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024**2)
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, **self.runner_options)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        assert self._closing is not None and self._runner is not None
        self._closing.set()
        await self._runner.cleanup()
