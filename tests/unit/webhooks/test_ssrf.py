"""The SSRF guard: address classes, embedded IPv4 forms, and resolution tricks."""

from __future__ import annotations

import asyncio
import ipaddress
import threading

import pytest

from ctrip_cli.webhooks import ssrf


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "100.64.0.1",  # CGNAT
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "fec0::1",  # site-local (RFC 3879), which is_private does not cover
        "feff:ffff::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert ssrf.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "::ffff:1.1.1.1"]
)
def test_public_addresses_pass(address):
    assert ssrf.refusal(ipaddress.ip_address(address)) is None


def test_embedded_address_is_named_in_the_reason():
    reason = ssrf.refusal(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert reason is not None
    assert "127.0.0.1" in reason


def test_a_host_with_any_private_answer_is_refused():
    with pytest.raises(ssrf.UnsafeAddressError, match=r"10\.0\.0\.1"):
        ssrf.check_addresses("mixed.example", ["1.1.1.1", "10.0.0.1"])
    assert ssrf.check_addresses("ok.example", ["1.1.1.1", "2606:4700::1111"]) == [
        "1.1.1.1",
        "2606:4700::1111",
    ]


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
    ],
)
def test_resolver_tricks_still_land_on_refused_addresses(host):
    # Decimal, hex, octal and short forms resolve (glibc inet_aton) to 127.0.0.1; the
    # guard checks what they resolve to, not how they are spelled.
    backend = ssrf.GuardedBackend(allow_private=False)
    with pytest.raises(ssrf.UnsafeAddressError, match="refused unless"):
        asyncio.run(backend.resolve(host, 80))


def test_private_targets_resolve_when_allowed():
    backend = ssrf.GuardedBackend(allow_private=True)
    assert "127.0.0.1" in asyncio.run(backend.resolve("2130706433", 80))


@pytest.mark.parametrize(
    ("url", "https", "problem"),
    [
        ("https://example.com/hook", True, None),
        ("http://example.com/hook", False, None),
        ("http://example.com/hook", True, "plain http is refused"),
        ("ftp://example.com/", False, "not an http(s) URL"),
        ("https:///nohost", False, "not an http(s) URL"),
        ("https://example.com:99999/", False, "port '99999' is not a number"),
        ("https://[::1/", False, "not a valid URL"),
    ],
)
def test_url_rules_before_any_lookup(url, https, problem):
    found = ssrf.url_problem(url, require_https=https)
    assert found == problem if problem is None else problem in (found or "")


def test_a_hanging_resolver_does_not_hold_the_pass(monkeypatch):
    release = threading.Event()
    timer = threading.Timer(20, release.set)
    timer.start()

    def hang(*args: object, **kwargs: object) -> list[object]:
        release.wait()
        return []

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", hang)
    backend = ssrf.GuardedBackend(allow_private=False)

    async def resolve_with_deadline() -> None:
        async with asyncio.timeout(0.2):
            await backend.resolve("merchant.example", 443)

    with pytest.raises(TimeoutError):
        asyncio.run(resolve_with_deadline())
    # asyncio.run returned while the lookup still hangs: nothing waits for its thread.
    assert not release.is_set()
    release.set()
    timer.cancel()


def test_site_local_is_named():
    assert ssrf.refusal(ipaddress.ip_address("fec0::1")) == "site-local"


def test_the_guard_is_the_pool_of_every_delivery_transport():
    """Fails when an httpx release moves the pool the guard is installed in."""
    import ssl

    from ctrip_cli.config import WebhookSettings
    from ctrip_cli.webhooks import delivery

    transport = delivery.guarded_transport(
        WebhookSettings(), connections=2, tls=ssl.create_default_context()
    )
    backend = transport._pool._network_backend
    assert isinstance(backend, ssrf.GuardedBackend)
    assert backend.allow_private is False


def test_a_transport_without_the_expected_pool_stops_sending():
    import httpcore

    from ctrip_cli.errors import WebhookError

    class Moved:
        """A transport whose pool lives under another name."""

        pool = None

    with pytest.raises(WebhookError, match="install the httpx version pinned"):
        ssrf.install_pool(Moved(), httpcore.AsyncConnectionPool())
