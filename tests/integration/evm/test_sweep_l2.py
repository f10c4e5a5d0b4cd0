"""`sweep` where a transaction costs more than gas × price, on real anvil nodes: an
OP-stack chain (`anvil --network optimism`, L1Block fee slots set) charging an L1 data
fee, a contract treasury on both kinds of chain, chain minimum fees, the Arbitrum
gas model, and a sweep through a limited endpoint.

What the chain charged is measured from balances at the block before and the block of
each transaction (anvil keeps their state), never taken from ctrip's own numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ctrip_cli.chain import opstack
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import Settings
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import SweepTransaction
from ctrip_cli.jobs.sweep import fees
from scripts.emulator import Emulator
from tests.evm import (
    Anvil,
    balance_of,
    deploy_contract,
    deploy_reverter,
    deploy_token,
    get_receipt,
    native_balance,
)
from tests.evm_fixtures import TestTokens
from tests.integration.evm.test_sweep import (
    TREASURY,
    SweepWorld,
    chains_yaml,
    make_confirmed,
)

pytestmark = [
    pytest.mark.evm,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

# The L1 fee parameters of the issue this was built for: a plain transfer pays
# 100 (Fjord's minimum size) × (16·1368·50 gwei + 810949·10 gwei) / 1e12 on top.
L1_BASE_FEE = 50 * 10**9
BLOB_BASE_FEE = 10 * 10**9
BASE_FEE_SCALAR = 1_368
BLOB_BASE_FEE_SCALAR = 810_949
MIN_SIZE_FEE = 920_389_000_000  # wei


def set_l1_fees(
    node: Anvil,
    *,
    l1_base_fee: int = L1_BASE_FEE,
    blob_base_fee: int = BLOB_BASE_FEE,
    base_scalar: int = BASE_FEE_SCALAR,
    blob_scalar: int = BLOB_BASE_FEE_SCALAR,
) -> None:
    """Write the L1Block predeploy's fee slots (1, 3 and 7) as the sequencer would."""
    scalars = base_scalar << (8 * 12) | blob_scalar << (8 * 8)  # bytes 16-20, 20-24
    for slot, value in ((1, l1_base_fee), (3, scalars), (7, blob_base_fee)):
        node.rpc(
            "anvil_setStorageAt",
            opstack.L1_BLOCK,
            hex(slot),
            "0x" + value.to_bytes(32, "big").hex(),
        )


def deploy_test_tokens(node: Anvil) -> TestTokens:
    return TestTokens(
        usdc=deploy_token(node, "standard", decimals=6, symbol="USDC"),
        dai=deploy_token(node, "standard", decimals=18, symbol="DAI"),
        usdt=deploy_token(node, "noreturn", decimals=6, symbol="USDT"),
        reverter=deploy_reverter(node),
    )


@pytest.fixture(scope="module")
def op_anvil() -> Iterator[Anvil]:
    """An OP-stack anvil charging an L1 data fee, with its own tokens deployed."""
    node = Anvil(extra_args=("--network", "optimism"))
    try:
        set_l1_fees(node)
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def op_tokens(op_anvil: Anvil) -> TestTokens:
    return deploy_test_tokens(op_anvil)


@pytest.fixture
def op_snapshot(op_anvil: Anvil) -> Iterator[Anvil]:
    snap = op_anvil.snapshot()
    try:
        yield op_anvil
    finally:
        op_anvil.set_automine(True)
        assert op_anvil.revert(snap)


WorldFactory = Callable[..., SweepWorld]


@pytest.fixture
def make_world(
    make_settings: Callable[..., Settings], db_url: str, now: datetime
) -> Iterator[WorldFactory]:
    engines: list[sa.Engine] = []

    def build(node: Anvil, tokens: TestTokens, **yaml: Any) -> SweepWorld:
        settings = make_settings(chains_yaml=chains_yaml(node, tokens, **yaml))
        engine = db_engine.make_engine(db_url)
        engines.append(engine)
        return SweepWorld(node, tokens, settings, engine, now)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def op_world(
    op_snapshot: Anvil, op_tokens: TestTokens, make_world: WorldFactory
) -> SweepWorld:
    return make_world(op_snapshot, op_tokens, fee_model="op-stack")


def charged(world: SweepWorld, row: SweepTransaction) -> tuple[int, int]:
    """(what the sender's balance lost beyond the value it sent, gas used × price)
    for a mined row, measured on chain."""
    rc = get_receipt(world.anvil, row.tx_hash)
    assert rc is not None
    block = int(rc["blockNumber"], 16)
    before = native_balance(world.anvil, row.from_address, block - 1)
    after = native_balance(world.anvil, row.from_address, block)
    sent = 0 if row.token_address else row.amount
    gas = int(rc["gasUsed"], 16) * int(rc["effectiveGasPrice"], 16)
    return before - after - sent, gas


