"""A real HTTP webhook receiver that verifies Standard Webhooks signatures and records
every `webhook-id` it sees (duplicates allowed: delivery is at-least-once)."""

from __future__ import annotations

import collections
import contextlib
import json
import random
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks.webhooks import Webhook

from scripts.chaos.rpc_proxy import QuietServer


class WebhookReceiver:
    """`fail_rate` of the requests answer 500, to exercise retries."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.fail_rate = 0.0
        self.on_request: Callable[[], None] | None = None
        self.seen: dict[str, set[str]] = collections.defaultdict(
            set
        )  # id -> bodies' keys
        self.bad_signatures = 0
        self.bad_reasons: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self._rng = random.Random(7)
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.requests += 1
            try:
                self.verifier.verify(body, headers)
            except Exception as exc:  # any verification failure counts
                self.bad_signatures += 1
                self.bad_reasons[f"{type(exc).__name__}: {exc}"] += 1
                return 400
            event = json.loads(body)
            key = f"{event['type']}:{event['data']['id']}"
            self.seen[headers["webhook-id"]].add(key)
            return 500 if self._rng.random() < self.fail_rate else 200


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.on_request is not None:
                receiver.on_request()
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.record(headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(b"ok")

    return Handler
