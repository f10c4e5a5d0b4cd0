"""Claiming on real PostgreSQL: SKIP LOCKED claims are disjoint, and two concurrent
deliver-webhooks runs never send the same attempt twice."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli import lifecycle
from ctrip_cli.config import WebhookSettings
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookAttempt, WebhookEvent
from ctrip_cli.jobs import deliver_webhooks as job
from tests.integration.webhooks.receiver import running

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = db_engine.make_engine(pg_url)
    yield engine
    engine.dispose()


def add_events(engine: sa.Engine, url: str, n: int, now: datetime) -> list[str]:
    with db_engine.session_factory(engine)() as session, session.begin():
        return [
            queries.add_webhook_event(
                session,
                event_id=lifecycle.new_id("msg"),
                payment_id=None,
                event_type="payment.confirmed",
                url=url,
                body=json.dumps({"n": i}),
                now=now,
            )
            for i in range(n)
        ]


def test_skip_locked_claims_are_disjoint(pg_engine):
    now = datetime.now(UTC)
    ids = add_events(pg_engine, "https://merchant.example/hook", 10, now)
    factory = db_engine.session_factory(pg_engine)
    lease = now + timedelta(minutes=5)
    with factory() as a, factory() as b:
        a.begin()
        first = queries.claim_due_events(
            a, now=now, limit=4, owner="run_a", lease_until=lease
        )
        # A has not committed: its rows are locked, and B skips them instead of waiting.
        with b.begin():
            second = queries.claim_due_events(
                b, now=now, limit=10, owner="run_b", lease_until=lease
            )
        a.commit()
    assert len(first) == 4
    assert len(second) == 6
    assert {e.id for e in first} | {e.id for e in second} == set(ids)
    with factory() as c, c.begin():
        assert (
            queries.claim_due_events(
                c, now=now, limit=10, owner="run_c", lease_until=lease
            )
            == []
        )


def test_two_concurrent_runs_never_send_the_same_attempt_twice(pg_engine):
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    settings = WebhookSettings(
        secrets=[SecretStr(secret)],
        allow_private=True,
        require_https=False,
        max_in_flight=8,
        per_endpoint=8,
    )
    with running(secret, slow_s=0.02) as receiver:
        ids = add_events(pg_engine, receiver.url("/slow"), 150, datetime.now(UTC))
        results: list[job.DeliverWebhooksResult] = []

        def one_run() -> None:
            with db_engine.session_factory(pg_engine)() as session:
                results.append(
                    job.run(
                        session,
                        now=datetime.now(UTC),
                        settings=settings,
                        dev_chains=(),
                        time_budget_s=60,
                    )
                )

        runs = [threading.Thread(target=one_run) for _ in range(2)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()

    assert len(results) == 2
    assert sum(r.claimed for r in results) == 150
    assert sum(r.delivered for r in results) == 150
    assert all(r.claimed > 0 for r in results)  # both runs did share the work
    assert Counter(receiver.ids()) == Counter(ids)  # each id exactly once
    with db_engine.session_factory(pg_engine)() as session:
        per_event = Counter(session.scalars(sa.select(WebhookAttempt.event_id)))
        statuses = set(session.scalars(sa.select(WebhookEvent.status)))
    assert per_event == Counter(ids)
    assert statuses == {"delivered"}
