"""scan job logic on FakeChain (SQLite and PostgreSQL): attribution, crediting, late and
over-payments, reorgs, lagging nodes, the starting block and the recipient filter."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli.config import ChainConfig, ScanSettings, Settings
from ctrip_cli.db import scan_queries as sq
from ctrip_cli.db.models import (
    DepositAddress,
    Payment,
    PaymentStatusChange,
    Transfer,
    WebhookEvent,
)
from ctrip_cli.errors import ReorgTooDeepError
from ctrip_cli.jobs import scan as scan_job
from ctrip_cli.testing import FakeChain

USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DAI = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
_ids = itertools.count(1)


def make_payment(session: Session, now: datetime, **overrides: Any) -> Payment:
    """A payment row; `address` defaults to a fresh one, amounts in base units."""
    i = next(_ids)
    address = overrides.pop("address", "0x" + f"{i:040x}")
    fields: dict[str, Any] = {
        "id": f"pay_test{i:028d}",
        "chain": "local",
        "asset": "ETH",
        "token_address": None,
        "decimals": 18,
        "address": address,
        "derivation_index": i,
        "amount": 1_000,
        "amount_received": 0,
        "status": "pending",
        "late": False,
        "created_at": now - timedelta(minutes=5),
        "expires_at": now + timedelta(hours=1),
        "updated_at": now,
    }
    fields.update(overrides)
    with session.begin():
        stmt = sa.select(DepositAddress.derivation_index).where(
            DepositAddress.address == address
        )
        known = session.scalar(stmt)
        if known is None:
            session.add(
                DepositAddress(derivation_index=i, address=address, created_at=now)
            )
            session.flush()
        else:
            fields["derivation_index"] = known
        session.add(Payment(**fields))
    session.expunge_all()
    return Payment(**fields)


@pytest.fixture
def cfg(settings: Settings) -> ChainConfig:
    return settings.chain("local").model_copy(
        update={"reorg_depth_blocks": 8, "max_block_range": 10}
    )


@pytest.fixture
def chain(now: datetime) -> FakeChain:
    # Blocks are mined around `now` (block 19 at `now`), as on a live chain.
    return FakeChain(blocks=20, start_time=int(now.timestamp()) - 19)


def scan(
    session: Session, chain: FakeChain, cfg: ChainConfig, now: datetime, **kw: Any
) -> scan_job.ScanResult:
    settings = kw.pop("settings", ScanSettings())
    result = scan_job.run(session, chain, cfg=cfg, now=now, settings=settings, **kw)
    session.expunge_all()
    return result


def status(session: Session, pid: str) -> tuple[str, int, bool]:
    p = session.get(Payment, pid)
    assert p is not None
    out = (p.status, p.amount_received, p.late)
    session.rollback()
    return out


def confirm(session: Session, pid: str) -> None:
    with session.begin():
        session.execute(
            sa.update(Payment).where(Payment.id == pid).values(status="confirmed")
        )


def events(session: Session, pid: str) -> list[str]:
    stmt = sa.select(WebhookEvent.type).where(WebhookEvent.payment_id == pid)
    out = sorted(session.scalars(stmt))
    session.rollback()
    return out


def test_detects_payment_and_commits_cursor_with_the_work(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)

    result = scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, False)
    assert events(session, p.id) == ["payment.detected"]
    assert result.to_block == chain.head()
    with session.begin():
        assert sq.get_cursor(session, "local") == (
            chain.head(),
            chain.blocks[-1].header.hash,
        )
    assert result.transfers_recorded == 1


def test_second_pass_reads_only_new_blocks(session, chain, cfg, now) -> None:
    first = scan(session, chain, cfg, now)
    chain.produce_blocks(3)

    second = scan(session, chain, cfg, now)

    assert first.to_block is not None
    assert (second.from_block, second.to_block) == (
        first.to_block + 1,
        first.to_block + 3,
    )


def test_fresh_chain_starts_reorg_depth_below_head(session, chain, cfg, now) -> None:
    result = scan(session, chain, cfg, now)
    assert result.from_block == chain.head() - cfg.reorg_depth_blocks


def test_fresh_chain_honours_start_block(session, chain, cfg, now) -> None:
    result = scan(session, chain, cfg.model_copy(update={"start_block": 3}), now)
    assert (result.from_block, result.blocks_scanned) == (3, chain.head() - 2)


def test_fresh_chain_reaches_back_to_the_oldest_open_payment(
    session, chain, cfg, now
) -> None:
    chain.produce_blocks(100)
    make_payment(session, now, created_at=now - timedelta(seconds=40))
    result = scan(session, chain, cfg.model_copy(update={"block_time_s": 1.0}), now)
    assert result.from_block == chain.head() - 41


def test_oldest_open_payment_gets_the_transfer_else_the_newest(
    session, chain, cfg, now
) -> None:
    address = "0x" + "cd" * 20
    old = make_payment(
        session, now, address=address, created_at=now - timedelta(hours=2)
    )
    new = make_payment(
        session, now, address=address, created_at=now - timedelta(hours=1)
    )
    chain.add_transfer(address, 1_000)
    scan(session, chain, cfg, now)
    confirm(session, old.id)  # no longer open: the next transfer is the newer one's
    chain.add_transfer(address, 1_000)
    scan(session, chain, cfg, now)
    confirm(session, new.id)
    chain.add_transfer(address, 7)  # nobody is open any more: the newest payment
    scan(session, chain, cfg, now)

    assert status(session, old.id) == ("confirmed", 1_000, False)
    assert status(session, new.id) == ("confirmed", 1_007, False)


def test_tokens_count_only_for_payments_in_that_token(session, chain, cfg, now) -> None:
    p = make_payment(session, now, asset="USDC", token_address=USDC, decimals=6)
    chain.add_transfer(p.address, 5_000, token=DAI)
    chain.add_transfer(p.address, 400, token=USDC)
    chain.add_transfer(p.address, 600, token=USDC)

    scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, False)
    with session.begin():
        rows = session.scalars(sa.select(Transfer.token_address)).all()
    assert rows == [USDC, USDC]


def test_partial_payment_stays_pending(session, chain, cfg, now) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 999)
    scan(session, chain, cfg, now)
    assert status(session, p.id) == ("pending", 999, False)
    assert events(session, p.id) == []


def test_underpayment_tolerance_uses_integer_math(session, chain, cfg, now) -> None:
    p = make_payment(session, now, amount=10_001)
    chain.add_transfer(p.address, 9_001)  # 10_001 - 10_001 * 1000 // 10_000 = 9_001
    scan(
        session,
        chain,
        cfg,
        now,
        settings=ScanSettings(underpayment_tolerance_bps=1_000),
    )
    assert status(session, p.id)[0] == "detected"


def test_late_funds_flag_each_arrival_then_detect(session, chain, cfg, now) -> None:
    p = make_payment(
        session, now, status="expired", expires_at=now - timedelta(minutes=1)
    )
    chain.add_transfer(p.address, 300)
    scan(session, chain, cfg, now)
    chain.add_transfer(p.address, 300)
    scan(session, chain, cfg, now)
    assert status(session, p.id) == ("expired", 600, True)
    chain.add_transfer(p.address, 400)
    scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, True)
    # Each late arrival on the expired payment tells the shortfall, then the payment
    # is detected (late).
    assert events(session, p.id) == ["payment.late"] * 3
    with session.begin():
        bodies = session.scalars(
            sa.select(WebhookEvent.body)
            .where(WebhookEvent.payment_id == p.id)
            .order_by(WebhookEvent.created_at, WebhookEvent.id)
        ).all()
    shortfalls = [json.loads(b)["data"]["shortfall_base_units"] for b in bodies]
    assert sorted(shortfalls) == ["0", "400", "700"]


def test_payment_mined_before_its_deadline_is_not_late(
    session, chain, cfg, now
) -> None:
    # Expired by a pass whose clock ran ahead of the scan: the block says it was paid
    # in time.
    p = make_payment(
        session, now, status="expired", expires_at=now + timedelta(seconds=30)
    )
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now + timedelta(minutes=5))

    assert status(session, p.id) == ("detected", 1_000, False)
    assert events(session, p.id) == ["payment.detected"]


def test_payment_mined_after_its_deadline_is_late(session, chain, cfg, now) -> None:
    # Still pending (confirm has not expired it yet), but its block is past the deadline.
    p = make_payment(session, now, expires_at=now - timedelta(seconds=30))
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, True)
    assert events(session, p.id) == ["payment.late"]


def test_expired_long_ago_is_no_longer_watched(session, chain, cfg, now) -> None:
    p = make_payment(
        session, now, status="expired", expires_at=now - timedelta(days=30)
    )
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)
    assert status(session, p.id) == ("expired", 0, False)


def test_reorg_removing_the_transfer_moves_detected_back(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(2)
    scan(session, chain, cfg, now)

    chain.produce_fork(3)
    result = scan(session, chain, cfg, now)

    assert result.reorg_rewound_to == chain.head() - 3
    assert result.payments_reorged == 1
    assert status(session, p.id) == ("pending", 0, False)
    assert events(session, p.id) == ["payment.detected", "payment.reorged"]
    with session.begin():
        assert session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 0


def test_reorg_after_the_deadline_moves_back_to_expired(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)
    chain.produce_fork(1)
    scan(session, chain, cfg, now + timedelta(hours=2))
    assert status(session, p.id)[0] == "expired"


def test_reorg_that_keeps_the_transfer_rerecords_it(session, chain, cfg, now) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)

    chain.produce_fork(2, keep_transfers=True)
    scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, False)
    with session.begin():
        (t,) = session.scalars(sa.select(Transfer)).all()
        assert t.block_hash == chain.blocks[t.block_number].header.hash


def test_confirmed_payment_that_loses_funds_warns(
    session, chain, cfg, now, caplog
) -> None:
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)
    with session.begin():
        session.execute(sa.update(Payment).values(status="confirmed"))
    chain.produce_fork(1)

    with caplog.at_level(logging.WARNING, logger="ctrip"):
        scan(session, chain, cfg, now)

    assert status(session, p.id)[0] == "pending"
    assert "was confirmed but a reorg removed its funds" in caplog.text
    with session.begin():
        history = session.scalars(sa.select(PaymentStatusChange.to_status)).all()
    assert history == ["pending"] or "pending" in history


def test_reorg_deeper_than_the_window_names_block_and_fix(
    session, chain, cfg, now
) -> None:
    scan(session, chain, cfg, now)
    head = chain.head()
    chain.produce_fork(12)

    with pytest.raises(ReorgTooDeepError) as info:
        scan(session, chain, cfg, now)

    assert f"#{head:,}" in str(info.value)
    assert f"ctrip scan --chain {cfg.name} --from-block" in str(info.value)


@pytest.mark.parametrize("moved", [2, -2, 0])
def test_a_transaction_mined_again_after_a_deep_reorg_is_credited_once(
    session, chain, cfg, now, moved
) -> None:
    """The rescan the deep-reorg error asks for finds the same transaction in another
    block (or the same number, another hash): it replaces the stale row, and the
    payment keeps its money, once."""
    p = make_payment(session, now)
    t = chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(5)
    scan(session, chain, cfg, now)
    assert status(session, p.id)[1] == 1_000
    chain.produce_fork(12)
    chain.mine_again(t, t.block_number + moved)
    with pytest.raises(ReorgTooDeepError) as info:
        scan(session, chain, cfg, now)

    scan(session, chain, cfg, now, from_block=info.value.safe)

    assert status(session, p.id) == ("detected", 1_000, False)
    with session.begin():
        rows = session.execute(
            sa.select(Transfer.block_number, Transfer.block_hash)
        ).all()
    assert rows == [
        (t.block_number + moved, chain.blocks[t.block_number + moved].header.hash)
    ]


def test_lagging_node_changes_nothing(session, chain, cfg, now) -> None:
    scan(session, chain, cfg, now)
    chain.lag_blocks = 5

    result = scan(session, chain, cfg, now)

    assert result.lagging
    assert result.reorg_rewound_to is None
    with session.begin():
        assert sq.get_cursor(session, "local") == (
            chain.head() + 5,
            chain.blocks[-1].header.hash,
        )


def test_rescan_range_is_idempotent_and_keeps_the_cursor(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    t = chain.add_transfer(p.address, 1_000)
    chain.produce_blocks(5)
    scan(session, chain, cfg, now)
    with session.begin():
        cursor = sq.get_cursor(session, "local")

    again = scan(
        session, chain, cfg, now, from_block=t.block_number, to_block=t.block_number + 1
    )

    assert again.transfers_recorded == 0
    assert status(session, p.id) == ("detected", 1_000, False)
    with session.begin():
        assert sq.get_cursor(session, "local") == cursor


def test_many_open_payments_switch_to_unfiltered_logs(session, chain, cfg, now) -> None:
    ps = [
        make_payment(session, now, asset="USDC", token_address=USDC, decimals=6)
        for _ in range(3)
    ]
    chain.add_transfer(ps[2].address, 1_000, token=USDC)
    chain.add_transfer("0x" + "ee" * 20, 5, token=USDC)  # nobody's

    tight = ScanSettings(address_chunk=1, max_filter_chunks=2)
    scan(session, chain, cfg, now, settings=tight)

    assert chain.log_queries
    assert all(q is None for q in chain.log_queries)
    assert status(session, ps[2].id) == ("detected", 1_000, False)
    with session.begin():
        assert session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 1


def test_no_native_reading_without_native_payments(session, cfg, now) -> None:
    class NoNative(FakeChain):
        def native_transfers(self, *args: Any, **kw: Any) -> Any:
            raise AssertionError(
                "native blocks read although nobody waits for the coin"
            )

    chain = NoNative(blocks=5)
    make_payment(session, now, asset="USDC", token_address=USDC, decimals=6)
    scan(session, chain, cfg, now)


def test_bulk_transfer_insert_counts_only_new_rows(session, now) -> None:
    # Above 200 rows PostgreSQL goes through COPY and a temporary table.
    rows = [
        {
            "chain": "local",
            "tx_hash": f"0x{i:064x}",
            "log_index": i % 3 - 1,
            "block_number": i,
            "block_hash": f"0x{i:064x}",
            "from_address": "0x" + "11" * 20,
            "to_address": "0x" + "22" * 20,
            "token_address": None if i % 2 else USDC,
            "amount": 10**30 + i,
            "payment_id": None,
            "created_at": now,
        }
        for i in range(250)
    ]
    with session.begin():
        first = sq.insert_transfers(session, rows)
    with session.begin():
        again = sq.insert_transfers(
            session, [*rows[:240], {**rows[0], "tx_hash": "0x" + "ff" * 32}]
        )
        stored = session.execute(
            sa.select(Transfer.amount, Transfer.created_at).where(
                Transfer.block_number == 249
            )
        ).one()

    assert (first, again) == (250, 1)
    assert stored == (10**30 + 249, now)


def test_bulk_outbox_and_history_keep_every_character(session, now) -> None:
    nasty = 'a\\tb\\\\c\tq\nr\r"é€\\N'
    p = make_payment(session, now, reference=nasty)
    events = [
        {
            "id": f"msg_{i:032d}",
            "payment_id": p.id,
            "type": "payment.detected",
            "url": f"https://example.com/hook?x={i}\t{nasty}",
            "body": '{"reference": ' + repr(nasty) + "}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for i in range(210)
    ]
    history = [
        {
            "payment_id": p.id,
            "from_status": None,
            "to_status": "pending",
            "reason": nasty,
            "at": now,
        }
    ] * 205
    with session.begin():
        sq.add_webhook_events(session, events)
        sq.add_status_changes(session, history)
    with session.begin():
        got = {
            e.id: (e.url, e.body, e.next_attempt_at)
            for e in session.scalars(sa.select(WebhookEvent))
        }
        reasons = set(session.scalars(sa.select(PaymentStatusChange.reason)))

    assert got == {e["id"]: (e["url"], e["body"], now) for e in events}
    assert reasons == {nasty}


class MovingChain(FakeChain):
    """Forks (same height, transfers kept) right after its headers were read."""

    def __init__(self, *, forks: int, where: str) -> None:
        super().__init__(blocks=20)
        self.forks, self.where = forks, where

    def _maybe_fork(self, where: str) -> None:
        if self.where == where and self.forks > 0:
            self.forks -= 1
            self.produce_fork(3, keep_transfers=True)

    def token_transfers(self, *args: Any, **kw: Any) -> Any:
        self._maybe_fork("tokens")
        return super().token_transfers(*args, **kw)

    def native_transfers(self, *args: Any, **kw: Any) -> Any:
        self._maybe_fork("native")
        return super().native_transfers(*args, **kw)


@pytest.mark.parametrize("where", ["tokens", "native"])
def test_batch_read_while_the_chain_moves_is_read_again(
    session, cfg, now, where
) -> None:
    chain = MovingChain(forks=1, where=where)
    asset = (
        {"asset": "USDC", "token_address": USDC, "decimals": 6}
        if where == "tokens"
        else {}
    )
    p = make_payment(session, now, **asset)
    chain.add_transfer(p.address, 1_000, token=USDC if where == "tokens" else None)

    scan(session, chain, cfg, now)

    assert status(session, p.id) == ("detected", 1_000, False)
    with session.begin():
        (t,) = session.scalars(sa.select(Transfer)).all()
        assert t.block_hash == chain.blocks[t.block_number].header.hash


def test_a_chain_that_keeps_moving_fails_the_pass(session, cfg, now) -> None:
    from ctrip_cli.errors import ChainError

    chain = MovingChain(forks=99, where="native")
    p = make_payment(session, now)
    chain.add_transfer(p.address, 1_000)

    with pytest.raises(ChainError, match="kept changing"):
        scan(session, chain, cfg, now)
    with session.begin():
        assert session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 0


def test_second_payment_to_a_recently_settled_address_is_recorded(
    session, chain, cfg, now
) -> None:
    recent = make_payment(
        session, now, status="settled", settled_at=now - timedelta(hours=1)
    )
    old = make_payment(
        session, now, status="settled", settled_at=now - timedelta(days=30)
    )
    chain.add_transfer(recent.address, 700)
    chain.add_transfer(old.address, 700)

    scan(session, chain, cfg, now)

    assert status(session, recent.id) == ("settled", 700, False)
    # Past the late window an address is no longer watched (its watch set would grow
    # forever); such money shows up only in a rescan.
    assert status(session, old.id) == ("settled", 0, False)


# -- native coin forwarded by contracts (trace transfers) --


def _indexes(session) -> list[tuple[str, int]]:
    rows = session.execute(sa.select(Transfer.tx_hash, Transfer.log_index)).all()
    session.rollback()
    return sorted((h, int(i)) for h, i in rows)


def test_forwarded_coin_credits_and_keys_apart_from_the_top_level(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now, amount=1_000)
    top = chain.add_transfer(p.address, 400)
    chain.add_internal_transfer(
        p.address, 600, block=top.block_number, tx_hash=top.tx_hash, position=2
    )
    result = scan(session, chain, cfg, now)
    assert status(session, p.id) == ("detected", 1_000, False)
    assert result.transfers_recorded == 2
    assert _indexes(session) == [(top.tx_hash, -1002), (top.tx_hash, -1)]
    head = chain.head()
    again = scan(session, chain, cfg, now, from_block=top.block_number, to_block=head)
    assert again.transfers_recorded == 0
    assert status(session, p.id) == ("detected", 1_000, False)


def test_a_reorg_drops_forwarded_coin_like_any_transfer(
    session, chain, cfg, now
) -> None:
    p = make_payment(session, now)
    chain.add_internal_transfer(p.address, 1_000)
    scan(session, chain, cfg, now)
    assert status(session, p.id)[0] == "detected"
    chain.produce_fork(2)
    scan(session, chain, cfg, now)
    assert status(session, p.id) == ("pending", 0, False)


def test_without_traces_forwarded_coin_is_not_seen(session, chain, cfg, now) -> None:
    chain.traces = False
    p = make_payment(session, now)
    chain.add_internal_transfer(p.address, 1_000)
    assert scan(session, chain, cfg, now).transfers_recorded == 0
    assert status(session, p.id) == ("pending", 0, False)
