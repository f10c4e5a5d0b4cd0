"""deliver-webhooks job logic on SQLite with httpx.MockTransport and a fixed clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from ctrip_cli import lifecycle, payments
from ctrip_cli.config import Settings, WebhookSettings, load_chains
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookAttempt, WebhookEvent
from ctrip_cli.errors import ConfigError, InputError
from ctrip_cli.jobs import deliver_webhooks as job
from ctrip_cli.jobs import webhooks_admin
from ctrip_cli.webhooks import delivery
from tests.conftest import LOCAL_CHAINS_YAML, TEST_MNEMONIC_OWN

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://merchant.example/hook"
FAST_LADDER = (0.05, 0.05)


@pytest.fixture
def session(sqlite_url: str) -> Iterator[Session]:
    engine = db_engine.make_engine(sqlite_url)
    with db_engine.session_factory(engine)() as s:
        yield s
    engine.dispose()


def add_event(
    session: Session, now: datetime, *, url: str | None = URL, n: int = 1
) -> list[str]:
    with session.begin():
        return [
            queries.add_webhook_event(
                session,
                event_id=lifecycle.new_id("msg"),
                payment_id=None,
                event_type="payment.confirmed",
                url=url,
                body='{"type":"payment.confirmed"}',
                now=now,
            )
            for _ in range(n)
        ]


def webhook_settings(**overrides: Any) -> WebhookSettings:
    fields: dict[str, Any] = {
        "secrets": [SecretStr(SECRET)],
        "retry_ladder_s": FAST_LADDER,
    }
    return WebhookSettings(**(fields | overrides))


def deliver(
    session: Session,
    now: datetime,
    handler: Callable[[httpx.Request], Any],
    *,
    budget_s: float = 2.0,
    dev_chains: tuple[str, ...] = (),
    limit: int = 1_000,
    **overrides: Any,
) -> job.DeliverWebhooksResult:
    settings = webhook_settings(**overrides)
    sender = delivery.Sender(
        settings,
        keys=job.signing_keys(settings),
        clock=lambda: now,
        transport=httpx.MockTransport(handler),
    )
    return job.run(
        session,
        now=now,
        settings=settings,
        dev_chains=dev_chains,
        limit=limit,
        time_budget_s=budget_s,
        sender=sender,
        rng=random.Random(7),
    )


def event(session: Session, event_id: str) -> WebhookEvent:
    session.expire_all()
    found = session.get(WebhookEvent, event_id)
    assert found is not None
    return detached(session, [found])[0]


def attempts(session: Session, event_id: str) -> list[WebhookAttempt]:
    return detached(session, queries.webhook_attempts(session, event_id))


def detached(session: Session, rows: list[Any]) -> list[Any]:
    """Rows that keep their loaded values, and no transaction left open for the job."""
    for row in rows:
        session.expunge(row)
    session.rollback()
    return rows


def test_due_event_is_delivered_and_its_attempt_recorded(session, now):
    [eid] = add_event(session, now)
    result = deliver(session, now, lambda r: httpx.Response(200, text="thanks"))
    assert (result.claimed, result.delivered, result.retrying, result.failed) == (
        1,
        1,
        0,
        0,
    )
    ev = event(session, eid)
    assert ev.status == "delivered"
    assert ev.attempts == 1
    assert ev.lease_owner is None
    [row] = attempts(session, eid)
    assert (row.attempt, row.status_code, row.response_excerpt) == (1, 200, "thanks")
    assert row.endpoint == "https://merchant.example:443"


def test_retries_follow_the_ladder_within_the_budget_then_fail(session, now):
    [eid] = add_event(session, now)
    result = deliver(session, now, lambda r: httpx.Response(500))
    # 1 + len(FAST_LADDER) attempts: two short retries fit in the budget.
    assert (result.claimed, result.retrying, result.failed) == (3, 2, 1)
    ev = event(session, eid)
    assert ev.status == "failed"
    assert ev.attempts == 3
    assert ev.last_status_code == 500
    assert [a.attempt for a in attempts(session, eid)] == [1, 2, 3]


def test_a_flaky_endpoint_succeeds_on_the_short_retry_in_the_same_run(session, now):
    [eid] = add_event(session, now)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["webhook-id"])
        return httpx.Response(500 if len(calls) == 1 else 200)

    result = deliver(session, now, handler)
    assert (result.delivered, result.retrying) == (1, 1)
    assert calls == [eid, eid]  # same webhook-id on the retry
    assert event(session, eid).status == "delivered"


def test_a_long_retry_is_left_for_a_later_run(session, now):
    [eid] = add_event(session, now)
    result = deliver(session, now, lambda r: httpx.Response(503), retry_ladder_s=(300,))
    assert (result.claimed, result.retrying) == (1, 1)
    ev = event(session, eid)
    assert ev.status == "pending"
    assert timedelta(seconds=255) <= ev.next_attempt_at - now <= timedelta(seconds=346)


def test_retry_after_is_honoured(session, now):
    [eid] = add_event(session, now)
    deliver(
        session, now, lambda r: httpx.Response(429, headers={"retry-after": "3600"})
    )
    assert event(session, eid).next_attempt_at - now >= timedelta(seconds=3600)


def test_410_gone_stops_retrying(session, now):
    [eid] = add_event(session, now)
    result = deliver(session, now, lambda r: httpx.Response(410))
    assert (result.claimed, result.failed, result.retrying) == (1, 1, 0)
    assert event(session, eid).status == "failed"


def test_event_without_any_url_is_skipped_and_the_default_url_is_used(session, now):
    [no_url] = add_event(session, now, url=None)
    result = deliver(session, now, lambda r: httpx.Response(200))
    assert (result.no_url, result.delivered) == (1, 0)
    assert event(session, no_url).status == "skipped"

    seen: list[str] = []
    with session.begin():
        webhooks_admin.retry(session, event_id=no_url, now=now)
    result = deliver(
        session,
        now,
        lambda r: seen.append(str(r.url)) or httpx.Response(200),
        default_url="https://default.example/in",
    )
    assert result.delivered == 1
    assert seen == ["https://default.example/in"]


def test_plain_http_is_refused_off_dev_chains_unless_allowed(
    session, now, sqlite_url, tmp_path
):
    chains = tmp_path / "chains.yaml"
    chains.write_text(LOCAL_CHAINS_YAML)
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        chains_file=chains,
        chains=load_chains(chains, {}),
        mnemonic=SecretStr(TEST_MNEMONIC_OWN),
    )
    with session.begin():
        for chain in ("ethereum", "local"):
            p = payments.create_payment(
                session,
                settings,
                chain=chain,
                asset="ETH",
                amount="1",
                now=now,
                webhook_url="http://merchant.example/hook",
            )
            payment = queries.get_payment(session, p["id"])
            assert payment is not None
            lifecycle.emit(session, payment, "payment.detected", now=now)
    sent: list[str] = []
    result = deliver(
        session,
        now,
        lambda r: sent.append(str(r.url)) or httpx.Response(200),
        dev_chains=("local",),
        retry_ladder_s=(300,),
    )
    assert (result.delivered, result.retrying) == (1, 1)
    assert len(sent) == 1
    [refused] = detached(
        session, queries.list_webhook_events(session, status="pending", limit=9)
    )
    assert refused.last_error is not None
    assert "plain http is refused" in refused.last_error
    result = deliver(
        session,
        now + timedelta(hours=1),
        lambda r: httpx.Response(200),
        require_https=False,
    )
    assert result.delivered == 1


def test_claims_are_limited_and_leased_events_are_left_alone(session, now):
    ids = add_event(session, now, n=5)
    with session.begin():
        taken = queries.claim_due_events(
            session,
            now=now,
            limit=2,
            owner="run_other",
            lease_until=now + timedelta(minutes=5),
        )
    result = deliver(session, now, lambda r: httpx.Response(200), limit=2)
    assert (result.claimed, result.delivered) == (2, 2)
    pending = detached(
        session, queries.list_webhook_events(session, status="pending", limit=9)
    )
    # The two events another run holds stay pending, untouched.
    assert {e.id for e in taken} <= {e.id for e in pending}
    assert len(pending) == 3
    assert {e.lease_owner for e in pending} == {"run_other", None}
    assert {e.id for e in pending} <= set(ids)


def test_an_expired_lease_from_a_crashed_run_comes_back(session, now):
    [eid] = add_event(session, now)
    with session.begin():
        queries.claim_due_events(
            session,
            now=now,
            limit=1,
            owner="run_crashed",
            lease_until=now + timedelta(seconds=60),
        )
    assert deliver(session, now, lambda r: httpx.Response(200)).claimed == 0
    assert (
        deliver(
            session, now + timedelta(seconds=61), lambda r: httpx.Response(200)
        ).delivered
        == 1
    )
    assert event(session, eid).status == "delivered"


def test_a_hanging_endpoint_cannot_hold_the_pass_past_its_budget(session, now):
    add_event(session, now, n=3)

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(600)
        return httpx.Response(200)

    result = deliver(session, now, hang, budget_s=1.0, timeout_s=30.0)
    assert result.claimed == 3
    assert result.retrying == 3
    assert result.elapsed_s < 10  # a generous bound: the point is that it returns
    errors = {
        a.error
        for a in detached(session, list(session.scalars(sa.select(WebhookAttempt))))
    }
    assert len(errors) == 1
    assert next(iter(errors)).startswith("no complete response within")


def test_queued_events_the_budget_never_reached_are_released(session, now):
    add_event(session, now, n=3)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(600)
        return httpx.Response(200)

    result = deliver(session, now, slow, budget_s=2.0, per_endpoint=1)
    assert (result.claimed, result.retrying, result.released) == (3, 1, 2)
    pending = detached(
        session, queries.list_webhook_events(session, status="pending", limit=9)
    )
    assert sorted(e.attempts for e in pending) == [0, 0, 1]
    assert all(e.lease_owner is None for e in pending)


def test_missing_secret_is_a_config_error_only_when_something_is_due(session, now):
    unsigned = WebhookSettings()
    assert job.run(session, now=now, settings=unsigned, dev_chains=()).claimed == 0
    add_event(session, now)
    with pytest.raises(ConfigError, match="CTRIP_WEBHOOK_SECRET is not set"):
        job.run(session, now=now, settings=unsigned, dev_chains=())


def test_malformed_secret_is_named_by_position_not_value():
    settings = WebhookSettings(
        secrets=[SecretStr(SECRET), SecretStr("whsec_not*base64")]
    )
    with pytest.raises(ConfigError, match=r"CTRIP_WEBHOOK_SECRET\[1\]") as err:
        job.signing_keys(settings)
    assert "not*base64" not in str(err.value)


def test_retry_requeues_failed_events_and_keeps_their_history(session, now):
    [eid] = add_event(session, now)
    deliver(session, now, lambda r: httpx.Response(410))
    with session.begin():
        result = webhooks_admin.retry(session, event_id=None, all_failed=True, now=now)
    assert result.ids == [eid]
    ev = event(session, eid)
    assert (ev.status, ev.attempts, ev.attempts_in_round) == ("pending", 1, 0)
    deliver(session, now, lambda r: httpx.Response(200))
    assert [a.status_code for a in attempts(session, eid)] == [410, 200]


def test_retry_refuses_unknown_ids_and_ambiguous_requests(session, now):
    with pytest.raises(InputError, match="msg_nope"):
        webhooks_admin.retry(session, event_id="msg_nope", now=now)
    with pytest.raises(InputError):
        webhooks_admin.retry(session, event_id=None, now=now)
    with pytest.raises(InputError):
        webhooks_admin.retry(session, event_id="msg_x", all_failed=True, now=now)


def test_list_shows_urls_without_credentials_or_query(session, now):
    add_event(session, now, url="https://user:pw@merchant.example/hook?token=abc")
    [row] = webhooks_admin.list_events(session, status="pending", limit=5)
    assert row["url"] == "https://merchant.example/hook?…"
    with pytest.raises(InputError, match="bogus"):
        webhooks_admin.list_events(session, status="bogus", limit=5)


def test_outbox_summary_counts_depth_due_retrying_failed_and_oldest_age(session, now):
    add_event(session, now, n=2)
    [later] = add_event(session, now + timedelta(minutes=10))
    [gone] = add_event(session, now)
    with session.begin():
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == gone)
            .values(status="failed")
        )
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == later)
            .values(attempts_in_round=1)
        )
    summary = queries.outbox_summary(session, now + timedelta(seconds=90))
    assert summary == {
        "pending": 3,
        "due": 2,
        "retrying": 1,
        "failed": 1,
        "skipped": 0,
        "delivered": 0,
        "oldest_due_age_s": 90,
    }


def test_retry_all_skipped_requeues_events_that_had_no_url(session, now):
    [eid] = add_event(session, now, url=None)
    assert deliver(session, now, lambda r: httpx.Response(200)).no_url == 1
    with session.begin():
        result = webhooks_admin.retry(session, event_id=None, all_skipped=True, now=now)
    assert result.ids == [eid]
    assert event(session, eid).status == "pending"


def test_the_pass_stops_once_its_limit_is_claimed(session, now):
    add_event(session, now, n=3)
    result = deliver(session, now, lambda r: httpx.Response(500), limit=1, budget_s=30)
    # The 0.05 s retry is due within the budget, but the limit is spent.
    assert (result.claimed, result.retrying) == (1, 1)
    assert result.elapsed_s < 10


def test_a_url_httpx_rejects_is_a_failed_attempt_not_a_failed_pass(session, now):
    # A zero-width space: httpx would raise InvalidURL; the URL check refuses it first.
    [bad] = add_event(session, now, url="https://a\u200bb.example/hook")
    [good] = add_event(session, now)
    result = deliver(session, now, lambda r: httpx.Response(200), retry_ladder_s=(300,))
    assert (result.delivered, result.retrying) == (1, 1)
    assert event(session, good).status == "delivered"
    error = event(session, bad).last_error or ""
    assert error == "refused: contains spaces, control or invisible characters"


@pytest.mark.parametrize(
    ("url", "problem", "shown"),
    [
        (
            "https://u:pw@merchant.example:99999/hook?t=1",
            "port '99999' is not a number from 1 to 65535",
            "https://merchant.example:99999/hook?…",
        ),
        ("https://u:pw@[::1/hook", "not a valid URL", "https://[::1/hook"),
    ],
)
def test_a_malformed_url_is_refused_as_an_attempt(session, now, url, problem, shown):
    [eid] = add_event(session, now, url=url)
    result = deliver(session, now, lambda r: httpx.Response(200), retry_ladder_s=(300,))
    assert result.retrying == 1
    assert event(session, eid).last_error == f"refused: {problem}"
    [listed] = webhooks_admin.list_events(session, status=None, limit=5)
    assert listed["url"] == shown
