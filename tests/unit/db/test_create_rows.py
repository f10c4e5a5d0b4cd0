"""What `create_payment` writes, row by row, on both dialects (PostgreSQL sends the
address, payment and history rows as one statement; SQLite as three)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from ctrip_cli import payments
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import DepositAddress, Payment, PaymentStatusChange


def test_create_writes_address_payment_and_history(engine, settings, now):
    factory = db_engine.session_factory(engine)
    created = []
    for amount, extra in (
        ("1.5", {}),
        ("12.25", {"reference": "order 7", "webhook_url": "https://m.example/h"}),
    ):
        with factory() as session, session.begin():
            asset = "ETH" if not extra else "USDC"
            created.append(
                payments.create_payment(
                    session,
                    settings,
                    chain="local",
                    asset=asset,
                    amount=amount,
                    now=now,
                    expires_in_s=600,
                    **extra,
                )
            )
    keys = KeyRing.for_chain(settings.mnemonic, settings.chain("local"))
    with factory() as session:
        addresses = session.scalars(
            select(DepositAddress).order_by(DepositAddress.derivation_index)
        ).all()
        assert [(a.derivation_index, a.address, a.created_at) for a in addresses] == [
            (0, keys.deposit_address(0), now),
            (1, keys.deposit_address(1), now),
        ]
        second = session.get(Payment, created[1]["id"])
        assert second is not None
        assert (second.asset, second.decimals, second.amount) == ("USDC", 6, 12_250_000)
        assert second.token_address == settings.chain("local").tokens["USDC"].address
        assert (second.amount_received, second.amount_swept, second.late) == (
            0,
            0,
            False,
        )
        assert (second.reference, second.webhook_url) == (
            "order 7",
            "https://m.example/h",
        )
        assert second.expires_at == now + timedelta(seconds=600)
        assert (second.detected_at, second.confirmed_at, second.settled_at) == (
            None,
        ) * 3
        history = session.scalars(
            select(PaymentStatusChange).order_by(PaymentStatusChange.id)
        ).all()
        assert [
            (h.payment_id, h.from_status, h.to_status, h.reason, h.at) for h in history
        ] == [
            (created[0]["id"], None, "pending", "created", now),
            (created[1]["id"], None, "pending", "created", now),
        ]
        # What create returned is what the database now says.
        for returned in created:
            assert payments.show_payment(session, returned["id"]).payment == returned


def test_a_failed_create_leaves_no_row(engine, settings, now):
    factory = db_engine.session_factory(engine)
    with factory() as session, session.begin():
        payments.create_payment(
            session, settings, chain="local", asset="ETH", amount="1", now=now
        )
    with factory() as session:
        # The next create takes index 1, whose address a planted row already holds:
        # its whole transaction rolls back.
        keys = KeyRing.for_chain(settings.mnemonic, settings.chain("local"))
        with session.begin():
            session.execute(
                sa.insert(DepositAddress).values(
                    derivation_index=99, address=keys.deposit_address(1), created_at=now
                )
            )
    with pytest.raises(sa.exc.IntegrityError), factory() as session, session.begin():
        payments.create_payment(
            session, settings, chain="local", asset="ETH", amount="1", now=now
        )
    with factory() as session:
        assert session.scalar(select(sa.func.count()).select_from(Payment)) == 1
        assert (
            session.scalar(select(sa.func.count()).select_from(PaymentStatusChange))
            == 1
        )
