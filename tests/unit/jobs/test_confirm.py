"""confirm job logic on FakeChain: depth, canonical re-check, expiry, outbox events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ctrip_cli.config import ChainConfig, ScanSettings, Settings
from ctrip_cli.db.models import Payment, WebhookEvent
from ctrip_cli.jobs import confirm as confirm_job
from ctrip_cli.jobs import scan as scan_job
from ctrip_cli.testing import FakeChain
from tests.unit.jobs.test_scan import make_payment


@pytest.fixture
def cfg(settings: Settings) -> ChainConfig:
    return settings.chain("local").model_copy(
        update={"confirmations": 3, "reorg_depth_blocks": 8}
    )


@pytest.fixture
def chain(now: Any) -> FakeChain:
    # Block 9, the head, is mined at `now`.
    return FakeChain(blocks=10, start_time=int(now.timestamp()) - 9)


def run_scan(session: Any, chain: FakeChain, cfg: ChainConfig, now: Any) -> None:
    scan_job.run(session, chain, cfg=cfg, now=now, settings=ScanSettings())
    session.expunge_all()


def run_confirm(
    session: Any, chain: FakeChain, cfg: ChainConfig, now: Any
) -> confirm_job.ConfirmResult:
    result = confirm_job.run(session, chain, cfg=cfg, now=now)
    session.expunge_all()
    return result


def status_of(session: Any, pid: str) -> str:
    with session.begin():
        return str(session.get(Payment, pid).status)


def test_confirms_once_every_transfer_is_deep_enough(session, chain, cfg, now) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 600)
    chain.add_transfer(p.address, 400)
    run_scan(session, chain, cfg, now)
    chain.produce_blocks(1)  # the second transfer is 2 deep, the first 3

    waiting = run_confirm(session, chain, cfg, now)
    chain.produce_blocks(1)
    done = run_confirm(session, chain, cfg, now)

    assert (waiting.confirmed, waiting.waiting) == (0, 1)
    assert done.confirmed == 1
    assert status_of(session, p.id) == "confirmed"
    with session.begin():
        types = session.scalars(
            sa.select(WebhookEvent.type).order_by(WebhookEvent.type)
        ).all()
    assert types == ["payment.confirmed", "payment.detected"]


def test_transfer_no_longer_canonical_is_not_confirmed(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(5)
    run_scan(session, chain, cfg, now)
    chain.produce_fork(6)  # the scan has not seen it yet

    result = run_confirm(session, chain, cfg, now)

    assert (result.confirmed, result.not_canonical) == (0, 1)
    assert status_of(session, p.id) == "detected"


def test_expires_overdue_pending_payments_only(session, chain, cfg, now) -> None:
    overdue = make_payment(session, now, expires_at=now - timedelta(seconds=1))
    fresh = make_payment(session, now)
    paid = make_payment(
        session, now, status="detected", expires_at=now - timedelta(hours=1)
    )

    run_scan(session, chain, cfg, now)
    result = run_confirm(session, chain, cfg, now)

    assert result.expired == 1
    assert status_of(session, overdue.id) == "expired"
    assert status_of(session, fresh.id) == "pending"
    assert status_of(session, paid.id) == "detected"
    with session.begin():
        assert session.scalars(sa.select(WebhookEvent.type)).all() == [
            "payment.expired"
        ]


def test_expires_only_what_the_scan_read_past(session, chain, cfg, now) -> None:
    # The scan lags: its cursor block was mined 5 s before the deadline, so a payment
    # mined in time may be in the blocks it has not read yet.
    p = make_payment(session, now, expires_at=now - timedelta(seconds=1))
    scan_job.run(session, chain, cfg=cfg, now=now, settings=ScanSettings(), to_block=5)
    session.expunge_all()

    lagging = run_confirm(session, chain, cfg, now)
    run_scan(session, chain, cfg, now)
    caught_up = run_confirm(session, chain, cfg, now)

    assert (lagging.expired, caught_up.expired) == (0, 1)
    assert status_of(session, p.id) == "expired"


def test_nothing_expires_before_the_first_scan(session, chain, cfg, now) -> None:
    make_payment(session, now, expires_at=now - timedelta(days=1))
    assert run_confirm(session, chain, cfg, now).expired == 0


def test_rerun_is_a_no_op(session, chain, cfg, now) -> None:
    make_payment(session, now, expires_at=now - timedelta(seconds=1))
    run_scan(session, chain, cfg, now)
    run_confirm(session, chain, cfg, now)
    again = run_confirm(session, chain, cfg, now)
    assert (again.confirmed, again.expired) == (0, 0)


def test_transfer_rewound_while_confirm_reads_the_chain_waits(
    session, chain, cfg, now, engine
) -> None:
    # A scan on another host rewinds the counted transfer between confirm's snapshot
    # and its write: confirm must not promote the payment on the stale snapshot.
    from ctrip_cli.db import engine as db_engine

    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(5)
    run_scan(session, chain, cfg, now)
    real_block_hashes = chain.block_hashes

    def block_hashes_during_concurrent_scan(numbers: Any) -> Any:
        answer = real_block_hashes(numbers)  # still the old chain
        chain.block_hashes = real_block_hashes  # type: ignore[method-assign]
        chain.produce_fork(7)
        with db_engine.session_factory(engine)() as other:
            scan_job.run(other, chain, cfg=cfg, now=now, settings=ScanSettings())
        return answer

    chain.block_hashes = block_hashes_during_concurrent_scan  # type: ignore[method-assign]
    raced = run_confirm(session, chain, cfg, now)

    assert raced.confirmed == 0
    assert status_of(session, p.id) == "pending"


def test_shallow_dust_does_not_hold_a_paid_payment(session, chain, cfg, now) -> None:
    # Someone sends 1 base unit to the address every block: the paid part is deep.
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(3)
    for _ in range(3):
        chain.add_transfer(p.address, 1)
    run_scan(session, chain, cfg, now)

    assert run_confirm(session, chain, cfg, now).confirmed == 1
    assert status_of(session, p.id) == "confirmed"
