"""A real local HTTP receiver (threaded http.server on port 0) whose behaviour is chosen
by the request path; it records every request and verifies signatures with the
independent `standardwebhooks` library."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None: the receiver has no secret to verify with
    peer_port: int = 0  # the client's source port: one per connection


class Receiver:
    """Paths: /ok /slow /fail /hang /trickle /redirect /huge /gone /retry-after /flaky."""

    def __init__(self, secret: str | None = None, slow_s: float = 0.3) -> None:
        self.secret, self.slow_s = secret, slow_s
        self.requests: list[Received] = []
        self.on_request: Callable[[Received], None] | None = (
            None  # runs before replying
        )
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        handler = type("BoundHandler", (_Handler,), {"receiver": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hit(self, path: str) -> int:
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
            return self._hits[path]

    def verify(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self.secret is None:
            return None
        try:
            Webhook(self.secret).verify(body, headers)
        except Exception:  # any verification failure is just "False"
            return False
        return True

    def ids(self, path: str | None = None) -> list[str]:
        return [
            r.headers["webhook-id"] for r in self.requests if path in (None, r.path)
        ]


@contextmanager
def running(secret: str | None = None, slow_s: float = 0.3) -> Iterator[Receiver]:
    receiver = Receiver(secret, slow_s)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stop.set()
        receiver.server.shutdown()
        receiver.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops concurrent connects (SYN retry: 1 s)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: Receiver

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = self.receiver.verify(headers, body)
        received = Received(self.path, headers, body, verified, self.client_address[1])
        self.receiver.requests.append(received)
        if self.receiver.on_request is not None:
            self.receiver.on_request(received)
        behave = getattr(self, "_" + self.path.strip("/").replace("-", "_"), self._ok)
        try:
            behave()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reply(self, status: int, body: bytes = b"ok", **headers: str) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _ok(self) -> None:
        self._reply(200, b'{"ok": true}')

    def _slow(self) -> None:
        time.sleep(self.receiver.slow_s)
        self._reply(200)

    def _fail(self) -> None:
        self._reply(500, b"boom")

    def _hang(self) -> None:
        self.receiver.stop.wait(60)
        self.close_connection = True

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "100000")
        self.end_headers()
        while not self.receiver.stop.wait(0.2):
            self.wfile.write(b".")
            self.wfile.flush()

    def _redirect(self) -> None:
        self._reply(302, b"", location=self.receiver.url("/ok"))

    def _huge(self) -> None:
        chunk = b"x" * 65536
        self.send_response(200)
        self.send_header("content-length", str(len(chunk) * 160))
        self.end_headers()
        for _ in range(160):
            self.wfile.write(chunk)

    def _gone(self) -> None:
        self._reply(410, b"gone")

    def _retry_after(self) -> None:
        self._reply(503, b"busy", retry_after="120")

    def _flaky(self) -> None:
        if self.receiver.hit(self.path) == 1:
            self._reply(500, b"first time fails")
        else:
            self._reply(200)