def deploy_treasury(node: Anvil) -> str:
    return deploy_contract(node, "Treasury")


def treasury_received(node: Anvil, treasury: str) -> tuple[int, int]:
    """Treasury's `received()` and `deposits()` storage (slots 0 and 1)."""
    received, deposits = (
        int(node.rpc("eth_getStorageAt", treasury, hex(i), "latest"), 16)
        for i in (0, 1)
    )
    return received, deposits


# -- the chain's premise --


def test_op_stack_anvil_does_not_mine_a_sweep_without_its_l1_fee(
    op_world: SweepWorld,
) -> None:
    # What a sweep of balance − 21000 × price does on such a chain: never mined.
    key = KeyRing(op_world.settings.mnemonic).account("m/44'/60'/0'/0/90")  # type: ignore[arg-type]
    op_world.anvil.set_balance(key.address, 10**18)
    price = int(op_world.anvil.rpc("eth_gasPrice"), 16)
    raw = key.sign_transaction(
        {
            "chainId": 31337,
            "nonce": 0,
            "to": TREASURY,
            "value": 10**18 - 21_000 * price,
            "gas": 21_000,
            "gasPrice": price,
        }
    ).raw_transaction
    tx_hash = op_world.anvil.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    op_world.anvil.mine(2)
    assert get_receipt(op_world.anvil, tx_hash) is None


# -- OP stack --


def test_op_stack_native_and_token_sweeps_settle_and_record_the_l1_fee_charged(
    op_world: SweepWorld,
) -> None:
    world = op_world
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1.5")
    tokens = [
        make_confirmed(world, "USDC", "12.5"),  # 6 decimals
        make_confirmed(world, "USDT", "7"),  # transfer() returns nothing
    ]

    world.sweep_until_settled([eth.id, *(t.id for t in tokens)])

    rows = world.sweep_rows()
    assert {r.state for r in rows} == {"confirmed"}
    assert sorted(r.kind for r in rows) == [
        "native",
        "token",
        "token",
        "topup",
        "topup",
    ]
    for row in rows:  # what the chain charged, from balances, is what ctrip recorded
        lost, gas = charged(world, row)
        assert row.l1_fee_paid == lost - gas > 0, row.purpose
        assert row.fee_paid == lost
        assert row.l1_fee_paid <= row.l1_fee_reserved
    native = next(r for r in rows if r.kind == "native")
    assert native.l1_fee_paid == MIN_SIZE_FEE  # the issue's ~9.2e11 wei
    assert native_balance(world.anvil, TREASURY) == native.amount
    left = native_balance(world.anvil, eth.address)
    assert left == native.dust == native.l1_fee_reserved - native.l1_fee_paid
    assert native.amount + native.fee_paid + native.dust == eth.amount
    for t in tokens:
        assert balance_of(world.anvil, world.token(t.asset), t.address) == 0
        assert balance_of(world.anvil, world.token(t.asset), TREASURY) == t.amount


