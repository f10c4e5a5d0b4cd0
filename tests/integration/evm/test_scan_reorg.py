"""Reorgs on a real anvil node (`anvil_reorg`): a counted transfer removed, a transfer
re-included in another block, a fork deeper than the kept window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrip_cli.errors import ReorgTooDeepError
from tests.evm import Anvil, send_native
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, ScanWorld, make_world

pytestmark = pytest.mark.evm

ETH = 10**18
# Replacement blocks must differ from the originals: an empty block mined again in the
# same second has the same hash, which would make the fork shallower than asked.
BUMP = {"from": PAYER, "to": "0x" + "99" * 20, "value": hex(1)}


@pytest.fixture
def world(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> Iterator[ScanWorld]:
    w = make_world(anvil_snapshot, tokens, sqlite_url, tmp_path)
    yield w
    w.engine.dispose()


def test_reorg_that_removes_a_counted_transfer_moves_the_payment_back(
    world: ScanWorld,
) -> None:
    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH)
    mined_in = world.anvil.block_number()
    world.scan()
    assert world.payment(pid).status == "detected"

    world.anvil.reorg(1)  # replaces the transfer's block with an empty one
    result = world.scan()

    p = world.payment(pid)
    assert result.reorg_rewound_to == mined_in - 1
    assert result.payments_reorged == 1
    assert (p.status, p.amount_received) == ("pending", 0)
    assert world.transfers(pid) == []
    assert sorted(world.events(pid)) == ["payment.detected", "payment.reorged"]


def test_reorg_that_reincludes_the_transfer_in_another_block(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1")
    address = world.payment(pid).address
    send_native(world.anvil, PAYER, address, ETH)
    mined_in = world.anvil.block_number()
    world.anvil.mine(2)
    world.scan()
    (before,) = world.transfers(pid)

    world.anvil.reorg(3, [({"from": PAYER, "to": address, "value": hex(ETH)}, 1)])
    result = world.scan()

    (after,) = world.transfers(pid)
    p = world.payment(pid)
    assert before.block_number == mined_in
    assert after.block_number == mined_in + 1
    assert after.block_hash != before.block_hash
    assert (p.status, p.amount_received) == ("detected", ETH)
    assert result.reorg_rewound_to == mined_in - 1
    assert sorted(world.events(pid)) == [
        "payment.detected",
        "payment.detected",
        "payment.reorged",
    ]


def test_confirmed_payment_losing_its_funds_moves_back(world: ScanWorld) -> None:
    pid = world.pay("ETH", "1")
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH)
    world.anvil.mine(3)
    world.scan()
    assert world.confirm().confirmed == 1

    world.anvil.reorg(4)  # no deeper than this test mined: evm_revert needs it
    world.scan()

    assert world.payment(pid).status == "pending"
    assert "payment.reorged" in world.events(pid)


def test_reorg_deeper_than_the_window_is_an_error_naming_the_fix(
    world: ScanWorld,
) -> None:
    world.anvil.mine(40)
    world.scan()
    cursor = world.anvil.block_number()

    world.anvil.reorg(30, [(BUMP, 0)])  # the window keeps 16 blocks
    with pytest.raises(ReorgTooDeepError) as info:
        world.scan()

    assert f"#{cursor:,}" in str(info.value)
    assert "--from-block" in str(info.value)


def test_rescan_from_the_named_block_recovers_from_a_deep_reorg(
    world: ScanWorld,
) -> None:
    pid = world.pay("ETH", "1")
    world.anvil.mine(30)
    send_native(world.anvil, PAYER, world.payment(pid).address, ETH)
    world.scan()
    assert world.payment(pid).status == "detected"
    world.anvil.reorg(25, [(BUMP, 0)])
    with pytest.raises(ReorgTooDeepError) as info:
        world.scan()

    world.scan(from_block=info.value.safe)
    after = world.scan()

    assert world.payment(pid).status == "pending"
    assert world.transfers(pid) == []
    assert after.reorg_rewound_to is None
