"""The sender with httpx.MockTransport: headers, outcomes, caps and the deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from ctrip_cli.config import WebhookSettings
from ctrip_cli.webhooks import delivery, signing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ITEM = delivery.Delivery("msg_1", "https://merchant.example/hook?token=t", '{"a":1}')


def send(
    handler: Callable[[httpx.Request], Any], *, budget_s: float = 5.0, **overrides: Any
):
    settings = WebhookSettings(secrets=[SecretStr(SECRET)], **overrides)

    async def go() -> delivery.Attempt | None:
        sender = delivery.Sender(
            settings,
            keys=[signing.decode_secret(SECRET)],
            clock=lambda: datetime.now(UTC),
            transport=httpx.MockTransport(handler),
        )
        async with sender:
            return await sender.send(ITEM, deadline=time.monotonic() + budget_s)

    return asyncio.run(go())


def test_request_is_signed_json_without_redirects():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    attempt = send(handler)
    assert attempt is not None
    assert attempt.ok
    assert attempt.status_code == 204
    request = seen[0]
    assert request.method == "POST"
    assert request.content == b'{"a":1}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("ctrip/")
    assert request.headers["webhook-id"] == "msg_1"
    Webhook(SECRET).verify(request.content, dict(request.headers))
    assert attempt.endpoint == "https://merchant.example:443"  # no path, no token


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (302, "HTTP 302 (redirects are not followed)"),
        (500, "HTTP 500"),
        (410, "HTTP 410"),
    ],
)
def test_non_2xx_is_a_failed_attempt(status, error):
    attempt = send(
        lambda r: httpx.Response(status, headers={"location": "https://x.example"})
    )
    assert attempt is not None
    assert not attempt.ok
    assert attempt.status_code == status
    assert attempt.error == error


def test_retry_after_and_an_excerpt_of_the_body_are_kept():
    body = b"busy " * 10_000
    attempt = send(
        lambda r: httpx.Response(503, headers={"retry-after": "30"}, content=body)
    )
    assert attempt is not None
    assert attempt.retry_after == "30"
    assert attempt.excerpt is not None
    assert attempt.excerpt.startswith("busy busy")
    assert len(attempt.excerpt) <= delivery.EXCERPT_CHARS


def test_connection_errors_become_attempt_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    attempt = send(handler)
    assert attempt is not None
    assert attempt.status_code is None
    assert attempt.error == "ConnectError: connection refused"


def test_a_hanging_endpoint_is_cut_at_the_request_deadline():
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return httpx.Response(200)

    attempt = send(handler, budget_s=0.5)
    assert attempt is not None
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("no complete response within")


def test_nothing_is_sent_when_the_budget_is_already_spent():
    seen: list[httpx.Request] = []
    assert send(lambda r: seen.append(r) or httpx.Response(200), budget_s=0.01) is None
    assert seen == []


def test_endpoint_key_ignores_credentials_and_brackets_ipv6():
    assert delivery.endpoint_of("http://u:p@[::1]:8080/x?y") == "http://[::1]:8080"
    assert delivery.endpoint_of("http://example.com/x") == "http://example.com:80"
