"""deliver-webhooks against real local HTTP receivers: slow, failing, hanging, trickling,
redirecting, huge, gone, Retry-After, flaky; connection reuse; the SSRF guard on real
connections; and a crash between sending and recording."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from ctrip_cli import lifecycle
from ctrip_cli.config import WebhookSettings
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookEvent
from ctrip_cli.jobs import deliver_webhooks as job
from ctrip_cli.webhooks import ssrf
from tests.integration.webhooks.receiver import Receiver


def add_events(session: Session, urls: list[str], now: datetime) -> list[str]:
    with session.begin():
        return [
            queries.add_webhook_event(
                session,
                event_id=lifecycle.new_id("msg"),
                payment_id=None,
                event_type="payment.confirmed",
                url=url,
                body=json.dumps({"type": "payment.confirmed", "n": i}),
                now=now,
            )
            for i, url in enumerate(urls)
        ]


def deliver(
    session: Session, secret: str, **overrides: Any
) -> job.DeliverWebhooksResult:
    budget_s = overrides.pop("budget_s", 4.0)
    now = overrides.pop("now", None) or datetime.now(UTC)
    fields: dict[str, Any] = {
        "secrets": [SecretStr(secret)],
        "allow_private": True,
        "require_https": False,
        "timeout_s": 2.0,
        "connect_timeout_s": 1.0,
        "retry_ladder_s": (300,),
    }
    settings = WebhookSettings(**(fields | overrides))
    return job.run(
        session,
        now=now,
        settings=settings,
        dev_chains=(),
        time_budget_s=budget_s,
        rng=random.Random(5),
    )


def events(session: Session, ids: list[str]) -> dict[str, WebhookEvent]:
    session.expire_all()
    found = {i: session.get(WebhookEvent, i) for i in ids}
    for row in found.values():
        session.expunge(row)
    session.rollback()
    return found  # type: ignore[return-value]


def test_each_receiver_behaviour_is_recorded_as_expected(
    sqlite_session, secret, receiver: Receiver
):
    paths = [
        "/ok",
        "/slow",
        "/fail",
        "/hang",
        "/trickle",
        "/redirect",
        "/huge",
        "/gone",
        "/retry-after",
    ]
    started = datetime.now(UTC)
    ids = dict(
        zip(
            paths,
            add_events(sqlite_session, [receiver.url(p) for p in paths], started),
            strict=True,
        )
    )
    result = deliver(sqlite_session, secret)

    assert (result.claimed, result.delivered, result.retrying, result.failed) == (
        9,
        4,
        4,
        1,
    )
    assert result.elapsed_s < 30  # generous: the point is that hanging endpoints end
    rows = events(sqlite_session, list(ids.values()))
    status = {p: rows[ids[p]].status for p in paths}
    assert (
        status
        == {
            "/ok": "delivered",
            "/slow": "delivered",
            "/fail": "pending",
            "/hang": "pending",
            "/trickle": "delivered",  # a 2xx arrived; the endless body is cut at the deadline
            "/redirect": "pending",
            "/huge": "delivered",
            "/gone": "failed",
            "/retry-after": "pending",
        }
    )
    assert rows[ids["/retry-after"]].next_attempt_at >= started + timedelta(seconds=120)
    assert rows[ids["/redirect"]].last_error == "HTTP 302 (redirects are not followed)"
    hang_error = rows[ids["/hang"]].last_error or ""
    assert hang_error.startswith("no complete response within")
    [huge] = queries.webhook_attempts(sqlite_session, ids["/huge"])
    sqlite_session.rollback()
    assert huge.response_excerpt == "x" * 512
    # Exactly one request per event (redirects not followed), each verifiably signed.
    assert sorted(receiver.ids()) == sorted(ids.values())
    assert all(r.verified for r in receiver.requests)


def test_a_flaky_endpoint_is_retried_within_one_run_with_the_same_id(
    sqlite_session, secret, receiver
):
    [eid] = add_events(sqlite_session, [receiver.url("/flaky")], datetime.now(UTC))
    result = deliver(sqlite_session, secret, retry_ladder_s=(0.3,))
    assert (result.retrying, result.delivered) == (1, 1)
    assert receiver.ids() == [eid, eid]
    timestamps = [r.headers["webhook-timestamp"] for r in receiver.requests]
    assert all(t.isdigit() for t in timestamps)


def test_connections_to_one_endpoint_are_reused(sqlite_session, secret, receiver):
    add_events(sqlite_session, [receiver.url("/ok")] * 30, datetime.now(UTC))
    result = deliver(sqlite_session, secret, per_endpoint=2)
    assert result.delivered == 30
    assert len({r.peer_port for r in receiver.requests}) <= 4


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"],
)
def test_private_targets_are_refused_on_real_connections(
    sqlite_session, secret, receiver, host
):
    [eid] = add_events(
        sqlite_session, [f"http://{host}:{receiver.port}/ok"], datetime.now(UTC)
    )
    result = deliver(sqlite_session, secret, allow_private=False)
    assert result.retrying == 1
    error = events(sqlite_session, [eid])[eid].last_error or ""
    assert error.startswith("refused:")
    assert "CTRIP_WEBHOOK_ALLOW_PRIVATE" in error
    assert receiver.requests == []


def test_a_crash_between_sending_and_recording_redelivers_with_the_same_id(
    sqlite_session, secret, receiver, monkeypatch
):
    [eid] = add_events(sqlite_session, [receiver.url("/ok")], datetime.now(UTC))
    real_record = queries.record_webhook_results

    def crash(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("killed before recording")

    monkeypatch.setattr(queries, "record_webhook_results", crash)
    with pytest.raises(RuntimeError, match="killed before recording"):
        deliver(sqlite_session, secret)
    sqlite_session.rollback()
    monkeypatch.setattr(queries, "record_webhook_results", real_record)

    # The claim outlives the crashed run until its lease expires, then comes back.
    assert deliver(sqlite_session, secret).claimed == 0
    # Expire the crashed run's lease in the database rather than moving the clock: the
    # receiver checks webhook-timestamp against its real clock.
    with sqlite_session.begin():
        sqlite_session.execute(
            sa.update(WebhookEvent).values(
                lease_until=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    result = deliver(sqlite_session, secret)
    assert result.delivered == 1
    assert receiver.ids() == [eid, eid]  # a duplicate, with the same webhook-id
    assert all(r.verified for r in receiver.requests)
    assert [a.attempt for a in queries.webhook_attempts(sqlite_session, eid)] == [1]


def test_the_guard_connects_to_the_checked_address_and_keeps_the_host_name(receiver):
    connected: list[str] = []

    class Spy(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host: str, port: int, *args: Any) -> Any:
            connected.append(host)
            return await self.inner.connect_tcp(host, port, *args)

    async def post() -> int:
        backend = ssrf.GuardedBackend(allow_private=True, inner=Spy())
        async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
            response = await pool.request(
                "POST", f"http://localhost:{receiver.port}/ok"
            )
            return response.status

    assert asyncio.run(post()) == 200
    # The resolved, checked addresses (::1 may be tried first), never the name.
    assert connected[-1] == "127.0.0.1"
    assert set(connected) <= {"127.0.0.1", "::1"}
    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"
