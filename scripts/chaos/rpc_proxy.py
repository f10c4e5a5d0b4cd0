"""A fault-injecting JSON-RPC proxy for anvil: timeouts, resets, 429, 5xx, malformed
JSON, a batch with one error entry, a node lagging behind the head, a wrong chain id.

In-process and threaded; the test switches faults by setting attributes:

    with RpcProxy(anvil.url) as proxy:
        proxy.fault = "429"            # every request answers 429 Retry-After: 1
        proxy.fault_budget = 3         # ... only the next 3 requests, then pass through
        proxy.lag_blocks = 5           # with fault = "lag"
        proxy.on_request = hook        # called with the method names before forwarding
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import random
import socket
import struct
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = (
    "hang",  # never answer within the client's timeout
    "reset",  # close the connection with a TCP RST
    "429",  # 429 Too Many Requests with Retry-After
    "5xx",  # 502/503/504
    "malformed",  # 200 with a body that is not JSON
    "batch_error",  # one entry of the reply (batch or single) is a JSON-RPC error
    "lag",  # the node is lag_blocks behind: head rewritten, newer blocks hidden
    "chain_id",  # eth_chainId / net_version report another chain
)
# A load-balanced endpoint whose blocks and receipts lag while nonces and balances are
# current, as when a balancer mixes a lagging node with an up-to-date one (it once made
# sweep fail a mined top-up: tests/chaos/test_known_issues.py).
SKEW = "skew"


class QuietServer(ThreadingHTTPServer):
    """Clients killed mid-request (the crash campaign) are expected: no tracebacks."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RpcProxy:
    """A threaded HTTP proxy in front of one JSON-RPC upstream, with switchable faults."""

    def __init__(
        self, upstream: str, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.fault: str | None = None
        self.fault_budget: int | None = None  # None: every request; n: the next n only
        self.probability = 1.0
        self.methods: frozenset[str] | None = None  # fault only requests naming these
        self.hang_s = 30.0
        self.lag_blocks = 5
        self.wrong_chain_id = 1
        self.latency_s = 0.0  # added to every request (spreads crash points in a pass)
        self.on_request: Callable[[list[str]], None] | None = None
        self.injected: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.seen_paths: list[str] = []
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.host = host
        self._server = QuietServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> RpcProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        """Back to a healthy pass-through proxy."""
        self.fault, self.fault_budget, self.methods, self.on_request = (
            None,
            None,
            None,
            None,
        )
        self.probability = 1.0

    def seed(self, seed: int) -> None:
        self._rng.seed(seed)

    # -- decisions (called from handler threads) --

    def _pick_fault(self, methods: list[str]) -> str | None:
        with self._lock:
            self.requests += 1
            fault = self.fault
            if fault is None or (
                self.methods and not self.methods.intersection(methods)
            ):
                return None
            if fault in ("lag", "chain_id", SKEW):
                return fault  # a persistent property of the node, counted on use
            if self.fault_budget is not None:
                if self.fault_budget <= 0:
                    return None
                self.fault_budget -= 1
            if self._rng.random() >= self.probability:
                return None
            self.injected[fault] += 1
            return fault

    def count(self, fault: str) -> None:
        with self._lock:
            self.injected[fault] += 1

    def forward(self, body: bytes) -> bytes:
        conn = http.client.HTTPConnection(
            self.upstream_host, self.upstream_port, timeout=60
        )
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            return conn.getresponse().read()
        finally:
            conn.close()

    def call_upstream(self, method: str, *params: Any) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        return json.loads(self.forward(body.encode())).get("result")


def _handler_for(proxy: RpcProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the campaign report counts what happened."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with proxy._lock:
                proxy.seen_paths.append(self.path)
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            calls = request if isinstance(request, list) else [request]
            methods = [str(c.get("method")) for c in calls if isinstance(c, dict)]
            if proxy.on_request is not None:
                proxy.on_request(methods)
            if proxy.latency_s:
                proxy._stop.wait(proxy.latency_s)
            fault = proxy._pick_fault(methods)
            if fault in ("hang", "reset"):
                _drop(proxy, self.connection, fault)
                self.close_connection = True
                return
            if fault in _CANNED:
                self._reply(*_CANNED[fault](proxy))
                return
            reply = _rewrite(proxy, fault, request, body)
            self._reply(200, reply, {})

        def _reply(
            self,
            status: int,
            payload: bytes,
            headers: dict[str, str],
            ctype: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

    return Handler


_Reply = tuple[int, bytes, dict[str, str], str]
_CANNED: dict[str, Callable[[RpcProxy], _Reply]] = {
    "429": lambda _: (
        429,
        b'{"error":"rate limited"}',
        {"Retry-After": "1"},
        "application/json",
    ),
    "5xx": lambda p: (
        p._rng.choice((502, 503, 504)),
        b"<html>bad gateway</html>",
        {},
        "text/html",
    ),
    "malformed": lambda _: (
        200,
        b'{"jsonrpc":"2.0","id":1,"result":0x1',
        {},
        "application/json",
    ),
}


def _drop(proxy: RpcProxy, sock: socket.socket, fault: str) -> None:
    """`hang`: say nothing until the client gives up; `reset`: close with a TCP RST."""
    if fault == "hang":
        proxy._stop.wait(proxy.hang_s)
        return
    # SO_LINGER 0: the peer sees ECONNRESET, not a clean EOF.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def _rewrite(proxy: RpcProxy, fault: str | None, request: Any, body: bytes) -> bytes:
    if fault in ("lag", SKEW):
        return _lagging(proxy, request, body, state_lags=fault == "lag")
    raw = proxy.forward(body)
    if fault not in ("batch_error", "chain_id"):
        return raw
    reply = json.loads(raw)
    if fault == "chain_id":
        return json.dumps(_wrong_chain(proxy, request, reply)).encode()
    entries = reply if isinstance(reply, list) else [reply]
    victim = proxy._rng.randrange(len(entries))
    entries[victim] = {
        "jsonrpc": "2.0",
        "id": entries[victim].get("id"),
        "error": {"code": -32603, "message": "internal error (injected)"},
    }
    return json.dumps(entries if isinstance(reply, list) else entries[0]).encode()


def _wrong_chain(proxy: RpcProxy, request: Any, reply: Any) -> Any:
    calls = request if isinstance(request, list) else [request]
    entries = reply if isinstance(reply, list) else [reply]
    by_id = {c.get("id"): c.get("method") for c in calls if isinstance(c, dict)}
    for entry in entries:
        method = by_id.get(entry.get("id"))
        if method == "eth_chainId":
            entry["result"] = hex(proxy.wrong_chain_id)
            proxy.count("chain_id")
        elif method == "net_version":
            entry["result"] = str(proxy.wrong_chain_id)
            proxy.count("chain_id")
    return reply


def _lagging(proxy: RpcProxy, request: Any, body: bytes, *, state_lags: bool) -> bytes:
    """Answer as a node `lag_blocks` behind: nothing newer than its head exists."""
    head = int(proxy.call_upstream("eth_blockNumber"), 16)
    lagged = max(0, head - proxy.lag_blocks)
    calls = request if isinstance(request, list) else [request]
    replies = [_lagging_one(proxy, call, lagged, state_lags) for call in calls]
    if lagged < head:
        proxy.count("lag" if state_lags else SKEW)
    return json.dumps(replies if isinstance(request, list) else replies[0]).encode()


def _block_no(tag: Any, lagged: int) -> int | None:
    if tag in ("latest", "safe", "finalized", "pending"):
        return lagged
    if tag == "earliest":
        return 0
    return int(tag, 16) if isinstance(tag, str) and tag.startswith("0x") else None


_STATE_AT_TAG = {  # method -> position of its block tag
    "eth_getTransactionCount": 1,
    "eth_getBalance": 1,
    "eth_call": 1,
    "eth_getCode": 1,
    "eth_getStorageAt": 2,
}
_BY_HASH = (
    "eth_getBlockByHash",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
)


def _lagging_one(
    proxy: RpcProxy, call: dict[str, Any], lagged: int, state_lags: bool
) -> dict[str, Any]:
    method, params = call.get("method"), list(call.get("params") or [])
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": call.get("id")}
    if method == "eth_blockNumber":
        out["result"] = hex(lagged)
        return out
    if method in ("eth_getBlockByNumber", "eth_getBlockReceipts") and params:
        number = _block_no(params[0], lagged)
        if number is not None and number > lagged:
            out["result"] = None
            return out
        if number is not None:
            params[0] = hex(number)
    if state_lags and method in _STATE_AT_TAG:
        # State as of the node's own head: its nonces and balances lag too.
        at = _STATE_AT_TAG[str(method)]
        params = [*params, *(["latest"] * (at + 1 - len(params)))]
        number = _block_no(params[at], lagged)
        params[at] = hex(lagged if number is None or number > lagged else number)
    if method == "eth_getLogs" and params and isinstance(params[0], dict):
        flt = dict(params[0])
        to = _block_no(flt.get("toBlock", "latest"), lagged)
        frm = _block_no(flt.get("fromBlock", "latest"), lagged)
        if frm is not None and frm > lagged:
            out["result"] = []
            return out
        flt["toBlock"] = hex(min(lagged, to if to is not None else lagged))
        params[0] = flt
    reply = json.loads(proxy.forward(json.dumps({**call, "params": params}).encode()))
    result = reply.get("result")
    hidden = isinstance(result, dict) and (
        int(result.get("blockNumber") or result.get("number") or "0x0", 16) > lagged
    )
    if hidden and method in _BY_HASH:
        reply["result"] = None
    return dict(reply)
