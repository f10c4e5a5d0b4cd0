"""The provider emulator: a threaded HTTP JSON-RPC proxy in front of one upstream
(anvil) that answers as a limited endpoint would, and counts what it saw.

    with Emulator(anvil.url, profile="geth", latency_s=0.05) as emu:
        ...                                   # point a client at emu.url
        emu.calls["eth_getBlockReceipts"]     # calls seen, per method
        emu.limited["batch_too_large"]        # refusals, per kind
        emu.limits = emu.limits.replace(lagging_logs=True)   # switch at run time
        emu.reset()

GET /_emulator/stats answers the counters as JSON and GET /_emulator/reset clears
them, for an emulator run as a separate process (`python -m scripts.emulator`).
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import http.client
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from scripts.emulator import limits as lim
from scripts.emulator.limits import Limits

STATS_PATH = "/_emulator/stats"
RESET_PATH = "/_emulator/reset"
_TAGS = ("latest", "safe", "finalized", "pending")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (timeouts, cut-off bodies) is expected."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Emulator:
    """A limited JSON-RPC endpoint in front of `upstream`, as a context manager."""

    def __init__(
        self,
        upstream: str,
        profile: str | Limits = "unlimited",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **overrides: Any,
    ) -> None:
        base = lim.preset(profile) if isinstance(profile, str) else profile
        self.limits: Limits = base.replace(**overrides) if overrides else base
        self.profile = profile if isinstance(profile, str) else "custom"
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._window: collections.deque[float] = collections.deque()
        self._logs_seen = 0
        self.reset()
        self.host = host
        self._server = _Server((host, port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle --

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> Emulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counters --

    def reset(self) -> None:
        """Zero every counter (the rate-limit window too)."""
        with self._lock:
            self.calls: collections.Counter[str] = collections.Counter()
            self.requests: collections.Counter[str] = collections.Counter()
            self.response_bytes: collections.Counter[str] = collections.Counter()
            self.limited: collections.Counter[str] = collections.Counter()
            self.limited_methods: collections.Counter[str] = collections.Counter()
            self.http_requests = 0
            self.call_times: list[float] = []
            self._window.clear()
            self._logs_seen = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.response_bytes.values())

    def max_calls_in_window(self, window_s: float = 1.0) -> int:
        """Most calls received within any `window_s` (sliding), over the run."""
        times = sorted(self.call_times)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def calls_per_second(self) -> list[int]:
        """Calls in each whole second since the first call."""
        if not self.call_times:
            return []
        start = min(self.call_times)
        out = [0] * (int(max(self.call_times) - start) + 1)
        for t in self.call_times:
            out[int(t - start)] += 1
        return out

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain JSON-able data."""
        with self._lock:
            return {
                "profile": self.profile,
                "calls": dict(self.calls),
                "requests": dict(self.requests),
                "response_bytes": dict(self.response_bytes),
                "limited": dict(self.limited),
                "limited_methods": dict(self.limited_methods),
                "http_requests": self.http_requests,
                "total_calls": self.total_calls,
                "total_bytes": self.total_bytes,
                "max_calls_in_1s": self.max_calls_in_window(1.0),
                "calls_per_second": self.calls_per_second(),
            }

    def _refuse(self, kind: str, method: str, n: int = 1) -> None:
        with self._lock:
            self.limited[kind] += n
            self.limited_methods[method] += n

    # -- upstream --

    def forward(self, payload: Any) -> Any:
        """POST `payload` to the upstream over this thread's kept-alive connection."""
        body = json.dumps(payload).encode()
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(*self._upstream, timeout=120)
                self._local.conn = conn
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                return json.loads(conn.getresponse().read())
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def head(self) -> int:
        reply = self.forward(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        )
        return int(reply["result"], 16)

    # -- one HTTP request --

    def handle(self, raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) answering one HTTP request body."""
        try:
            request = json.loads(raw)
        except ValueError:
            return 200, _dump(lim._entry(None, lim.error(-32700, "parse error"))), {}
        is_batch = isinstance(request, list)
        calls: list[Any] = request if is_batch else [request]
        methods = [_method(c) for c in calls]
        self._count(methods)
        limits = self.limits
        if limits.latency_s:
            self._stop.wait(limits.latency_s)
        refused = self._refuse_batch(limits, calls, methods, is_batch)
        if refused is not None:
            return self._whole(methods, refused)
        allowed, headers = self._rate_limit(limits, len(calls))
        if allowed == 0 and limits.rate_limit_style != "jsonrpc":
            self._refuse("rate_limited", methods[0], len(calls))
            return self._whole(methods, (429, _dump(lim.rate_limited_body()), headers))
        entries = self._answer(limits, calls, methods, allowed)
        status = _status_of(entries)
        return status, self._serialise(entries, methods, is_batch), {}

    def _whole(
        self, methods: list[str], reply: tuple[int, bytes, dict[str, str]]
    ) -> tuple[int, bytes, dict[str, str]]:
        """A refusal of the whole request: its bytes count for the first method."""
        with self._lock:
            self.response_bytes[methods[0]] += len(reply[1])
        return reply

    def _count(self, methods: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            self.http_requests += 1
            self.calls.update(methods)
            self.requests.update(set(methods))
            self.call_times.extend([now] * len(methods))

    def _refuse_batch(
        self, limits: Limits, calls: list[Any], methods: list[str], is_batch: bool
    ) -> tuple[int, bytes, dict[str, str]] | None:
        if not is_batch:
            return None
        if not limits.batching and len(calls) >= 2:
            self._refuse("no_batching", methods[0], len(calls))
            return 200, _dump(lim.no_batching(limits)), {}
        cap = limits.max_batch_calls
        if cap is not None and len(calls) > cap:
            self._refuse("batch_too_large", methods[0], len(calls))
            first = next((c.get("id") for c in calls if isinstance(c, dict)), None)
            status, payload = lim.batch_too_large(limits, len(calls), first)
            if payload is None:
                return (
                    status,
                    b"<html><body>413 Request Entity Too Large</body></html>",
                    {"Content-Type": "text/html"},
                )
            return status, _dump(payload), {}
        return None

    def _rate_limit(self, limits: Limits, n: int) -> tuple[int, dict[str, str]]:
        """How many of `n` calls fit the budget now (all or none unless "jsonrpc")."""
        budget = limits.rate_limit_calls_per_s
        if budget is None:
            return n, {}
        now = time.monotonic()
        with self._lock:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            room = max(0, budget - len(self._window))
            fits = (
                min(n, room)
                if limits.rate_limit_style == "jsonrpc"
                else (n if n <= room else 0)
            )
            self._window.extend([now] * fits)
            oldest = self._window[0] if self._window else now
        if fits:
            return fits, {}
        wait = max(1, math.ceil(oldest + 1.0 - now))
        if limits.rate_limit_style == "429-date":
            # RFC 9110 Retry-After: an HTTP-date (1 s resolution, so one second more).
            return 0, {
                "Retry-After": email.utils.formatdate(
                    time.time() + wait + 1, usegmt=True
                )
            }
        return 0, {"Retry-After": str(wait)}

    def _answer(
        self, limits: Limits, calls: list[Any], methods: list[str], allowed: int
    ) -> list[Any]:
        """Every call's answer entry, in order: refused here or by the upstream."""
        entries: list[Any] = [None] * len(calls)
        ask: list[int] = []
        head_cache: list[int] = []
        for i, (call, method) in enumerate(zip(calls, methods, strict=True)):
            if i >= allowed:
                self._refuse("rate_limited", method)
                entries[i] = _err(call, lim.rate_limited(limits))
                continue
            err = self._precheck(limits, call, method, head_cache)
            if err is not None:
                entries[i] = _err(call, err)
            else:
                ask.append(i)
        if ask:
            replies = (
                self.forward([calls[i] for i in ask])
                if len(ask) > 1
                else [self.forward(calls[ask[0]])]
            )
            for i, reply in zip(ask, replies, strict=True):
                entries[i] = self._postcheck(
                    limits, calls[i], methods[i], reply, head_cache
                )
        if limits.max_batch_response_bytes is not None and len(calls) > 1:
            self._cap_bytes(limits.max_batch_response_bytes, calls, methods, entries)
        return entries

    def _precheck(
        self, limits: Limits, call: Any, method: str, head_cache: list[int]
    ) -> dict[str, Any] | None:
        if method in limits.missing_methods:
            self._refuse("method_missing", method)
            return lim.method_missing(method)
        if method != "eth_getLogs":
            return None
        if limits.logs_refused:
            self._refuse("logs_refused", method)
            return lim.logs_refused()
        if limits.logs_max_blocks is None:
            return None
        lo, hi = self._log_range(call, head_cache)
        if hi - lo + 1 > limits.logs_max_blocks:
            self._refuse("logs_range", method)
            status, err = lim.logs_range(limits, lo, hi)
            if status == 413:
                err = {**err, "http_status": 413}
            return err
        return None

    def _postcheck(
        self, limits: Limits, call: Any, method: str, reply: Any, head_cache: list[int]
    ) -> Any:
        if method != "eth_getLogs" or not isinstance(reply, dict):
            return reply
        logs = reply.get("result")
        if not isinstance(logs, list):
            return reply
        cap = limits.logs_max_results
        if cap is not None and len(logs) > cap:
            self._refuse("logs_results", method)
            return _err(call, lim.logs_results(limits))
        if limits.lagging_logs:
            with self._lock:
                self._logs_seen += 1
                lagging = self._logs_seen % max(1, limits.lag_every) == 0
            if lagging:
                if not head_cache:
                    head_cache.append(self.head())
                known = head_cache[0] - limits.lag_blocks
                kept = [x for x in logs if int(x["blockNumber"], 16) <= known]
                if len(kept) < len(logs):
                    self._refuse("lagging_logs", method)
                return {**reply, "result": kept}
        return reply

    def _log_range(self, call: Any, head_cache: list[int]) -> tuple[int, int]:
        params = (call.get("params") if isinstance(call, dict) else None) or [{}]
        flt = params[0] if isinstance(params[0], dict) else {}
        if flt.get("blockHash"):
            return 0, 0

        def number(tag: Any) -> int:
            if isinstance(tag, str) and tag.startswith("0x"):
                return int(tag, 16)
            if tag == "earliest":
                return 0
            if not head_cache:
                head_cache.append(self.head())
            return head_cache[0]

        return number(flt.get("fromBlock", "latest")), number(
            flt.get("toBlock", "latest")
        )

    def _cap_bytes(
        self, cap: int, calls: list[Any], methods: list[str], entries: list[Any]
    ) -> None:
        """geth handleBatch: once the results pass `cap` bytes, answer the rest -32003."""
        total = 0
        for i, entry in enumerate(entries):
            if total > cap:
                self._refuse("response_too_large", methods[i])
                entries[i] = _err(calls[i], lim.response_too_large())
                continue
            if isinstance(entry, dict) and "result" in entry:
                total += len(_dump(entry["result"]))

    def _serialise(
        self, entries: list[Any], methods: list[str], is_batch: bool
    ) -> bytes:
        parts = [_dump(_public(e)) for e in entries]
        with self._lock:
            for method, part in zip(methods, parts, strict=True):
                self.response_bytes[method] += len(part)
        return b"[" + b",".join(parts) + b"]" if is_batch else parts[0]


