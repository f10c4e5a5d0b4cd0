"""An httpcore network backend over plain asyncio transports, for webhook sending.

httpcore's AnyIO backend answers the pool's per-request "is this idle connection
readable?" with a poll(2) and a dict of socket attributes built afresh, and wraps every
read and write in a cancel scope: together more CPU than the request itself. Here the
protocol already knows whether bytes or EOF arrived, writes made in one step go out in
one send, and timeouts are plain `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

READ_LIMIT = 64 * 1024  # reading pauses while this much is buffered unread
COALESCE_LIMIT = 64 * 1024  # queued writes past this go out at once


class StreamProtocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader; tracks write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: Exception | None = None
        self.paused = False
        self._reader: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_LIMIT and self.transport is not None:
            self.transport.pause_reading()
        _wake(self._reader)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self._reader)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof, self.error, self.paused = True, exc, False
        _wake(self._reader)
        _wake(self._drained)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        _wake(self._drained)

    @property
    def readable(self) -> bool:
        """True when a read would return at once: bytes, EOF or a lost connection."""
        return bool(self.buffer) or self.eof

    async def wait_readable(self) -> None:
        while not self.readable:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None

    async def drain(self) -> None:
        while self.paused:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if len(self.buffer) <= READ_LIMIT and self.transport is not None:
            self.transport.resume_reading()
        return data


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection. Writes are queued and sent together when the writer yields
    (or before the next read), so a request's head and body leave in one send."""

    def __init__(self, transport: asyncio.Transport, protocol: StreamProtocol) -> None:
        self.transport, self.protocol = transport, protocol
        protocol.transport = transport
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        if not self.protocol.readable:
            try:
                async with asyncio.timeout(timeout):
                    await self.protocol.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout}s") from None
        if self.protocol.buffer:
            return self.protocol.take(max_bytes)
        if self.protocol.error is not None:
            raise httpcore.ReadError(str(self.protocol.error))
        return b""  # the peer closed: httpcore reports the disconnect

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self.transport.is_closing():
            raise httpcore.WriteError("connection closed")
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(buffer)
        self._pending_bytes += len(buffer)
        if self._pending_bytes >= COALESCE_LIMIT:
            self._flush()
        if self.protocol.paused:
            try:
                async with asyncio.timeout(timeout):
                    await self.protocol.drain()
            except TimeoutError:
                raise httpcore.WriteTimeout(f"not sent within {timeout}s") from None

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    async def aclose(self) -> None:
        self._flush()
        self.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._flush()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self.transport,
                    self.protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                )
        except TimeoutError:
            self.transport.abort()
            raise httpcore.ConnectTimeout(
                f"no TLS handshake within {timeout}s"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            self.transport.abort()
            raise httpcore.ConnectError(str(exc)) from None
        if tls is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        return AsyncioStream(tls, self.protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self.protocol.readable
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return self.transport.get_extra_info(name)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections as `AsyncioStream`s (no unix sockets: webhooks are URLs)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    StreamProtocol, host, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():  # asyncio already sets TCP_NODELAY
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
