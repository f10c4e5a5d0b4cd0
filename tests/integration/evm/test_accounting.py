"""Every base unit accounted for, on a real anvil node through the real passes: money
that reaches a deposit address is swept or reported, never stranded; `settled` means
the asked amount reached the treasury; lateness is judged by block timestamps;
zero-value and dust transfers hold nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from ctrip_cli.config import Settings
from ctrip_cli.db import engine as db_engine
from tests.evm import (
    ANVIL_ACCOUNTS,
    Anvil,
    balance_of,
    get_receipt,
    mint,
    native_balance,
    send_native,
    token_transfer,
)
from tests.evm_fixtures import TestTokens
from tests.integration.evm.flow_world import FUNDER, TREASURY, FlowWorld, chains_yaml

pytestmark = pytest.mark.evm

ETH = 10**18
USDC = 10**6
GRIEFER = ANVIL_ACCOUNTS[5]  # holds no token at all
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
both_dbs = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(name="world")
def world_fixture(
    anvil_snapshot: Anvil,
    tokens: TestTokens,
    make_settings: Callable[..., Settings],
    db_url: str,
) -> Iterator[FlowWorld]:
    settings = make_settings(chains_yaml=chains_yaml(anvil_snapshot, tokens))
    engine = db_engine.make_engine(db_url)
    world = FlowWorld(anvil_snapshot, tokens, settings, engine, clock=None)  # type: ignore[arg-type]
    world.clock = world.chain_time()
    world.scan()  # the scan's cursor starts here
    try:
        yield world
    finally:
        engine.dispose()


# -- 1. a short late payment is not settled short; the rest is not stranded ------------


@sqlite_only
def test_short_late_payment_stays_expired_until_paid_in_full(world: FlowWorld) -> None:
    p = world.pay("ETH", "1", expires_in_s=60)
    world.advance(120)
    world.scan()
    assert world.confirm().expired == 1

    world.send(p, 3 * ETH // 10)
    world.converge()

    short = world.payment(p.id)
    assert (short.status, short.late, short.amount_received) == (
        "expired",
        True,
        3 * ETH // 10,
    )
    assert world.sweeps() == []  # held for a refund: nothing settled short
    assert native_balance(world.anvil, p.address) == 3 * ETH // 10
    (late,) = [b for t, b in world.events(p.id) if t == "payment.late"]
    assert late["data"]["shortfall_base_units"] == str(7 * ETH // 10)
    assert late["received_base_units"] == str(3 * ETH // 10)

    world.send(p, 7 * ETH // 10)
    world.converge()

    paid = world.payment(p.id)
    assert (paid.status, paid.late) == ("settled", True)
    assert native_balance(world.anvil, p.address) == 0
    assert paid.amount_swept == ETH
    (sweep,) = world.sweeps("native")
    assert sweep.amount + (sweep.fee_paid or 0) == ETH
    assert world.event_types(p.id).count("payment.settled") == 1


@sqlite_only
def test_one_unit_to_an_expired_token_payment_costs_the_gas_payer_nothing(
    world: FlowWorld,
) -> None:
    world.fund_payer()
    p = world.pay("USDC", "10", expires_in_s=60)
    world.advance(120)
    world.scan()
    world.confirm()
    payer_before = native_balance(world.anvil, world.payer())

    world.send(p, 1)
    world.converge()

    assert world.payment(p.id).status == "expired"
    assert world.sweeps() == []  # no top-up, no sweep
    assert native_balance(world.anvil, world.payer()) == payer_before
    assert balance_of(world.anvil, world.tokens.usdc, p.address) == 1


# -- 2. money arriving after a payment's sweep gets a sweep of its own -------------------


@both_dbs
def test_second_payment_to_a_settled_address_is_swept(world: FlowWorld) -> None:
    world.fund_payer()
    p = world.pay("USDC", "10")
    world.send(p, 10 * USDC)
    world.converge()
    assert world.payment(p.id).status == "settled"

    world.send(p, 10 * USDC)
    world.converge()

    assert balance_of(world.anvil, world.tokens.usdc, p.address) == 0
    assert balance_of(world.anvil, world.tokens.usdc, TREASURY) == 20 * USDC
    again = world.payment(p.id)
    assert (again.status, again.amount_received, again.amount_swept) == (
        "settled",
        20 * USDC,
        20 * USDC,
    )
    assert [s.amount for s in world.sweeps("token")] == [10 * USDC, 10 * USDC]
    overpaid = [b for t, b in world.events(p.id) if t == "payment.overpaid"]
    assert [b["received_base_units"] for b in overpaid] == [str(10 * USDC)]
    assert world.event_types(p.id).count("payment.settled") == 1


@sqlite_only
def test_money_arriving_while_the_sweep_is_in_flight_is_swept(
    world: FlowWorld,
) -> None:
    p = world.pay("ETH", "1")
    world.send(p, ETH)
    world.anvil.mine(world.cfg.confirmations)
    world.scan()
    world.confirm()
    world.anvil.set_automine(False)
    world.sweep()  # signed and sent, not mined
    send_native(world.anvil, FUNDER, p.address, ETH // 2, wait=False)
    world.anvil.mine(1)
    world.anvil.set_automine(True)
    world.converge()

    assert native_balance(world.anvil, p.address) == 0
    done = world.payment(p.id)
    assert (done.status, done.amount_received, done.amount_swept) == (
        "settled",
        3 * ETH // 2,
        3 * ETH // 2,
    )
    assert len(world.sweeps("native")) == 2
    assert "payment.overpaid" in world.event_types(p.id)


# -- 3. a reorg that re-includes a swept payment still settles it -----------------------


@sqlite_only
def test_reorg_re_including_a_swept_payment_settles_it(world: FlowWorld) -> None:
    p = world.pay("ETH", "1")
    deposit = world.send(p, ETH)
    receipt = get_receipt(world.anvil, deposit)
    assert receipt is not None
    deposit_block = int(receipt["blockNumber"], 16)
    world.anvil.mine(world.cfg.confirmations)
    world.scan()
    world.confirm()
    world.sweep()  # mined at once (automine)
    (sweep,) = world.sweeps("native")
    # The deposit and the sweep are mined again in other blocks of a new branch.
    depth = world.anvil.block_number() - deposit_block + 1
    again = {"from": FUNDER, "to": p.address, "value": hex(ETH)}
    world.anvil.reorg(depth, [(again, 0), (sweep.raw_tx, 1)])
    world.anvil.mine(world.cfg.confirmations)

    world.scan()  # confirmed -> pending -> detected
    assert world.payment(p.id).status == "detected"
    world.sweep()  # the sweep's receipt is deep: recorded while the payment is detected
    world.converge()

    done = world.payment(p.id)
    assert done.status == "settled"
    assert world.event_types(p.id).count("payment.settled") == 1
    assert native_balance(world.anvil, p.address) == 0
    assert done.amount_swept == ETH
    assert len(world.sweeps("native")) == 1


# -- 4. zero-value and dust transfers hold nothing --------------------------------------


@sqlite_only
def test_griefing_transfers_do_not_hold_a_paid_payment(world: FlowWorld) -> None:
    world.fund_payer()
    send_native(world.anvil, FUNDER, GRIEFER, ETH)
    p = world.pay("USDC", "5")
    world.send(p, 5 * USDC)
    mint(world.anvil, world.tokens.usdc, GRIEFER, 100)
    for _ in range(
        6
    ):  # every block: transfer(deposit, 0), 0 ETH, 1 base unit at the head
        token_transfer(world.anvil, world.tokens.usdc, GRIEFER, p.address, 0)
        send_native(world.anvil, GRIEFER, p.address, 0)
        token_transfer(world.anvil, world.tokens.usdc, GRIEFER, p.address, 1)
        world.scan()
        world.confirm()
        world.sweep()

    done = world.payment(p.id)
    assert done.status == "settled"
    assert all(t.amount > 0 for t in world.transfers(p.id))
    assert done.amount_received == 5 * USDC + 6
    # What the first sweep did not take is late dust (below min_late_sweep_bps):
    # reported, not swept, and exactly what the address still holds.
    assert done.amount_swept >= 5 * USDC
    held = balance_of(world.anvil, world.tokens.usdc, p.address)
    assert held == done.amount_received - done.amount_swept
    assert 0 < held < 5 * USDC // 100


# -- 5. lateness by the block's timestamp -----------------------------------------------


@sqlite_only
def test_payment_mined_in_time_but_scanned_late_is_not_late(world: FlowWorld) -> None:
    p = world.pay("ETH", "1", expires_in_s=60)
    world.send(p, ETH)  # mined now, well before the deadline
    world.clock += timedelta(seconds=120)  # the passes run late; the chain did not

    lagging = world.confirm()  # the scan has not read the payment's block yet

    assert lagging.expired == 0
    assert world.payment(p.id).status == "pending"
    world.scan()
    paid = world.payment(p.id)
    assert (paid.status, paid.late) == ("detected", False)
    assert world.event_types(p.id) == ["payment.detected"]


@sqlite_only
def test_payment_mined_after_its_deadline_is_late(world: FlowWorld) -> None:
    p = world.pay("ETH", "1", expires_in_s=60)
    world.advance(120)  # the chain passes the deadline before the payment is mined
    world.send(p, ETH)
    world.scan()

    paid = world.payment(p.id)
    assert (paid.status, paid.late) == ("detected", True)
    assert world.event_types(p.id) == ["payment.late"]
