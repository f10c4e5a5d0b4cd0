"""Money and time survive the round trip exactly on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from ctrip_cli import lifecycle, payments
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Payment


def test_huge_amounts_and_aware_times_round_trip(engine, settings, now):
    factory = db_engine.session_factory(engine)
    with factory() as session, session.begin():
        created = payments.create_payment(
            session, settings, chain="local", asset="ETH", amount="1", now=now
        )
        payment = session.get(Payment, created["id"])
        payment.amount = 2**255 + 12345
        payment.amount_received = 2**200 + 1
        payment.created_at = datetime(
            2026, 1, 1, 15, 0, tzinfo=timezone(timedelta(hours=3))
        )
    with factory() as session:
        again = session.scalars(select(Payment)).one()
        assert again.amount == 2**255 + 12345
        assert again.amount_received == 2**200 + 1
        assert isinstance(again.amount, int)
        assert again.created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert again.created_at.tzinfo is not None
        assert lifecycle.payment_json(again)["amount_base_units"] == str(2**255 + 12345)


def test_floats_are_refused_as_amounts(engine, settings, now):
    factory = db_engine.session_factory(engine)
    with factory() as session, session.begin():
        created = payments.create_payment(
            session, settings, chain="local", asset="ETH", amount="1", now=now
        )
        payment = session.get(Payment, created["id"])
        payment.amount = 1.5
        with pytest.raises(Exception, match="int base units"):
            session.flush()


def test_transition_writes_history_and_outbox_together(engine, settings, now):
    factory = db_engine.session_factory(engine)
    with factory() as session, session.begin():
        created = payments.create_payment(
            session,
            settings,
            chain="local",
            asset="ETH",
            amount="1",
            now=now,
            webhook_url="https://m.example/hook",
        )
        payment = session.get(Payment, created["id"])
        assert lifecycle.transition(
            session,
            payment,
            lifecycle.DETECTED,
            now=now,
            reason="test",
            event="payment.detected",
        )
        # A second transition from a stale expectation matches no row and writes nothing.
        set_committed_value(payment, "status", lifecycle.PENDING)
        assert not lifecycle.transition(
            session,
            payment,
            lifecycle.DETECTED,
            now=now,
            reason="again",
            event="payment.detected",
        )
    with factory() as session:
        detail = payments.show_payment(session, created["id"])
        assert [h["to"] for h in detail.history] == ["pending", "detected"]
        from ctrip_cli.db.models import WebhookEvent

        events = session.scalars(select(WebhookEvent)).all()
        assert [e.type for e in events] == ["payment.detected"]
        assert events[0].url == "https://m.example/hook"
        assert '"status":"detected"' in events[0].body


def test_upgrade_is_idempotent(engine):
    db_engine.upgrade(engine)
    db_engine.upgrade(engine)


@pytest.mark.parametrize("reference", ["a\x00b", "line\nbreak", "x" * 256])
def test_reference_with_control_characters_is_refused(engine, settings, now, reference):
    from ctrip_cli.errors import InputError

    factory = db_engine.session_factory(engine)
    with pytest.raises(InputError, match="--reference"), factory() as session:
        payments.create_payment(
            session,
            settings,
            chain="local",
            asset="ETH",
            amount="1",
            now=now,
            reference=reference,
        )
