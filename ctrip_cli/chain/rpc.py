"""The one JSON-RPC transport every pass and `status` use: batching sized by what comes
back, endpoint failover, retries, rate limits and the mapping of node errors.

web3's result formatting is far too slow for scanning, so this module talks JSON-RPC
directly with httpx. It learns each endpoint's limits as it meets them (batch caps,
response caps, no batching at all, rate limits, missing methods; see `limits.py`) and
stays within them; what it learnt is kept in the database between passes. No error
ever carries an endpoint's URL or any part of it: URLs may hold API keys.
"""

from __future__ import annotations

import base64
import email.utils
import itertools
import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpcore
import httpx

from ctrip_cli.chain.limits import (
    RELEARN_AFTER_S,
    EndpointLimits,
    Kind,
    batch_limit_hint,
    classify,
    endpoint_key,
)
from ctrip_cli.config import ChainConfig
from ctrip_cli.errors import RpcRejectedError, RpcUnavailableError

log = logging.getLogger("ctrip.rpc")

Call = tuple[str, Sequence[Any]]
DEFAULT_MAX_BATCH = 500  # below geth's 1000 (node/defaults.go BatchRequestLimit)
TARGET_BYTES = 4_000_000  # per response: far below geth's 25 MB, quick to parse
MAX_BODY_BYTES = 64_000_000  # geth's 25 MB cap with room; more is refused unread
MIN_TARGET_BYTES = 2_000  # a batch is cut down to single calls before this
# Per request body: anvil refuses bodies over 2 MiB (-32600 "Invalid request",
# measured on 1.7.1), geth over 5 MiB (rpc/http.go maxRequestContentLength). Only
# large calls (Multicall3's aggregate3) come near it.
MAX_REQUEST_BYTES = 1_000_000
# What a call is expected to return before one has been measured (mainnet-sized).
PRIOR_BYTES = {
    "eth_getBlockReceipts": 800_000,
    "eth_getBlockByNumber/full": 300_000,
    "eth_getBlockByNumber": 30_000,
    "eth_getLogs": 500_000,
    "eth_getTransactionReceipt": 5_000,
    "eth_getTransactionByHash": 2_000,
    # A mainnet block's call frames, with their input and output: about a megabyte
    # or two, so the first trace batch is a couple of blocks, not hundreds.
    "trace_block": 1_500_000,
    "debug_traceBlockByHash": 2_000_000,
}
DEFAULT_PRIOR = 500
MAX_RATE_WAIT_S = 30.0
BUDGET_WINDOW_S = 1.1
MIN_RATE_WAIT_S = 0.25  # one Retry-After is honoured up to this
MAX_TRIES_PER_CALL = 12
_FRESH = EndpointLimits().refusals()


class RpcTooManyResultsError(RpcRejectedError):
    """The node refused a query as too large; ask again with a smaller block range."""


class RpcMethodUnsupportedError(RpcRejectedError):
    """The node does not offer this JSON-RPC method."""


class _Retry:
    """Marks a call to send again (smaller batch, or elsewhere)."""


_RETRY = _Retry()
_WAITED = _Retry()  # send again after a rate-limit wait (bounded by the wait budget)
_RATE_LIMITED = _Retry()  # a call refused by a rate limit: its answer waits once