def test_op_stack_dust_stays_within_the_documented_bound(op_world: SweepWorld) -> None:
    # The bound: the reserved L1 fee (the bound at the pass's parameters plus
    # L1_FEE_MARGIN_BPS) less the fee charged; with the L1 prices unchanged, the
    # margin part of the reserve.
    p = make_confirmed(op_world, "ETH", "0.25")

    plan = op_world.sweep(dry_run=True).plan
    op_world.sweep_until_settled([p.id])

    (item,) = plan
    (row,) = op_world.sweep_rows()
    assert int(item.l1_fee_wei) == row.l1_fee_reserved
    assert int(item.dust_bound_wei) == row.l1_fee_reserved
    assert 0 < row.dust <= int(item.dust_bound_wei)
    # A plain transfer sits at Fjord's minimum size: the bound is exact, the dust is
    # the margin alone.
    margin = fees.L1_FEE_MARGIN_BPS
    assert row.l1_fee_reserved == -(-MIN_SIZE_FEE * (10_000 + margin) // 10_000)
    assert row.dust == row.l1_fee_reserved - MIN_SIZE_FEE
    assert native_balance(op_world.anvil, p.address) == row.dust


def test_op_stack_dry_run_reports_the_l1_fee(op_world: SweepWorld) -> None:
    eth = make_confirmed(op_world, "ETH", "2")
    make_confirmed(op_world, "USDC", "1")

    result = op_world.sweep(dry_run=True)

    by_kind = {i.kind: i for i in result.plan}
    assert set(by_kind) == {"native", "token", "topup"}
    for item in result.plan:
        assert 0 < int(item.l1_fee_wei) < int(item.fee_wei)
    native = by_kind["native"]
    assert int(native.amount_base_units) + int(native.fee_wei) == eth.amount
    assert op_world.sweep_rows() == []


def test_op_stack_token_top_up_covers_the_l1_fee(op_world: SweepWorld) -> None:
    op_world.fund_payer()
    p = make_confirmed(op_world, "USDT", "3")

    op_world.sweep_until_settled([p.id])

    topup, token = op_world.sweep_rows()
    assert (
        topup.amount == token.gas_limit * token.max_fee_per_gas + token.l1_fee_reserved
    )
    assert token.l1_fee_reserved > 0
    assert native_balance(op_world.anvil, p.address) == token.dust


def test_rising_l1_fee_after_signing_is_replaced_and_still_settles(
    op_world: SweepWorld,
) -> None:
    # The L1 base fee jumps after the sweep was priced: its bytes cannot pay the new
    # fee; once stuck, the replacement re-reads the L1 parameters.
    p = make_confirmed(op_world, "ETH", "1")
    op_world.anvil.set_automine(False)
    op_world.sweep()
    set_l1_fees(op_world.anvil, l1_base_fee=20 * L1_BASE_FEE)
    op_world.anvil.mine(1)
    (first,) = op_world.sweep_rows()
    assert get_receipt(op_world.anvil, first.tx_hash) is None

    later = op_world.now + timedelta(seconds=op_world.settings.sweep.stuck_after_s + 1)
    assert op_world.sweep(now=later).replaced == 1
    op_world.anvil.set_automine(True)
    for n in range(4):
        op_world.anvil.mine(op_world.cfg.confirmations)
        op_world.sweep(now=later + timedelta(seconds=n))
    assert op_world.payment(p.id).status == "settled"
    old, new = op_world.sweep_rows()
    assert (old.state, new.state) == ("replaced", "confirmed")
    assert new.l1_fee_reserved > first.l1_fee_reserved
    lost, gas = charged(op_world, new)
    assert new.l1_fee_paid == lost - gas
    assert new.amount + new.fee_paid + new.dust == p.amount


def test_status_budgets_the_gas_payer_for_l1_fees(op_world: SweepWorld) -> None:
    from ctrip_cli.cli import status_probe

    chains = {"local": op_world.cfg}
    endpoints = status_probe.probe_all(chains, timeout_s=5)
    op_world.fund_payer()

    (payer,) = status_probe.gas_payers(op_world.settings, chains, endpoints).values()

    params = opstack.L1FeeParams(
        L1_BASE_FEE, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_BASE_FEE_SCALAR
    )
    assert payer.l1_fee_wei == fees.token_sweep_l1_fee_wei(params, 31337)
    assert payer.l1_fee_wei >= 2 * MIN_SIZE_FEE  # a top-up and a token transfer


# -- a contract treasury, on an L1 chain and on the OP-stack chain --


@pytest.fixture(params=["ethereum", "op-stack"])
def treasury_world(
    request: pytest.FixtureRequest,
    make_world: WorldFactory,
) -> tuple[SweepWorld, str]:
    # The tokens first: deployed before the snapshot, they outlive the test.
    if request.param == "ethereum":
        tokens = request.getfixturevalue("tokens")
        node = request.getfixturevalue("anvil_snapshot")
    else:
        tokens = request.getfixturevalue("op_tokens")
        node = request.getfixturevalue("op_snapshot")
    treasury = deploy_treasury(node)
    world = make_world(node, tokens, treasury=treasury, fee_model=request.param)
    return world, treasury


def test_contract_treasury_receives_native_and_token_sweeps(
    treasury_world: tuple[SweepWorld, str],
) -> None:
    world, treasury = treasury_world
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1.25")
    usdc = make_confirmed(world, "USDC", "4")

    world.sweep_until_settled([eth.id, usdc.id])

    native = next(r for r in world.sweep_rows() if r.kind == "native")
    assert native.gas_limit > 21_000  # receive() writes storage and emits an event
    assert native_balance(world.anvil, treasury) == native.amount
    assert treasury_received(world.anvil, treasury) == (native.amount, 1)
    rc = get_receipt(world.anvil, native.tx_hash)
    assert rc is not None
    assert len(rc["logs"]) == 1
    assert native.amount + native.fee_paid + native.dust == eth.amount
    assert native_balance(world.anvil, eth.address) == native.dust
    if world.cfg.fee_model == "ethereum":
        assert native.dust == 0  # legacy pricing: exactly gas × price
    assert balance_of(world.anvil, world.tokens.usdc, treasury) == usdc.amount


# -- chain minimums (plain anvil: EIP-1559 market tip 1 gwei) --


def test_minimum_tip_above_the_market_tip_is_what_transactions_pay(
    anvil_snapshot: Anvil, tokens: TestTokens, make_world: WorldFactory
) -> None:
    minimum = 7 * 10**9
    world = make_world(anvil_snapshot, tokens, min_priority_fee_wei=minimum)
    market = int(anvil_snapshot.rpc("eth_maxPriorityFeePerGas"), 16)
    assert market < minimum
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1")
    usdc = make_confirmed(world, "USDC", "2")

    world.sweep_until_settled([eth.id, usdc.id])

    rows = world.sweep_rows()
    for row in rows:
        rc = get_receipt(world.anvil, row.tx_hash)
        assert rc is not None
        block = world.anvil.get_block(int(rc["blockNumber"], 16))
        assert block is not None
        tip = int(rc["effectiveGasPrice"], 16) - int(block["baseFeePerGas"], 16)
        assert tip >= minimum, row.kind
        if row.max_priority_fee_per_gas is not None:  # type 2: at the minimum
            assert row.max_priority_fee_per_gas == minimum
    assert native_balance(world.anvil, eth.address) == 0


def test_minimum_gas_price_above_the_node_price_is_what_legacy_chains_pay(
    anvil_snapshot: Anvil, tokens: TestTokens, make_world: WorldFactory
) -> None:
    minimum = 9 * 10**9
    world = make_world(
        anvil_snapshot, tokens, eip1559="false", min_gas_price_wei=minimum
    )
    assert int(anvil_snapshot.rpc("eth_gasPrice"), 16) < minimum
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1")
    usdt = make_confirmed(world, "USDT", "2")

    world.sweep_until_settled([eth.id, usdt.id])

    for row in world.sweep_rows():
        assert (row.max_fee_per_gas, row.max_priority_fee_per_gas) == (minimum, None)
        rc = get_receipt(world.anvil, row.tx_hash)
        assert rc is not None
        assert int(rc["effectiveGasPrice"], 16) == minimum
    assert native_balance(world.anvil, eth.address) == 0


# -- the Arbitrum gas model (estimates for every transaction, with a margin) --


def test_arbitrum_model_estimates_every_transaction_and_reports_its_dust(
    anvil_snapshot: Anvil, tokens: TestTokens, make_world: WorldFactory
) -> None:
    world = make_world(anvil_snapshot, tokens, fee_model="arbitrum")
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1")
    usdt = make_confirmed(world, "USDT", "5")

    plan = world.sweep(dry_run=True).plan
    world.sweep_until_settled([eth.id, usdt.id])

    margin = fees.ARBITRUM_GAS_MARGIN_BPS
    rows = {r.kind: r for r in world.sweep_rows()}
    assert rows["native"].gas_limit == 21_000 + 21_000 * margin // 10_000
    assert rows["topup"].gas_limit == 21_000 + 21_000 * margin // 10_000
    assert (
        rows["topup"].amount == rows["token"].gas_limit * rows["token"].max_fee_per_gas
    )
    native = rows["native"]
    assert native.dust > 0
    assert native_balance(world.anvil, eth.address) == native.dust
    assert native.amount + native.fee_paid + native.dust == eth.amount
    bound = next(int(i.dust_bound_wei) for i in plan if i.kind == "native")
    assert native.dust <= bound
    assert balance_of(world.anvil, world.tokens.usdt, TREASURY) == usdt.amount


# -- through a limited endpoint --


@pytest.mark.parametrize("profile", ["no-batch", "hosted"])
def test_op_stack_sweep_through_a_limited_endpoint(
    op_snapshot: Anvil,
    op_tokens: TestTokens,
    make_world: WorldFactory,
    profile: str,
) -> None:
    with Emulator(op_snapshot.url, profile) as emu:
        world = make_world(op_snapshot, op_tokens, url=emu.url, fee_model="op-stack")
        world.fund_payer()
        eth = make_confirmed(world, "ETH", "0.5")
        usdc = make_confirmed(world, "USDC", "3")

        world.sweep_until_settled([eth.id, usdc.id])

        assert emu.calls.get("eth_getStorageAt", 0) >= 4
    for row in world.sweep_rows():
        lost, gas = charged(world, row)
        assert row.l1_fee_paid == lost - gas > 0
