"""reconcile job logic on FakeChain (SQLite and PostgreSQL): money no transfer explains
is credited once (a rerun, a later reconcile and a later trace or log read of the
same money never add to it), shortfalls are recorded and resolved, a reorg below the
reconcile block is rewound like any other, and the block is chosen and checked."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli.config import ChainConfig, ScanSettings, load_chains
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Payment, ReconcileDifference, ScanCursor, Transfer
from ctrip_cli.errors import ChainError, InputError
from ctrip_cli.jobs import crediting
from ctrip_cli.jobs import reconcile as reconcile_job
from ctrip_cli.testing import FakeChain
from tests.conftest import LOCAL_CHAINS_YAML
from tests.unit.jobs.test_scan import USDC, events, make_payment, scan, status
from tests.unit.jobs.test_scan import cfg as cfg  # the same chain settings

SETTINGS = ScanSettings()


@pytest.fixture
def chain(now: datetime) -> FakeChain:
    fake = FakeChain(blocks=20, start_time=int(now.timestamp()) - 19)
    fake.traces = False  # coin forwarded by contracts stays unseen by the scan
    return fake


def reconcile(
    session: Session,
    chain: FakeChain,
    cfg: ChainConfig,
    now: datetime,
    at: int | None = None,
) -> reconcile_job.ReconcileResult:
    block = reconcile_job.pick_block(session, chain, cfg=cfg, at_block=at)
    result = reconcile_job.run(
        session, chain, cfg=cfg, now=now, settings=SETTINGS, block=block
    )
    session.expunge_all()
    return result


def differences(session: Session) -> list[tuple[str, str, int, str]]:
    stmt = sa.select(ReconcileDifference).order_by(ReconcileDifference.id)
    out = [(d.kind, d.resolution, d.amount, d.asset) for d in session.scalars(stmt)]
    session.rollback()
    return out


def credits(session: Session, pid: str) -> list[tuple[str | None, int]]:
    stmt = sa.select(Transfer.source, Transfer.amount).where(Transfer.payment_id == pid)
    out = sorted(session.execute(stmt).all(), key=lambda r: (r[0] or "", r[1]))
    session.rollback()
    return [(s, int(a)) for s, a in out]


def deepen(chain: FakeChain, cfg: ChainConfig) -> None:
    chain.produce_blocks(cfg.confirmations + 1)


def test_forwarded_coin_is_credited_once_with_its_provenance(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_internal_transfer(p.address, 1_000)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    assert status(session, p.id) == ("pending", 0, False)

    first = reconcile(session, chain, cfg, now)
    again = reconcile(session, chain, cfg, now, at=first.block)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    later = reconcile(session, chain, cfg, now)

    assert (first.inflows_credited, again.inflows_credited) == (1, 0)
    assert later.inflows_credited == 0
    assert later.block > first.block
    assert status(session, p.id) == ("detected", 1_000, False)
    assert events(session, p.id) == ["payment.detected"]
    assert credits(session, p.id) == [("balance", 1_000)]
    assert differences(session) == [("inflow", "credited", 1_000, "ETH")]
    with session.begin():
        t = session.scalars(sa.select(Transfer)).one()
        assert (t.log_index, t.block_number, t.from_block) == (-2, first.block, None)
        assert t.block_hash == first.block_hash


def test_a_later_trace_read_of_the_same_money_supersedes_the_credit(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    start = chain.head() + 1
    chain.add_internal_transfer(p.address, 1_000)
    chain.add_silent(p.address, 500)  # only ever seen in the balance
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    reconcile(session, chain, cfg, now)
    assert status(session, p.id) == ("detected", 1_500, False)

    chain.traces = True  # an endpoint with traces, and a rescan
    rescan = scan(session, chain, cfg, now, from_block=start)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    after = reconcile(session, chain, cfg, now)

    assert rescan.transfers_recorded == 1
    assert status(session, p.id) == ("detected", 1_500, False)
    assert credits(session, p.id) == [(None, 1_000), ("balance", 500)]
    assert differences(session) == [("inflow", "superseded", 1_500, "ETH")]
    assert (after.inflows_credited, after.shortfalls) == (0, 0)
    assert events(session, p.id) == ["payment.detected"]  # nothing fired twice


def test_a_token_without_transfer_logs_is_found(session, chain, cfg, now) -> None:
    p = make_payment(session, now, asset="USDC", token_address=USDC, decimals=6)
    chain.add_silent(p.address, 1_000, token=USDC)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)

    result = reconcile(session, chain, cfg, now)

    assert (result.inflows_credited, result.balances_read) == (1, 2)
    assert status(session, p.id) == ("detected", 1_000, False)
    assert differences(session) == [("inflow", "credited", 1_000, "USDC")]


def test_money_nobody_asked_for_is_recorded_open_not_credited(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now, asset="USDC", token_address=USDC, decimals=6)
    chain.add_silent(p.address, 7)  # native coin at a token payment's address
    deepen(chain, cfg)
    scan(session, chain, cfg, now)

    first = reconcile(session, chain, cfg, now)
    second = reconcile(session, chain, cfg, now)

    assert (first.inflows_open, first.inflows_credited, first.open_differences) == (
        1,
        0,
        1,
    )
    assert (second.inflows_open, second.open_differences) == (0, 1)  # seen again
    assert status(session, p.id) == ("pending", 0, False)
    assert differences(session) == [("inflow", "open", 7, "ETH")]


def test_funds_moved_out_are_a_shortfall_until_they_return(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    chain.add_silent(p.address, -400)  # a key used outside ctrip
    deepen(chain, cfg)
    scan(session, chain, cfg, now)

    found = reconcile(session, chain, cfg, now)
    chain.add_silent(p.address, 400)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    back = reconcile(session, chain, cfg, now)

    assert (found.shortfalls, found.open_differences) == (1, 1)
    assert found.differences[0].expected_base_units == "1000"
    assert found.differences[0].actual_base_units == "600"
    assert (back.resolved, back.open_differences, back.inflows_credited) == (1, 0, 0)
    assert differences(session) == [("shortfall", "resolved", 400, "ETH")]
    assert status(session, p.id) == ("detected", 1_000, False)


def test_native_internal_off_records_coin_without_crediting(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_internal_transfer(p.address, 1_000)
    deepen(chain, cfg)
    off = cfg.model_copy(update={"native_internal": "off"})
    scan(session, chain, off, now)

    result = reconcile(session, chain, off, now)

    assert (result.inflows_credited, result.inflows_open) == (0, 1)
    assert status(session, p.id) == ("pending", 0, False)


def test_a_reorg_below_the_reconcile_block_rewinds_the_credit(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_silent(p.address, 1_000, block=chain.head())
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    first = reconcile(session, chain, cfg, now)
    assert status(session, p.id) == ("detected", 1_000, False)

    # The blocks from the credit's on are replaced; the coin is still on the
    # address (FakeChain keeps balances), so the next reconcile credits it again.
    chain.produce_fork(chain.head() - first.block + 1)
    rewound = scan(session, chain, cfg, now)
    assert status(session, p.id) == ("pending", 0, False)
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    second = reconcile(session, chain, cfg, now)

    assert rewound.reorg_rewound_to is not None
    assert rewound.payments_reorged == 1
    assert (second.reorged, second.inflows_credited) == (1, 1)
    assert status(session, p.id) == ("detected", 1_000, False)
    assert [d[:2] for d in differences(session)] == [
        ("inflow", "reorged"),
        ("inflow", "credited"),
    ]


def test_the_block_is_deep_scanned_and_never_before_the_last(
    session, chain, cfg, now
) -> None:
    with pytest.raises(ChainError, match="never been scanned"):
        reconcile(session, chain, cfg, now)
    scan(session, chain, cfg, now)
    head = chain.head()
    deepest = head - cfg.confirmations
    with pytest.raises(InputError, match=f"use #{deepest} or lower"):
        reconcile(session, chain, cfg, now, at=deepest + 1)
    done = reconcile(session, chain, cfg, now, at=deepest - 2)
    with pytest.raises(InputError, match="already checked"):
        reconcile(session, chain, cfg, now, at=deepest - 3)
    chain.produce_blocks(5)  # not scanned yet
    with pytest.raises(InputError, match="the scan has read up to"):
        reconcile(session, chain, cfg, now, at=head + 1)
    default = reconcile(session, chain, cfg, now)  # capped at the scan's cursor
    assert (done.block, default.block) == (deepest - 2, head)
    with session.begin():  # the scan rewound below the last reconcile's block
        session.execute(sa.update(ScanCursor).values(block_number=head - 3))
    waiting = reconcile(session, chain, cfg, now)
    assert (waiting.block, waiting.balances_read) == (None, 0)


def test_a_block_the_scan_read_differently_stops_the_pass(
    session, chain, cfg, now
) -> None:
    deepen(chain, cfg)
    scan(session, chain, cfg, now)
    chain.produce_fork(cfg.confirmations + 2)  # the scan has not rewound it yet
    with pytest.raises(ChainError, match="has not rewound yet"):
        reconcile(session, chain, cfg, now, at=chain.head() - cfg.confirmations)


@pytest.mark.postgres
def test_a_reconcile_during_a_scan_batch_waits_and_credits_nothing(
    pg_url, tmp_path, now
) -> None:
    """A scan's batch holds a transfer not yet committed when a reconcile, which
    read the balance without it, comes to credit: it waits on the payment's row (the
    transfer's foreign key locks it), then finds the money explained."""
    path = tmp_path / "chains.yaml"
    path.write_text(LOCAL_CHAINS_YAML)
    cfg = load_chains(path, {})["local"]
    engine = db_engine.make_engine(pg_url)
    factory = db_engine.session_factory(engine)
    chain = FakeChain(blocks=20, start_time=int(now.timestamp()) - 19)
    chain.traces = False
    try:
        with factory() as a, factory() as b:
            p = make_payment(a, now)
            n = chain.add_internal_transfer(p.address, 1_000)
            deepen(chain, cfg)
            scan(a, chain, cfg, now)
            row = _row(p, n, now)
            done: list[Any] = []
            with a.begin():
                a.execute(sa.insert(Transfer), [row])  # the scan's batch, uncommitted
                worker = threading.Thread(
                    target=lambda: done.append(reconcile(b, chain, cfg, now))
                )
                worker.start()
                _wait_for_a_lock_wait(a)
                ids = crediting.supersede_balance_credits(a, "local", [row])
                crediting.credit(
                    a, ids | {p.id}, now=now, tolerance_bps=0, reason="scan"
                )
            worker.join(60)
            assert not worker.is_alive()
            assert (done[0].inflows_credited, done[0].shortfalls) == (0, 0)
            assert status(a, p.id) == ("detected", 1_000, False)
            assert credits(a, p.id) == [(None, 1_000)]
    finally:
        engine.dispose()


def _wait_for_a_lock_wait(session: Session) -> None:
    """Until another backend waits for a row lock (bounded: 30 s)."""
    admin = sa.create_engine(session.get_bind().url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for _ in range(600):
                waiting = conn.execute(
                    sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                ).scalar()
                if waiting:
                    return
                time.sleep(0.05)
    finally:
        admin.dispose()
    raise AssertionError("the reconcile never waited for the scan's batch")


def _row(p: Payment, n: Any, now: datetime) -> dict[str, Any]:
    return {
        "chain": "local",
        "tx_hash": n.tx_hash,
        "log_index": n.log_index,
        "block_number": n.block_number,
        "block_hash": n.block_hash,
        "from_address": n.from_address,
        "to_address": p.address,
        "token_address": None,
        "amount": n.amount,
        "payment_id": p.id,
        "created_at": now,
    }
