"""A hostile JSON-RPC node for the tests: a real HTTP server on 127.0.0.1 in front of
anvil that forwards every request and lets a test rewrite what comes back (per call,
per batch, or the whole HTTP answer), and records what the client sent and when."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# (call sent, reply entry from anvil) -> reply entry to send (None: drop it)
PerCall = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]
# (payload sent, payload anvil answered) -> JSON value to send
Whole = Callable[[Any, Any], Any]
# (handler, raw body, parsed payload) -> True when it answered the request itself
Raw = Callable[[BaseHTTPRequestHandler, bytes, Any], bool]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients hanging up on a hostile answer is the point


class HostileNode:
    """Forwards to `upstream`; `per_call`, `whole` and `raw` make it lie."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._up = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.per_call: PerCall | None = None
        self.whole: Whole | None = None
        self.raw: Raw | None = None
        self.lock = threading.Lock()
        self.sent: list[tuple[float, str]] = []  # (monotonic time, method) per call
        self.requests = 0
        self.paths: list[str] = []
        self.authorizations: list[str] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HostileNode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def behave(self) -> None:
        """Forward everything unchanged from now on."""
        self.per_call = self.whole = self.raw = None

    def methods(self) -> list[str]:
        with self.lock:
            return [m for _, m in self.sent]

    def max_calls_in_1s(self) -> int:
        """The most calls the client sent within any one-second window."""
        with self.lock:
            times = sorted(t for t, _ in self.sent)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def forward(self, body: bytes) -> Any:
        conn = http.client.HTTPConnection(*self._up, timeout=30)
        try:
            conn.request("POST", "/", body, {"content-type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def answer(self, payload: Any, body: bytes) -> Any:
        reply = self.forward(body)
        if self.per_call is not None:
            if isinstance(payload, list):
                by_id = {r.get("id"): r for r in reply}
                out = []
                for call in payload:
                    entry = self.per_call(call, by_id[call["id"]])
                    if entry is not None:
                        out.append(entry)
                reply = out
            else:
                reply = self.per_call(payload, reply)
        if self.whole is not None:
            reply = self.whole(payload, reply)
        return reply


def _handler(node: HostileNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            payload = json.loads(body)
            calls = payload if isinstance(payload, list) else [payload]
            now = time.monotonic()
            with node.lock:
                node.requests += 1
                node.sent.extend((now, str(c.get("method"))) for c in calls)
                node.paths.append(self.path)
                node.authorizations.append(self.headers.get("authorization") or "")
            raw = node.raw
            if raw is not None and raw(self, body, payload):
                return
            send_json(self, 200, node.answer(payload, body))

    return Handler


def send_json(
    h: BaseHTTPRequestHandler,
    status: int,
    value: Any,
    headers: dict[str, str] | None = None,
) -> None:
    send_bytes(h, status, json.dumps(value).encode(), headers)


def send_bytes(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    h.send_response(status)
    h.send_header("content-type", content_type)
    h.send_header("content-length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def error_reply(call: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": call.get("id"),
        "error": {"code": code, "message": message},
    }