def _public(entry: Any) -> Any:
    """An entry without the emulator's own markers."""
    if isinstance(entry, dict) and isinstance(entry.get("error"), dict):
        err = entry["error"]
        if "http_status" in err:
            return {
                **entry,
                "error": {k: v for k, v in err.items() if k != "http_status"},
            }
    return entry


def _status_of(entries: list[Any]) -> int:
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("error"), dict):
            status = e["error"].get("http_status")
            if status:
                return int(status)
    return 200


def _method(call: Any) -> str:
    return str(call.get("method")) if isinstance(call, dict) else "<invalid>"


def _err(call: Any, err: dict[str, Any]) -> dict[str, Any]:
    call_id = call.get("id") if isinstance(call, dict) else None
    return {"jsonrpc": "2.0", "id": call_id, "error": err}


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _cut(emu: Emulator, body: bytes) -> tuple[bytes, int]:
    """(bytes to send, Content-Length to declare): a body past the cut is cut off,
    declared whole ("close": the peer sees the connection end early) or as cut
    ("short": a well-framed body that is not JSON)."""
    cut = emu.limits.truncate_after_bytes
    if cut is None or len(body) <= cut:
        return body, len(body)
    emu._refuse("truncated", "<body>")
    sent = body[:cut]
    return sent, len(sent) if emu.limits.truncate == "short" else len(body)


def _handler_for(emu: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the counters say what happened."""

        def do_GET(self) -> None:
            if self.path == RESET_PATH:
                emu.reset()
            if self.path in (STATS_PATH, RESET_PATH):
                self._reply(200, _dump(emu.snapshot()), {})
                return
            self._reply(404, b"not found", {"Content-Type": "text/plain"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, body, headers = emu.handle(self.rfile.read(length))
            self._reply(status, body, headers)

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            sent, declared = _cut(emu, body)
            self.send_response(status)
            ctype = headers.pop("Content-Type", "application/json")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(declared))
            for key, value in headers.items():
                self.send_header(key, value)
            if len(sent) < len(body):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(sent)

    return Handler
