"""The invariant checker is not vacuous: on a settled world it finds nothing, and each
kind of damage a bug could do (double count, phantom transfer, lost payment, double
sweep, an unstable webhook id, a leaked secret) is reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from scripts.chaos import invariants, secrets
from scripts.chaos.settle import settle
from scripts.chaos.world import MNEMONIC, TREASURY, World
from tests.evm import send_native

pytestmark = [pytest.mark.chaos, pytest.mark.evm, pytest.mark.postgres]


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    w = World.start(tmp_path, seed=11)
    try:
        for payment in w.create_payments(3):
            w.send(
                payment["asset"], payment["address"], int(payment["amount_base_units"])
            )
        assert settle(w) == []
        yield w
    finally:
        w.stop()


def _tamper(world: World, sql: str, **params: object) -> None:
    engine = world.engine()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


DAMAGE = [
    (
        "UPDATE payments SET amount_received = amount_received * 2",
        "UPDATE payments SET amount_received = amount_received / 2",
        "amount_received",
    ),
    (
        "UPDATE payments SET status = 'pending' WHERE status = 'settled'",
        "UPDATE payments SET status = 'settled' WHERE status = 'pending'",
        "lost?",
    ),
    (
        "UPDATE transfers SET block_hash = '0x" + "ab" * 32 + "'",
        None,
        "stale block",
    ),
    (  # settled short (issue 13, case 1): less than asked reached the treasury
        "UPDATE payments SET amount_swept = amount_swept / 2 WHERE status = 'settled'",
        "UPDATE payments SET amount_swept = amount_received WHERE status = 'settled'",
        "swept",
    ),
    (
        "UPDATE webhook_events SET status = 'pending'",
        "UPDATE webhook_events SET status = 'delivered'",
        "not delivered",
    ),
]


def test_checker_passes_a_settled_world_and_reports_every_damage(world):
    # One world for every case: building and settling it is the expensive part.
    assert invariants.check(world) == []
    assert secrets.check(world) == []
    settled = world.query("SELECT count(*) FROM payments WHERE status = 'settled'")
    assert settled[0][0] == 3
    for damage, undo, needle in DAMAGE:
        _damage_is_reported(world, damage, undo, needle)
    _unstable_webhook_id_is_reported(world)
    _leaked_secret_is_reported(world)
    _unrecorded_transfer_out_of_a_deposit_is_reported(world)
    _stranded_money_is_reported(world)


def _damage_is_reported(
    world: World, damage: str, undo: str | None, needle: str
) -> None:
    backup = world.query("SELECT id, block_hash FROM transfers")
    _tamper(world, damage)
    try:
        problems = invariants.check(world)
        assert any(needle in p for p in problems), (damage, problems)
    finally:
        if undo:
            _tamper(world, undo)
        for row_id, block_hash in backup:
            _tamper(
                world,
                "UPDATE transfers SET block_hash = :h WHERE id = :i",
                h=block_hash,
                i=row_id,
            )
    assert invariants.check(world) == []


def _unstable_webhook_id_is_reported(world: World) -> None:
    event_id = next(iter(world.receiver.seen))
    world.receiver.seen[event_id].add("payment.confirmed:pay_other")
    try:
        assert any("carried" in p for p in invariants.check(world))
    finally:
        world.receiver.seen[event_id].discard("payment.confirmed:pay_other")


def _leaked_secret_is_reported(world: World) -> None:
    _tamper(
        world,
        "UPDATE payments SET reference = :m WHERE id = (SELECT min(id) FROM payments)",
        m=MNEMONIC,
    )
    try:
        assert any(
            "mnemonic stored in table payments" in p for p in secrets.check(world)
        )
    finally:
        _tamper(world, "UPDATE payments SET reference = NULL")


def _unrecorded_transfer_out_of_a_deposit_is_reported(world: World) -> None:
    """What a second, unrecorded sweep looks like on chain."""
    (address,) = world.query("SELECT address FROM payments LIMIT 1")[0]
    anvil = world.anvil
    snap = anvil.snapshot()
    try:
        anvil.set_balance(address, 10**18)
        anvil.rpc("anvil_impersonateAccount", address)
        send_native(anvil, address, TREASURY, 10**17)
        problems = invariants.check(world)
        assert any("never recorded" in p for p in problems), problems
        assert any("treasury ETH" in p for p in problems), problems
    finally:
        anvil.rpc("anvil_stopImpersonatingAccount", address)
        assert anvil.revert(snap)
    assert invariants.check(world) == []


def _stranded_money_is_reported(world: World) -> None:
    """Money on a deposit address the ledger does not know it owes (issue 13, case 2:
    a second payment recorded but never swept looks the same on chain)."""
    address, asset = world.query("SELECT address, asset FROM payments LIMIT 1")[0]
    snap = world.anvil.snapshot()
    try:
        world.send(asset, address, 10**4)
        problems = invariants.check(world)
        assert any(f"deposit {address} holds" in p for p in problems), problems
    finally:
        assert world.anvil.revert(snap)
    assert invariants.check(world) == []
