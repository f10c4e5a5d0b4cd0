"""The SSRF guard: webhook targets must be public addresses, checked as connected.

Resolution and the check happen inside the connection itself (`GuardedBackend`): the
socket is opened to exactly the address that was checked, so a DNS answer that changes
between check and connect (rebinding) cannot slip through, while the URL, the Host
header and TLS SNI/certificate checks keep the original host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable
from typing import Any

import httpcore

from ctrip_cli import urls
from ctrip_cli.errors import WebhookError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CHECKS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
    # fec0::/10, deprecated by RFC 3879 but still routed inside some networks;
    # `is_private` and `is_global` do not cover it.
    ("is_site_local", "site-local"),
)


class UnsafeAddressError(Exception):
    """The webhook host resolves to an address ctrip refuses to connect to."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 and 6to4 forms
    # reach the IPv4 address inside them, so that address is what must be public.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if int(ip) >> 32 == 0 or ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: IPAddress) -> str | None:
    """Why `ip` is not an acceptable webhook target, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal(inner)
            return None if reason is None else f"{reason} ({inner} inside {ip})"
    for attribute, label in _CHECKS:
        if getattr(ip, attribute, False):  # is_site_local exists for IPv6 only
            return label
    if ip in _CGNAT:
        return "shared address space (CGNAT)"
    if not ip.is_global:
        return "not globally routable"
    return None


def check_addresses(host: str, addresses: Iterable[str]) -> list[str]:
    """The addresses, in order, if every one is public.

    Raises:
        UnsafeAddressError: any address is not public (a host that mixes public and
            private answers is refused outright).
    """
    checked = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        reason = refusal(ip)
        if reason is not None:
            raise UnsafeAddressError(
                f"{host} resolves to {ip} ({reason}); refused unless "
                "CTRIP_WEBHOOK_ALLOW_PRIVATE=true"
            )
        checked.append(str(ip))
    if not checked:
        raise UnsafeAddressError(f"{host} resolves to no address")
    return checked


def install_pool(transport: Any, pool: httpcore.AsyncConnectionPool) -> None:
    """Make `pool` (whose backend is the guard) the connection pool of an httpx
    transport.

    httpx has no public hook for the network backend, so the transport's private
    `_pool` is replaced; pyproject.toml pins the httpx releases this is tested with.
    Should a release rename or restructure it, sending stops here rather than going
    out unguarded.

    Raises:
        WebhookError: the transport has no httpcore pool where one is expected.
    """
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise WebhookError(
            f"httpx {httpx_version()} has no connection pool where the SSRF guard "
            "goes; install the httpx version pinned in pyproject.toml"
        )
    transport._pool = pool


def httpx_version() -> str:
    from importlib.metadata import version

    return version("httpx")


def url_problem(url: str, *, require_https: bool) -> str | None:
    """Why `url` cannot be a webhook target before any lookup, or None."""
    problem = urls.webhook_url_problem(url)
    if problem is not None:
        return problem
    if require_https and not url.startswith("https:"):
        return "plain http is refused for this chain; use https or CTRIP_WEBHOOK_ALLOW_HTTP=true"
    return None


async def _getaddrinfo(host: str, port: int) -> list[Any]:
    """`socket.getaddrinfo` in a daemon thread, awaited cancellably.

    The default executor would do, except that `asyncio.run` and interpreter exit wait
    for its threads: a resolver that hangs would hold the pass past its budget.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Any]] = loop.create_future()

    def settle(result: list[Any] | None, error: OSError | None) -> None:
        if future.done():  # the request was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def lookup() -> None:
        try:
            result, error = (
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                None,
            )
        except (OSError, UnicodeError) as exc:  # an IDNA failure is a bad name too
            result, error = None, OSError(str(exc))
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=lookup, name="ctrip-dns", daemon=True).start()
    return await future


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the checked IP."""

    def __init__(
        self, *, allow_private: bool, inner: httpcore.AsyncNetworkBackend | None = None
    ):
        self.allow_private = allow_private
        self.inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of `host`, checked unless private targets are allowed.

        Raises:
            UnsafeAddressError: a refused address.
            httpcore.ConnectError: the name does not resolve.
        """
        try:
            infos = await _getaddrinfo(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(
                f"cannot resolve {host}: {exc.strerror}"
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if self.allow_private:
            return addresses
        return check_addresses(host, addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host} resolves to no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeAddressError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
