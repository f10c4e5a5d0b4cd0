"""Concurrent webhook sending over one shared `httpx.AsyncClient`.

Bounds: requests in flight overall and per endpoint (scheme://host:port). Each request
has a connect timeout and a total deadline enforced by asyncio, so a server that
trickles bytes cannot hold it; responses are read up to `RESPONSE_CAP` bytes; redirects
are not followed (a 3xx is a failed attempt). Connections are reused per endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from urllib.parse import urlsplit

import httpcore
import httpx

from ctrip_cli import __version__
from ctrip_cli.config import WebhookSettings
from ctrip_cli.webhooks import signing, ssrf, streams

log = logging.getLogger("ctrip.webhooks")
USER_AGENT = f"ctrip/{__version__}"
RESPONSE_CAP = 4096
EXCERPT_CHARS = 512
MIN_REQUEST_S = 0.2


@dataclass(frozen=True, slots=True)
class Delivery:
    """What to send: the outbox row's id (the `webhook-id`), target and exact body."""

    event_id: str
    url: str
    body: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt did; `status_code` is None when no response arrived."""

    started_at: datetime
    endpoint: str
    latency_ms: int | None
    status_code: int | None
    error: str | None
    excerpt: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def endpoint_of(url: str) -> str:
    """`scheme://host:port` of a URL: the per-endpoint key, free of paths and credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # not a URL at all; still a key, and still no credentials
        return "invalid-url"
    host = parts.hostname or "?"
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def refused(url: str, reason: str, *, at: datetime) -> Attempt:
    """An attempt stopped before any connection (bad URL or plain http where https is due)."""
    return Attempt(at, endpoint_of(url), None, None, f"refused: {reason}")


def guarded_transport(
    settings: WebhookSettings, *, connections: int, tls: ssl.SSLContext
) -> httpx.AsyncHTTPTransport:
    """A pooled transport whose connections go through the SSRF guard."""
    transport = httpx.AsyncHTTPTransport(verify=tls, trust_env=False)
    pool = httpcore.AsyncConnectionPool(
        ssl_context=tls,
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=30.0,
        network_backend=ssrf.GuardedBackend(
            allow_private=settings.allow_private, inner=streams.AsyncioBackend()
        ),
    )
    ssrf.install_pool(transport, pool)
    return transport


class EndpointTransports(httpx.AsyncBaseTransport):
    """One small guarded pool per endpoint: httpcore scans its whole pool for every
    request, so one pool of hundreds of connections costs more CPU than the sends."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}
        self._tls: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        pool = self.pools.get(key)
        if pool is None:
            if self._tls is None:  # loading the CA bundle takes ~60 ms: once per pass
                self._tls = httpx.create_ssl_context(trust_env=False)
            pool = guarded_transport(
                self.settings, connections=self.settings.per_endpoint, tls=self._tls
            )
            self.pools[key] = pool
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()


class Sender:
    """Sends deliveries concurrently; one instance serves one pass (one event loop)."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        keys: Sequence[bytes],
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings, self.keys, self.clock = settings, list(keys), clock
        self.http = httpx.AsyncClient(
            transport=transport or EndpointTransports(settings),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self._per_endpoint: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def send(self, item: Delivery, *, deadline: float) -> Attempt | None:
        """Send one delivery, waiting for a free slot until `deadline` (time.monotonic()).

        Returns None when the deadline came before the request could start: nothing
        was sent, and the event can simply be released.
        """
        endpoint = endpoint_of(item.url)
        gate = self._per_endpoint.setdefault(
            endpoint, asyncio.Semaphore(self.settings.per_endpoint)
        )
        loop = asyncio.get_running_loop()
        until = loop.time() + (deadline - time.monotonic())
        try:
            async with asyncio.timeout_at(until):
                # Endpoint slot first: events queued behind a slow endpoint do not hold
                # global slots that other endpoints could use.
                await gate.acquire()
        except TimeoutError:
            return None
        try:
            try:
                async with asyncio.timeout_at(until):
                    await self._in_flight.acquire()
            except TimeoutError:
                return None
            try:
                return await self._post(item, endpoint, deadline)
            finally:
                self._in_flight.release()
        finally:
            gate.release()

    async def _post(
        self, item: Delivery, endpoint: str, deadline: float
    ) -> Attempt | None:
        budget = min(self.settings.timeout_s, deadline - time.monotonic())
        if budget < MIN_REQUEST_S:
            return None
        started_at = self.clock()
        body = item.body.encode()
        headers = signing.headers(
            self.keys, item.event_id, int(started_at.timestamp()), body
        )
        headers |= {"content-type": "application/json", "accept-encoding": "identity"}
        timeout = httpx.Timeout(
            budget, connect=min(self.settings.connect_timeout_s, budget)
        )
        t0 = time.monotonic()
        status: int | None = None
        excerpt = retry_after = error = None
        try:
            async with asyncio.timeout(budget):
                req = self.http.stream(
                    "POST", item.url, content=body, headers=headers, timeout=timeout
                )
                async with req as response:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                    excerpt = await _read_capped(response)
        except TimeoutError:
            error = f"no complete response within {budget:.1f}s"
        except ssrf.UnsafeAddressError as exc:
            error = f"refused: {exc}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300].removesuffix(": ")
        except Exception as exc:  # one odd endpoint must not stop the pass
            log.warning("unexpected %s sending %s", type(exc).__name__, item.event_id)
            error = f"unexpected {type(exc).__name__}: {exc}"[:300]
        latency_ms = round((time.monotonic() - t0) * 1000)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"HTTP {status}" + (
                " (redirects are not followed)" if 300 <= status < 400 else ""
            )
        return Attempt(
            started_at, endpoint, latency_ms, status, error, excerpt, retry_after
        )


async def _read_capped(response: httpx.Response) -> str:
    # Raw bytes (no decompression) and at most RESPONSE_CAP of them: a huge or endless
    # body costs one small read, then the connection is dropped.
    if response.is_stream_consumed:  # an in-memory response (httpx.MockTransport)
        return response.content[:RESPONSE_CAP].decode("utf-8", "replace")[
            :EXCERPT_CHARS
        ]
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_CAP:
            break
    return b"".join(chunks)[:RESPONSE_CAP].decode("utf-8", "replace")[:EXCERPT_CHARS]
