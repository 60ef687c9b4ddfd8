"""A small TCP proxy for fault tests (what Toxiproxy does): forward, blackhole, reset, latency."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Literal

from stack.ports import free_port

Mode = Literal["forward", "blackhole"]


class TcpProxy:
    """Listens on a free port and forwards to `upstream`. In `blackhole` mode bytes are read
    and dropped in both directions (a dead network, not a closed one); `reset()` cuts every
    connection at once; `latency_s` delays each chunk."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.upstream_port = host, upstream_port
        self.port = free_port()
        self.mode: Mode = "forward"
        self.latency_s = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start()).result(10)
        return self

    def stop(self) -> None:
        self._call(self._stop()).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        """Close every proxied connection abruptly (like a NAT box forgetting them)."""
        self._call(self._reset()).result(10)

    def _call(self, coro: object) -> Future[object]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def _stop(self) -> None:
        await self._reset()
        if self._server:
            self._server.close()

    async def _reset(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                writer.close()
                return
            if self.mode == "blackhole":
                continue
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            writer.write(chunk)
            await writer.drain()
