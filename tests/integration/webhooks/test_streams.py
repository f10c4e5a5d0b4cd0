"""The asyncio network backend on real loopback sockets: TLS (trusted and not), a server
that closes idle connections, one that never reads, one that never answers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import pytest
import trustme
from pydantic import SecretStr

from ctrip_cli.config import WebhookSettings
from ctrip_cli.webhooks import delivery, signing, streams

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SETTINGS = WebhookSettings(
    secrets=[SecretStr(SECRET)], allow_private=True, timeout_s=2, connect_timeout_s=1
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    close_after = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        reply = b"got " + str(len(body)).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.close_connection = self.close_after


@contextmanager
def https_server(ca: trustme.CA) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def http_server(*, close_after: bool) -> Iterator[tuple[int, list[int]]]:
    """A plain HTTP/1.1 server; yields its port and the client ports it saw."""
    peers: list[int] = []

    class Handler(_Handler):
        def do_POST(self) -> None:
            peers.append(self.client_address[1])
            super().do_POST()

    Handler.close_after = close_after
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], peers
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections, then neither reads nor answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def post(url: str, tls: ssl.SSLContext, body: str = '{"a":1}') -> delivery.Attempt:
    async def go() -> delivery.Attempt | None:
        transport = delivery.guarded_transport(SETTINGS, connections=2, tls=tls)
        sender = delivery.Sender(
            SETTINGS,
            keys=[signing.decode_secret(SECRET)],
            clock=lambda: datetime.now(UTC),
            transport=transport,
        )
        async with sender:
            return await sender.send(
                delivery.Delivery("msg_1", url, body), deadline=time.monotonic() + 5
            )

    attempt = asyncio.run(go())
    assert attempt is not None
    return attempt


def test_https_delivery_verifies_the_certificate():
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with https_server(ca) as port:
        good = post(f"https://127.0.0.1:{port}/hook", trusting)
        bad = post(f"https://127.0.0.1:{port}/hook", ssl.create_default_context())
    assert (good.status_code, good.excerpt, good.error) == (200, "got 7", None)
    assert bad.status_code is None
    assert bad.error is not None
    assert bad.error.startswith("ConnectError")
    assert "CERTIFICATE_VERIFY_FAILED" in bad.error


def test_a_large_body_is_sent_whole():
    body = "x" * 3_000_000  # far past the transport's write buffer: flow control
    with http_server(close_after=False) as (port, _peers):
        attempt = post(f"http://127.0.0.1:{port}/hook", ssl.create_default_context())
        big = post(f"http://127.0.0.1:{port}/hook", ssl.create_default_context(), body)
    assert attempt.excerpt == "got 7"
    assert big.excerpt == f"got {len(body)}"


@pytest.mark.parametrize("close_after", [False, True])
def test_a_connection_the_server_closed_is_not_reused(close_after):
    async def go(port: int) -> list[int]:
        pool = httpcore.AsyncConnectionPool(network_backend=streams.AsyncioBackend())
        async with pool:
            statuses = []
            for _ in range(3):
                response = await pool.request(
                    "POST", f"http://127.0.0.1:{port}/", content=b"{}"
                )
                statuses.append(response.status)
                await asyncio.sleep(0.05)  # the server's close reaches the client
            return statuses

    with http_server(close_after=close_after) as (port, peers):
        assert asyncio.run(go(port)) == [200, 200, 200]
    assert len(peers) == 3
    # Kept alive: one connection; closed by the server after each reply: three.
    assert len(set(peers)) == (3 if close_after else 1)


def test_reads_and_writes_end_at_their_timeouts():
    async def fill(stream: httpcore.AsyncNetworkStream) -> None:
        for _ in range(200):  # the silent peer's buffers fill up
            await stream.write(b"x" * 1_000_000, timeout=0.2)

    async def go(port: int) -> None:
        backend = streams.AsyncioBackend()
        stream = await backend.connect_tcp("127.0.0.1", port, timeout=1)
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.2)
        with pytest.raises(httpcore.WriteTimeout):
            await fill(stream)
        await stream.aclose()

    with silent_server() as port:
        asyncio.run(go(port))


def test_a_refused_connection_is_a_connect_error():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed when the block ends: nobody listens

    async def go() -> None:
        await streams.AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=1)

    with pytest.raises(httpcore.ConnectError):
        asyncio.run(go())
