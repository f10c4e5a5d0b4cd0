"""Sweep logic on FakeChain through scan, confirm and sweep: several sweeps per payment,
each part of its money exactly once; late dust not topped up; settled only when the
asked amount was swept, also when a reorg moved the payment meanwhile; expired,
underpaid money held."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli.chain.signer import DEPOSIT_PATH, KeyRing
from ctrip_cli.config import ChainConfig, ScanSettings, Settings
from ctrip_cli.db.models import (
    DepositAddress,
    Payment,
    SweepPayment,
    SweepTransaction,
    WebhookEvent,
)
from ctrip_cli.jobs import confirm as confirm_job
from ctrip_cli.jobs import scan as scan_job
from ctrip_cli.jobs import sweep as sweep_job
from ctrip_cli.testing import FakeChain
from tests.unit.jobs.test_scan import make_payment

ETH = 10**18
USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
_index = itertools.count(70_000)


@pytest.fixture
def cfg(settings: Settings) -> ChainConfig:
    return settings.chain("local")


@pytest.fixture
def keys(settings: Settings) -> KeyRing:
    assert settings.mnemonic is not None
    return KeyRing(settings.mnemonic)


@pytest.fixture
def chain(now: datetime, keys: KeyRing, settings: Settings) -> FakeChain:
    fake = FakeChain(blocks=5, start_time=int(now.timestamp()) - 4)
    fake.auto_mine = True
    fake.balances[keys.address(settings.sweep.gas_payer_path).lower()] = ETH
    return fake


@pytest.fixture
def flow(session, chain, cfg, keys, settings, now):
    def run(
        passes: int = 3, on: ChainConfig | None = None
    ) -> list[sweep_job.SweepResult]:
        """scan, confirm and sweep `passes` times (on `cfg`, or the chain `on`)."""
        c = on or cfg
        results = []
        for _ in range(passes):
            scan_job.run(session, chain, cfg=c, now=now, settings=ScanSettings())
            confirm_job.run(session, chain, cfg=c, now=now)
            results.append(sweep(session, chain, c, keys, settings, now))
            chain.produce_blocks(c.confirmations)
            session.expunge_all()
        return results

    return run


def sweep(session, chain, cfg, keys, settings, now) -> sweep_job.SweepResult:
    return sweep_job.run(
        session, chain, cfg=cfg, keys=keys, now=now, settings=settings.sweep
    )


def deposit(session: Session, keys: KeyRing, now: datetime, **fields: Any) -> Payment:
    """A payment at a deposit address the key ring derives."""
    i = next(_index)
    address = keys.address(DEPOSIT_PATH.format(index=i))
    with session.begin():
        session.add(DepositAddress(derivation_index=i, address=address, created_at=now))
    return make_payment(session, now, address=address, **fields)


def payment(session: Session, pid: str) -> Payment:
    with session.begin():
        p = session.get(Payment, pid)
        session.expunge(p)
        return p


def rows(session: Session, kind: str) -> list[SweepTransaction]:
    with session.begin():
        found = session.scalars(
            sa.select(SweepTransaction)
            .where(SweepTransaction.kind == kind)
            .order_by(SweepTransaction.id)
        ).all()
        session.expunge_all()
        return list(found)


def events(session: Session, pid: str) -> list[str]:
    with session.begin():
        return list(
            session.scalars(
                sa.select(WebhookEvent.type).where(WebhookEvent.payment_id == pid)
            )
        )


def test_money_after_settlement_gets_a_sweep_of_its_own(
    session, chain, keys, now, flow
) -> None:
    p = deposit(session, keys, now, amount=ETH)
    chain.add_transfer(p.address, ETH)
    flow()
    assert payment(session, p.id).status == "settled"

    chain.add_transfer(p.address, ETH // 2)
    flow()

    done = payment(session, p.id)
    assert (done.status, done.amount_swept) == ("settled", 3 * ETH // 2)
    assert chain.balances[p.address.lower()] == 0
    first, second = rows(session, "native")
    assert {first.state, second.state} == {"confirmed"}
    assert first.purpose != second.purpose
    with session.begin():
        links = session.execute(
            sa.select(SweepPayment.sweep_tx_id, SweepPayment.amount).order_by(
                SweepPayment.sweep_tx_id
            )
        ).all()
    assert [int(a) for _, a in links] == [ETH, ETH // 2]
    assert sorted(events(session, p.id)).count("payment.settled") == 1
    assert "payment.overpaid" in events(session, p.id)


def test_late_token_dust_is_reported_not_topped_up(
    session, chain, keys, now, flow
) -> None:
    p = deposit(
        session, keys, now, asset="USDC", token_address=USDC, decimals=6, amount=10**7
    )
    chain.add_transfer(p.address, 10**7, token=USDC)
    first = flow(4)
    assert payment(session, p.id).status == "settled", first
    topups = len(rows(session, "topup"))

    chain.add_transfer(p.address, 1, token=USDC)  # below 1 % of the amount
    results = flow()

    assert len(rows(session, "topup")) == topups
    assert len(rows(session, "token")) == 1
    assert sum(r.skipped_dust for r in results) >= 1
    assert chain.token_balances[(USDC.lower(), p.address.lower())] == 1
    assert payment(session, p.id).amount_swept == 10**7


def test_sweep_confirmed_while_a_reorg_held_the_payment_settles_it_later(
    session, chain, cfg, keys, settings, now
) -> None:
    p = deposit(session, keys, now, amount=ETH)
    chain.add_transfer(p.address, ETH)
    chain.produce_blocks(cfg.confirmations)
    scan_job.run(session, chain, cfg=cfg, now=now, settings=ScanSettings())
    confirm_job.run(session, chain, cfg=cfg, now=now)
    sweep(session, chain, cfg, keys, settings, now)  # signed, sent, mined
    with session.begin():  # what a reorg's rewind and rescan did meanwhile
        session.execute(
            sa.update(Payment).where(Payment.id == p.id).values(status="detected")
        )
    chain.produce_blocks(cfg.confirmations)

    recorded = sweep(session, chain, cfg, keys, settings, now)
    held = payment(session, p.id)
    confirm_job.run(session, chain, cfg=cfg, now=now)
    settled = sweep(session, chain, cfg, keys, settings, now)

    assert (recorded.confirmed, recorded.settled) == (1, 0)
    assert (held.status, held.amount_swept) == ("detected", ETH)
    assert settled.settled == 1
    assert payment(session, p.id).status == "settled"
    assert len(rows(session, "native")) == 1


def test_expired_underpaid_money_is_held_for_a_refund(
    session, chain, keys, now, flow
) -> None:
    p = deposit(
        session,
        keys,
        now,
        amount=ETH,
        status="expired",
        expires_at=now - timedelta(minutes=5),
    )
    chain.add_transfer(p.address, 3 * ETH // 10)

    results = flow()

    held = payment(session, p.id)
    assert (held.status, held.late, held.amount_received) == (
        "expired",
        True,
        3 * ETH // 10,
    )
    assert rows(session, "native") == []
    assert sum(r.planned for r in results) == 0
    assert chain.balances[p.address.lower()] == 3 * ETH // 10
