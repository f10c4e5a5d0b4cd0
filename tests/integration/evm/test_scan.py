"""scan and confirm against a real anvil node: native coin, the three token kinds,
partial, over- and late payments, reverted transactions, failover, lagging nodes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ctrip_cli.config import ScanSettings
from ctrip_cli.db.models import Payment, ScanCursor
from tests.evm import Anvil, send_native, send_reverting_native, token_transfer
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, ScanWorld, make_world

pytestmark = pytest.mark.evm

ETH = 10**18


@pytest.fixture
def world(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> Iterator[ScanWorld]:
    w = make_world(anvil_snapshot, tokens, sqlite_url, tmp_path)
    yield w
    w.engine.dispose()


def test_scan_detects_a_native_payment_once(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1.5")
    address = world.payment(pid).address
    tx = send_native(world.anvil, PAYER, address, 3 * ETH // 2)

    first = world.scan()
    again = world.scan(from_block=first.from_block)

    p = world.payment(pid)
    assert (p.status, p.amount_received) == ("detected", 3 * ETH // 2)
    assert [(t.tx_hash, t.log_index, t.amount) for t in world.transfers(pid)] == [
        (tx, -1, 3 * ETH // 2)
    ]
    assert world.events(pid) == ["payment.detected"]
    assert first.transfers_recorded == 1
    assert first.payments_detected == 1
    assert again.transfers_recorded == 0
    assert again.payments_detected == 0


@pytest.mark.parametrize(
    ("asset", "attr", "amount", "units"),
    [
        ("DAI", "dai", "3.000000000000000001", 3 * 10**18 + 1),
        ("USDC", "usdc", "12.5", 12_500_000),
        ("USDT", "usdt", "7", 7_000_000),  # transfer() returns nothing
    ],
)
def test_scan_detects_token_payments(
    world: ScanWorld, asset: str, attr: str, amount: str, units: int
) -> None:
    world.fund_payer()
    pid = world.pay(asset, amount)
    address = world.payment(pid).address
    token_transfer(world.anvil, getattr(world.tokens, attr), PAYER, address, units)

    result = world.scan()

    p = world.payment(pid)
    assert (p.status, p.amount_received) == ("detected", units)
    (t,) = world.transfers(pid)
    assert t.token_address == getattr(world.tokens, attr)
    assert t.log_index >= 0
    assert result.payments_detected == 1


def test_scan_ignores_other_tokens_sent_to_a_deposit_address(world: ScanWorld) -> None:
    world.fund_payer()
    pid = world.pay("USDC", "1")
    token_transfer(
        world.anvil, world.tokens.dai, PAYER, world.payment(pid).address, 10**18
    )

    world.scan()

    assert world.transfers(pid) == []
    assert world.payment(pid).status == "pending"


def test_partial_payment_in_two_transfers(world: ScanWorld) -> None:
    world.fund_payer()
    pid = world.pay("USDC", "10")
    address = world.payment(pid).address
    token_transfer(world.anvil, world.tokens.usdc, PAYER, address, 4_000_000)
    world.scan()
    assert (world.payment(pid).status, world.payment(pid).amount_received) == (
        "pending",
        4_000_000,
    )

    token_transfer(world.anvil, world.tokens.usdc, PAYER, address, 6_000_000)
    world.scan()

    p = world.payment(pid)
    assert (p.status, p.amount_received) == ("detected", 10_000_000)
    assert len(world.transfers(pid)) == 2
    assert world.events(pid) == ["payment.detected"]


def test_underpayment_within_tolerance_is_detected(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH - ETH // 200)

    world.scan(ScanSettings(underpayment_tolerance_bps=100))

    assert world.payment(pid).status == "detected"


def test_overpayment_is_recorded_and_flagged(world: ScanWorld) -> None:
    from ctrip_cli.lifecycle import payment_json

    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, 2 * ETH)

    world.scan()

    p = world.payment(pid)
    assert p.status == "detected"
    assert payment_json(p)["overpaid"] is True
    assert payment_json(p)["amount_received_base_units"] == str(2 * ETH)


def test_late_payment_is_detected_and_flagged(world: ScanWorld) -> None:
    head = world.anvil.get_block("latest")
    assert head is not None  # the passes' clock follows the chain's
    world.clock = datetime.fromtimestamp(int(head["timestamp"], 16), UTC)
    pid = world.pay("ETH", "1", expires_in_s=60)
    world.scan()
    world.clock += timedelta(minutes=2)
    world.anvil.rpc("evm_increaseTime", 120)  # the chain's clock passes the deadline
    world.anvil.mine(1)
    assert world.confirm().expired == 0  # the scan has not read past it yet
    world.scan()
    assert world.confirm().expired == 1
    address = world.payment(pid).address

    send_native(world.anvil, PAYER, address, ETH // 2)
    world.scan()
    half = world.payment(pid)
    send_native(world.anvil, PAYER, address, ETH // 2)
    world.scan()

    p = world.payment(pid)
    assert (half.status, half.late) == ("expired", True)
    assert (p.status, p.late, p.amount_received) == ("detected", True, ETH)
    assert sorted(world.events(pid)) == [
        "payment.expired",
        "payment.late",
        "payment.late",
    ]


def test_reverted_native_transaction_is_ignored(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1")
    with world.session() as s, s.begin():  # a deposit "address" that always reverts
        s.execute(
            sa.update(Payment)
            .where(Payment.id == pid)
            .values(address=world.tokens.reverter)
        )
    send_reverting_native(world.anvil, PAYER, ETH, reverter=world.tokens.reverter)

    world.scan()

    assert world.transfers(pid) == []
    assert world.payment(pid).status == "pending"


def test_confirm_waits_for_depth_then_confirms(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH)
    world.scan()

    early = world.confirm()
    world.anvil.mine(2)
    late = world.confirm()

    assert (early.confirmed, early.waiting) == (0, 1)
    assert late.confirmed == 1
    assert world.payment(pid).status == "confirmed"
    assert sorted(world.events(pid)) == ["payment.confirmed", "payment.detected"]


def test_first_endpoint_dead_fails_over(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> None:
    world = make_world(
        anvil_snapshot,
        tokens,
        sqlite_url,
        tmp_path,
        rpc_urls=["http://127.0.0.1:9", anvil_snapshot.url],
    )
    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH)

    world.scan()

    assert world.payment(pid).status == "detected"
    world.engine.dispose()


def test_lagging_node_is_not_a_reorg(world: ScanWorld) -> None:
    world.scan()
    head = world.anvil.block_number()
    with world.session() as s, s.begin():
        s.execute(sa.update(ScanCursor).values(block_number=head + 50))

    result = world.scan()

    assert result.lagging is True
    assert result.reorg_rewound_to is None
    assert result.blocks_scanned == 0


def test_scan_resumes_from_the_cursor(world: ScanWorld) -> None:
    first = world.scan()
    world.anvil.mine(7)

    second = world.scan()

    assert first.to_block is not None
    assert (second.from_block, second.to_block) == (
        first.to_block + 1,
        first.to_block + 7,
    )