@dataclass
class Endpoint:
    index: int  # 1-based, as messages name it
    url: str
    key: str
    limits: EndpointLimits
    target_bytes: int = TARGET_BYTES
    rate_limited_at: float | None = None

    @property
    def label(self) -> str:
        return f"endpoint #{self.index}"

    def max_calls(self) -> int:
        if not self.limits.batching:
            return 1
        return self.limits.max_batch or DEFAULT_MAX_BATCH

    def budget_bytes(self) -> int:
        cap = self.limits.max_response_bytes
        return min(self.target_bytes, cap // 2) if cap else self.target_bytes


@dataclass(slots=True)
class _Budget:
    """At most `rate` calls in any one-second window (providers bill per call)."""

    rate: int
    sleep: Callable[[float], None]
    sent: deque[tuple[float, int]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, n: int) -> None:
        n = min(n, self.rate)
        while True:
            with self.lock:
                now = time.monotonic()
                # A little over a second: requests reach the node with jitter.
                while self.sent and now - self.sent[0][0] >= BUDGET_WINDOW_S:
                    self.sent.popleft()
                used = sum(k for _, k in self.sent)
                if used + n <= self.rate:
                    self.sent.append((now, n))
                    return
                wait = BUDGET_WINDOW_S - (now - self.sent[0][0]) + 0.005
            self.sleep(wait)


class RpcTransport:
    """JSON-RPC over HTTP to one chain's endpoints, within their learnt limits."""

    def __init__(
        self,
        cfg: ChainConfig,
        *,
        timeout_s: float | None = None,
        attempts: int = 4,
        backoff_s: float = 0.25,
        max_in_flight: int = 4,
        limits: dict[str, EndpointLimits] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rate_wait_budget_s: float | None = None,
    ) -> None:
        self.cfg = cfg
        urls = [u.get_secret_value() for u in cfg.rpc_urls]
        known = limits or {}
        self.endpoints = [
            Endpoint(
                i,
                url,
                endpoint_key(url),
                known.get(endpoint_key(url)) or EndpointLimits(),
            )
            for i, url in enumerate(urls, start=1)
        ]
        self._secrets = _url_secrets(urls)
        if timeout_s is None:
            timeout_s = cfg.rpc_timeout_s
        # Loading the CA bundle costs ~20 ms a pass; plain-http endpoints have no TLS.
        tls = any(u.startswith(("https:", "wss:")) for u in urls)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=3.0),
            transport=transport,
            verify=tls,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max(max_in_flight, 1) * 2),
        )
        if transport is None:
            _bound_reads(self._http)
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._preferred = 0
        self._attempts, self._backoff_s = attempts, backoff_s
        self._sleep = sleep
        self.max_in_flight = max(max_in_flight, 1)
        self._pool: ThreadPoolExecutor | None = None
        rate = cfg.rpc_max_calls_per_s
        self._budget = _Budget(rate, sleep) if rate else None
        self._rate_waited_s = 0.0
        self._rate_until = 0.0  # when the wait in progress ends
        self._rate_sleepers = 0  # threads sleeping in rate_wait
        # Rate-limit waits in all, per pass (`rpc_rate_wait_s`, 30 s by default).
        self._rate_wait_budget_s = (
            cfg.rpc_rate_wait_s if rate_wait_budget_s is None else rate_wait_budget_s
        )
        self.round_trips = 0
        self.calls_sent = 0
        self.bytes_received = 0
        self.limits_changed = False
        self._refusals_at_open: dict[str, tuple[Any, ...]] = {}
        now = time.time()
        for ep in self.endpoints:
            known_at = ep.limits.learnt_at
            if known_at is not None and not 0 <= now - known_at <= RELEARN_AFTER_S:
                ep.limits.forget_refusals()
                self.limits_changed = True
            self._refusals_at_open[ep.key] = ep.limits.refusals()
            if known_at is None and ep.limits.refusals() != _FRESH:
                self.limits_changed = True  # kept before timestamps: date it now

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._http.close()

    @property
    def preferred(self) -> Endpoint:
        return self.endpoints[self._preferred]

    def learnt_limits(self) -> dict[str, EndpointLimits]:
        """The limits to keep, each dated when its refusals last changed."""
        now = time.time()
        for ep in self.endpoints:
            lim = ep.limits
            changed = lim.refusals() != self._refusals_at_open.get(ep.key)
            if lim.refusals() == _FRESH:
                lim.learnt_at = None
            elif changed or lim.learnt_at is None:
                lim.learnt_at = now
        return {ep.key: ep.limits for ep in self.endpoints}

    def scrub(self, text: str) -> str:
        """`text` without any part of any endpoint URL (nodes echo paths and keys)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- calls --

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call.

        Raises:
            RpcUnavailableError: no endpoint answered after the retries.
            RpcRejectedError: the node answered with an error.
        """
        (result,) = self.batch([(method, params)])
        return result

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Results of `calls` in order, in as few requests as the endpoint allows.

        Raises:
            RpcUnavailableError: no endpoint answered after the retries.
            RpcRejectedError: the node answered any call with an error (the first).
        """
        out = self.settle(calls)
        for value in out:
            if isinstance(value, RpcRejectedError):
                raise value
        return out

    def settle(self, calls: Sequence[Call]) -> list[Any]:
        """Like `batch`, but a call the node answered with an error gets its
        RpcRejectedError in its place instead of raising.

        Raises:
            RpcUnavailableError: no endpoint answered after the retries.
        """
        out: list[Any] = [_RETRY] * len(calls)
        tries = [0] * len(calls)
        pending = list(range(len(calls)))
        while pending:
            ep = self.preferred
            chunks = self._plan(ep, calls, pending)
            if _cost_key(calls[pending[0]]) not in ep.limits.bytes_per_call:
                # Nothing measured yet: one batch at the (cautious) prior first, then
                # the rest sized by what it weighed.
                chunks = chunks[:1]
            for idx, value in self._run(calls, chunks):
                if value is _WAITED:
                    out[idx] = _RETRY
                    continue
                tries[idx] += 1
                if value is _RETRY and tries[idx] >= MAX_TRIES_PER_CALL:
                    value = RpcRejectedError(
                        f"{calls[idx][0]}: {self.preferred.label} kept refusing the "
                        "call (batch or response limits); try another endpoint"
                    )
                out[idx] = value
            pending = [i for i, v in enumerate(out) if v is _RETRY]
        return out

    # -- planning --

    def _plan(
        self, ep: Endpoint, calls: Sequence[Call], pending: list[int]
    ) -> list[list[int]]:
        """Split `pending` into batches under the endpoint's call and byte limits."""
        cap = ep.max_calls()
        if self._budget is not None:
            cap = min(cap, self._budget.rate)
        budget = ep.budget_bytes()
        chunks: list[list[int]] = []
        current: list[int] = []
        size = sent = 0
        for i in pending:
            cost = self._expected_bytes(ep, calls[i])
            body = _request_bytes(calls[i])
            if current and (
                len(current) >= cap
                or size + cost > budget
                or sent + body > MAX_REQUEST_BYTES
            ):
                chunks.append(current)
                current, size, sent = [], 0, 0
            current.append(i)
            size += cost
            sent += body
        if current:
            chunks.append(current)
        return chunks

    def _expected_bytes(self, ep: Endpoint, call: Call) -> int:
        key = _cost_key(call)
        known = ep.limits.bytes_per_call.get(key)
        return known if known else PRIOR_BYTES.get(key, DEFAULT_PRIOR)

    def _run(
        self, calls: Sequence[Call], chunks: list[list[int]]
    ) -> list[tuple[int, Any]]:
        in_flight = 1 if self.preferred.rate_limited_at else self.max_in_flight
        if len(chunks) == 1 or in_flight == 1:
            return [pair for c in chunks for pair in self._exchange(calls, c)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.max_in_flight, thread_name_prefix="ctrip-rpc"
            )
        futures = [self._pool.submit(self._exchange, calls, c) for c in chunks]
        return [pair for f in futures for pair in f.result()]

    # -- one request --

    def _exchange(
        self, calls: Sequence[Call], chunk: list[int]
    ) -> list[tuple[int, Any]]:
        """Send one batch; every call comes back with a result, an error or _RETRY."""
        ids = {next(self._ids): i for i in chunk}
        body = [
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": calls[i][0],
                "params": list(calls[i][1]),
            }
            for rid, i in ids.items()
        ]
        payload = json.dumps(body[0] if len(body) == 1 else body).encode()
        method = calls[chunk[0]][0]
        started = time.monotonic()
        try:
            ep, resp = self._post(
                payload, method, shrinkable=len(chunk) > 1, calls=len(chunk)
            )
        except _TimedOut as exc:  # the node chokes on the size: ask for less
            self._shrink(exc.ep, calls, chunk)
            return [(i, _RETRY) for i in chunk]
        if time.monotonic() - started > self.timeout_s / 2 and len(chunk) > 1:
            ep.target_bytes = max(ep.target_bytes // 2, MIN_TARGET_BYTES)
        return self._interpret(ep, resp, calls, chunk, ids)

    def _interpret(
        self,
        ep: Endpoint,
        resp: _Answer,
        calls: Sequence[Call],
        chunk: list[int],
        ids: dict[int, int],
    ) -> list[tuple[int, Any]]:
        retry_all = [(i, _RETRY) for i in chunk]
        if resp.status_code == 413 and not _is_json(resp):  # the batch is too large
            if self._batch_refused(ep, len(chunk)):
                return retry_all
            what = "HTTP 413: request too large even alone"
            return self._fail_all(ep, calls, chunk, what)
        if resp.status_code == 429:
            self.rate_wait(ep, resp.retry_after)
            return [(i, _WAITED) for i in chunk]
        replies = self._decode(ep, resp, calls, chunk)
        if not isinstance(replies, list):
            return replies.outcome
        answered = sum(
            1 for r in replies if isinstance(r, dict) and r.get("error") is None
        )
        self._measure(ep, calls, chunk, len(resp.content), answered)
        by_id = {
            r.get("id"): r
            for r in replies
            if isinstance(r, dict) and isinstance(r.get("id"), int | str | None)
        }
        if len(chunk) == 1 and len(by_id) == 1 and not by_id.keys() & ids.keys():
            by_id = {next(iter(ids)): next(iter(by_id.values()))}  # a sloppy id echo
        if len(chunk) > 1 and not by_id.keys() & ids.keys() and len(replies) == 1:
            return self._whole_batch_error(ep, replies[0], calls, chunk)
        return self._collect(ep, len(resp.content), calls, ids, by_id)

    def _collect(
        self,
        ep: Endpoint,
        size: int,
        calls: Sequence[Call],
        ids: dict[int, int],
        by_id: dict[Any, Any],
    ) -> list[tuple[int, Any]]:
        """Each call's value from the replies by id; a missing one is asked again."""
        out: list[tuple[int, Any]] = []
        n = len(ids)
        for rid, i in ids.items():
            reply = by_id.get(rid)
            value = (
                _RETRY
                if reply is None
                else self._reply_value(ep, calls[i][0], reply, size, n)
            )
            out.append((i, value))
        if n == ep.limits.max_batch and all(rid in by_id for rid in ids):
            self._grow(ep)
        if any(v is _RATE_LIMITED for _, v in out):
            # However many of its calls were refused, one answer costs one wait.
            self.rate_wait(ep, None)
            out = [(i, _WAITED if v is _RATE_LIMITED else v) for i, v in out]
        return out

    def _decode(
        self,
        ep: Endpoint,
        resp: _Answer,
        calls: Sequence[Call],
        chunk: list[int],
    ) -> list[Any] | _Outcome:
        """The replies of a 2xx answer, or the outcome of every call when there are none."""
        try:
            replies = json.loads(resp.content)
        except ValueError:
            if len(chunk) > 1 and resp.content.lstrip()[:1] in (b"[", b"{"):
                # JSON cut off at the provider's size cap (an HTML page is not)
                self._response_capped(ep, len(resp.content))
                self._shrink(ep, calls, chunk)
                return _Outcome([(i, _RETRY) for i in chunk])
            what = "the answer is not JSON (cut off?)"
            return _Outcome(self._fail_all(ep, calls, chunk, what))
        self.bytes_received += len(resp.content)
        if isinstance(replies, dict) and len(chunk) > 1:
            return _Outcome(self._whole_batch_error(ep, replies, calls, chunk))
        if isinstance(replies, dict):
            replies = [replies]
        if not isinstance(replies, list):
            what = "the answer is not JSON-RPC"
            return _Outcome(self._fail_all(ep, calls, chunk, what))
        return replies

    def _reply_value(
        self, ep: Endpoint, method: str, reply: dict[str, Any], size: int, n: int
    ) -> Any:
        error = reply.get("error")
        if error is None:
            if "result" not in reply:
                return self._rejected(ep, method, "an answer without a result")
            return reply["result"]
        code = error.get("code") if isinstance(error, dict) else None
        message = (
            str(error.get("message", "")) if isinstance(error, dict) else str(error)
        )
        kind = classify(method, code, message)
        if kind is Kind.RESPONSE_TOO_LARGE:
            if n == 1:
                return self._rejected(ep, method, "response too large even alone")
            self._response_capped(ep, size)
            return _RETRY
        if kind is Kind.RATE_LIMITED:
            return _RATE_LIMITED  # waited once per answer, by the caller
        if kind in (Kind.BATCH_TOO_LARGE, Kind.NO_BATCHING) and n > 1:
            named = batch_limit_hint(message) if kind is Kind.BATCH_TOO_LARGE else None
            self._batch_refused(ep, n, no_batching=kind is Kind.NO_BATCHING, cap=named)
            return _RETRY
        if kind is Kind.METHOD_MISSING:
            if method not in ep.limits.unsupported:
                ep.limits.unsupported.append(method)
                self.limits_changed = True
            return RpcMethodUnsupportedError(self._message(ep, method, message, code))
        if kind is Kind.LOGS_TOO_LARGE:
            return RpcTooManyResultsError(self._message(ep, method, message, code))
        return RpcRejectedError(self._message(ep, method, message, code))

    def _whole_batch_error(
        self,
        ep: Endpoint,
        reply: dict[str, Any],
        calls: Sequence[Call],
        chunk: list[int],
    ) -> list[tuple[int, Any]]:
        """One error object for a whole batch (geth: "batch too large")."""
        error = reply.get("error") if isinstance(reply, dict) else None
        if isinstance(error, dict) and error.get("code") == -32700:
            # A valid batch answered "parse error" (proxyd, ethereum-optimism/
            # optimism#2021): the endpoint does not take batches.
            self._batch_refused(ep, len(chunk), no_batching=True)
            return [(i, _RETRY) for i in chunk]
        value = self._reply_value(
            ep, calls[chunk[0]][0], {"error": error or reply}, 0, len(chunk)
        )
        if isinstance(value, _Retry):
            return [(i, value) for i in chunk]
        if isinstance(value, RpcRejectedError):
            return [
                (i, type(value)(str(value).replace(calls[chunk[0]][0], calls[i][0], 1)))
                for i in chunk
            ]
        return self._fail_all(ep, calls, chunk, "one answer for a whole batch")

    # -- learning --

    def _batch_refused(
        self, ep: Endpoint, n: int, *, no_batching: bool = False, cap: int | None = None
    ) -> bool:
        """Learn from a refused batch of `n` calls; False when it cannot shrink."""
        with self._lock:
            if n <= 1:
                return False
            lim = ep.limits
            if no_batching:
                lim.batching = False
                log.info("chain %s: %s serves no batches", self.cfg.name, ep.label)
            lim.refused_batch = min(lim.refused_batch or n, n)
            if cap is not None and cap < n:
                lim.max_batch, lim.refused_batch = cap, cap + 1
            elif lim.max_batch is None or lim.max_batch >= n:
                lim.max_batch = max(n // 2, 1)
            if lim.max_batch == 1 and lim.refused_batch == 2:
                lim.batching = False
            self.limits_changed = True
            return True

    def _grow(self, ep: Endpoint) -> None:
        """A full batch worked: try halfway to the smallest refused size next time."""
        with self._lock:
            lim = ep.limits
            if lim.max_batch is None or lim.refused_batch is None:
                return
            gap = lim.refused_batch - lim.max_batch
            if gap > max(1, lim.max_batch // 8):
                lim.max_batch += gap // 2
                self.limits_changed = True

    def _shrink(self, ep: Endpoint, calls: Sequence[Call], chunk: list[int]) -> None:
        """The next batch like this one holds at most half as many calls."""
        with self._lock:
            ep.target_bytes = max(ep.target_bytes // 2, MIN_TARGET_BYTES)
            key = _cost_key(calls[chunk[0]])
            per_call = 2 * ep.budget_bytes() // len(chunk) + 1
            known = ep.limits.bytes_per_call.get(key, 0)
            ep.limits.bytes_per_call[key] = max(known, per_call)

    def _response_capped(self, ep: Endpoint, size: int) -> None:
        with self._lock:
            size = max(size, 2 * MIN_TARGET_BYTES)
            cap = ep.limits.max_response_bytes
            if cap is None or size < cap:
                ep.limits.max_response_bytes = size
                self.limits_changed = True
            ep.target_bytes = min(ep.target_bytes, size // 2)

    def _measure(
        self,
        ep: Endpoint,
        calls: Sequence[Call],
        chunk: list[int],
        size: int,
        answered: int,
    ) -> None:
        """Bytes per answered call (error entries are small and would skew it)."""
        keys = {_cost_key(calls[i]) for i in chunk}
        if len(keys) != 1 or not answered:
            return
        (key,) = keys
        per_call = max(size // answered, 1)
        with self._lock:
            old = ep.limits.bytes_per_call.get(key)
            new = per_call if old is None else (old + per_call) // 2
            # Above the mean when blocks grow: a batch sized by it must stay under caps.
            ep.limits.bytes_per_call[key] = max(new, per_call)
            if old is None or abs(new - old) * 4 > old:
                self.limits_changed = True

    def rate_wait(self, ep: Endpoint, retry_after: str | None) -> None:
        """Wait as the endpoint asks (or back off), within the pass's wait budget.

        Requests in flight together that are refused together wait together: one
        arriving while another waits sleeps until that wait ends, uncharged, so four
        parallel batches do not spend the budget four times.
        """
        with self._lock:
            now = time.monotonic()
            ep.rate_limited_at = now
            if self._rate_sleepers and self._rate_until > now:
                delay = self._rate_until - now
            else:
                delay = self._rate_delay(ep, retry_after)
                self._rate_until = now + delay
            self._rate_sleepers += 1
        log.info(
            "chain %s: %s rate-limits; waiting %.1f s", self.cfg.name, ep.label, delay
        )
        try:
            self._sleep(delay)
        finally:
            with self._lock:
                self._rate_sleepers -= 1

    def _rate_delay(self, ep: Endpoint, retry_after: str | None) -> float:
        """The next wait, charged to the budget (under the lock)."""
        delay = _retry_after_s(retry_after)
        if delay is None:
            delay = min(self._backoff_s * 2 ** min(int(self._rate_waited_s), 6), 8.0)
        # At least a little: "Retry-After: 0" forever must still use up the budget.
        # One wait never exceeds the whole budget: a far-off Retry-After is waited
        # up to it and tried once more.
        cap = min(MAX_RATE_WAIT_S, self._rate_wait_budget_s)
        delay = min(max(delay, MIN_RATE_WAIT_S), cap)
        if self._rate_waited_s + delay > self._rate_wait_budget_s:
            raise RpcUnavailableError(
                f"chain {self.cfg.name!r}: {ep.label} kept rate-limiting the pass "
                f"(waited {self._rate_waited_s:.0f} s); lower rpc_max_calls_per_s or "
                "add an endpoint, then rerun"
            )
        self._rate_waited_s += delay
        return delay

    # -- HTTP --

    def _fetch(self, ep: Endpoint, payload: bytes, calls: int) -> _Answer:
        """One POST, read within a deadline for the whole answer and a size cap on
        what it inflates to (a trickling body or a gzip bomb must not hold a pass).
        Every POST spends `calls` of the call budget, retries included."""
        if self._budget is not None:
            self._budget.acquire(calls)
        with self._lock:
            self.round_trips += 1
        deadline = time.monotonic() + self.timeout_s
        headers = {"content-type": "application/json"}
        _DEADLINE.at = deadline  # every socket read and write of this thread obeys it
        try:
            with self._http.stream(
                "POST", ep.url, content=payload, headers=headers
            ) as r:
                parts, size = [], 0
                for part in r.iter_bytes():
                    size += len(part)
                    if size > MAX_BODY_BYTES:
                        raise _TooBig(f"answer over {MAX_BODY_BYTES:,} bytes")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer took too long")
                    parts.append(part)
                retry_after = r.headers.get("retry-after")
                return _Answer(r.status_code, retry_after, b"".join(parts))
        finally:
            _DEADLINE.at = None

    def _post(
        self, payload: bytes, method: str, *, shrinkable: bool, calls: int = 1
    ) -> tuple[Endpoint, _Answer]:
        """POST to the preferred endpoint, failing over and retrying with backoff."""
        failures: list[str] = []
        total_timeouts = 0
        n = len(self.endpoints)
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(
                    min(self._backoff_s * 2 ** (attempt - 1), 8 * self._backoff_s)
                )
            answered, timeouts = self._round(payload, calls, shrinkable, failures)
            if answered is not None:
                return answered
            total_timeouts += timeouts
            if total_timeouts >= 2 * n:  # slow twice everywhere: do not wait it out
                break
            if shrinkable and timeouts == n:  # every endpoint chokes: maybe its size
                raise _TimedOut(self.preferred, "; ".join(failures[-n:]))
        raise self._unavailable(method, "; ".join(failures[-n:]))

    def _round(
        self, payload: bytes, calls: int, shrinkable: bool, failures: list[str]
    ) -> tuple[tuple[Endpoint, _Answer] | None, int]:
        """Every endpoint once, from the preferred one: (the answer, or None, and
        how many timed out)."""
        timeouts = 0
        n = len(self.endpoints)
        for k in range(n):
            ep = self.endpoints[(self._preferred + k) % n]
            try:
                resp = self._fetch(ep, payload, calls)
            except (httpx.TimeoutException, httpx.RemoteProtocolError, _TooBig) as exc:
                # A timeout or a body cut off mid-way: maybe the batch's size.
                failures.append(f"{ep.label}: {type(exc).__name__}")
                timeouts += 1
                continue
            except httpx.HTTPError as exc:
                failures.append(f"{ep.label}: {type(exc).__name__}")
                continue
            problem = self._refusal(ep, resp, last=k == n - 1, shrinkable=shrinkable)
            if problem:
                failures.append(f"{ep.label}: {problem}")
                continue
            self._prefer(ep)
            with self._lock:
                self.calls_sent += payload.count(b'"method"')
            return (ep, resp), timeouts
        return None, timeouts

    def _refusal(
        self, ep: Endpoint, resp: _Answer, *, last: bool, shrinkable: bool
    ) -> str | None:
        """Why this answer should be sought from the next endpoint instead, if so."""
        if resp.status_code == 429 and not last:
            # Another endpoint may have capacity left; wait only when all of them
            # rate-limit.
            ep.rate_limited_at = time.monotonic()
            return "HTTP 429"
        if resp.status_code >= 400 and resp.status_code not in (413, 429):
            # 5xx is transient; 401/403 (a bad API key) or 404 is this endpoint's
            # problem: either way the next endpoint may answer.
            return f"HTTP {resp.status_code}"
        cut = shrinkable and resp.content.lstrip()[:1] in (b"[", b"{")
        if resp.status_code == 200 and not cut and not _is_json(resp):
            return "not JSON"  # garbage: try elsewhere
        return None

    def _prefer(self, ep: Endpoint) -> None:
        index = ep.index - 1
        if index != self._preferred:
            log.warning("chain %s: failing over to RPC %s", self.cfg.name, ep.label)
            self._preferred = index

    def _unavailable(self, method: str, detail: str) -> RpcUnavailableError:
        return RpcUnavailableError(
            f"chain {self.cfg.name!r}: no RPC endpoint answered {method} after "
            f"{self._attempts} attempts ({detail}); check rpc_urls and the nodes, then rerun"
        )

    # -- errors --

    def _message(self, ep: Endpoint, method: str, message: str, code: Any) -> str:
        text = self.scrub(message)[:300]
        suffix = f" (code {code})" if isinstance(code, int) else ""
        return f"{method}: {ep.label}: {text}{suffix}"

    def _rejected(self, ep: Endpoint, method: str, what: str) -> RpcRejectedError:
        return RpcRejectedError(f"{method}: {ep.label} sent {what}")

    def _fail_all(
        self, ep: Endpoint, calls: Sequence[Call], chunk: list[int], what: str
    ) -> list[tuple[int, Any]]:
        return [
            (i, RpcRejectedError(f"{calls[i][0]}: {ep.label}: {what}")) for i in chunk
        ]


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    retry_after: str | None
    content: bytes


class _TooBig(Exception):
    """An answer larger than MAX_BODY_BYTES once inflated."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    outcome: list[tuple[int, Any]]


class _TimedOut(Exception):
    def __init__(self, ep: Endpoint, detail: str) -> None:
        super().__init__(detail)
        self.ep = ep


def _is_json(resp: _Answer) -> bool:
    try:
        json.loads(resp.content)
    except ValueError:
        return False
    return True


class _Deadline(threading.local):
    at: float | None = None


_DEADLINE = _Deadline()


def _left(timeout: float | None) -> float | None:
    """A socket operation's timeout, cut to what is left of the request's deadline:
    httpx's timeouts are per read, so a node trickling its status line or headers a
    byte at a time would otherwise hold a pass for hours."""
    at = _DEADLINE.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the answer took too long")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _left(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _left(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, _left(timeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _bound_reads(client: httpx.Client) -> None:
    """Put the per-request deadline under every connection `client` opens (its own
    transport and any proxy mounts taken from the environment)."""
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


def _request_bytes(call: Call) -> int:
    """About what `call` adds to a request body: its string parameters (and those
    one level inside an object, like eth_call's `data`) plus the envelope."""
    size = 64 + len(call[0])
    for p in call[1]:
        if isinstance(p, str):
            size += len(p)
        elif isinstance(p, dict):
            size += sum(len(v) + 16 for v in p.values() if isinstance(v, str))
        else:
            size += 16
    return size


def _cost_key(call: Call) -> str:
    method, params = call
    if method == "eth_getBlockByNumber" and len(params) > 1 and params[1] is True:
        return "eth_getBlockByNumber/full"
    return method


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _url_secrets(urls: Sequence[str]) -> list[str]:
    """Every fragment of the URLs a node might echo: the URL itself, userinfo, path
    segments, query values, fragment. Longest first, so a URL is masked whole."""
    found: set[str] = set()
    for url in urls:
        found.update({url, url.rstrip("/")})
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        for piece in (parts.username, parts.password, parts.query, parts.fragment):
            if piece:
                found.update({piece, unquote(piece)})
        if parts.username is not None:  # an echoed `Authorization: Basic ...` header
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            found.add(base64.b64encode(pair.encode()).decode())
        # A key in the host name (`https://<key>.provider.example/`): labels long
        # enough to be a key, never a plain word like "mainnet".
        found.update(
            label
            for label in (parts.hostname or "").split(".")
            if len(label) >= 16 and any(c.isdigit() for c in label)
        )
        if parts.path not in ("", "/"):
            found.update({parts.path, parts.path.strip("/")})
            found.update(s for s in parts.path.split("/") if len(s) >= 6)
        for _, value in parse_qsl(parts.query):
            if len(value) >= 4:
                found.add(value)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)
