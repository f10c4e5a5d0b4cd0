"""Sweep fee models on FakeChain (fast; the anvil tests in
tests/integration/evm/test_sweep_l2.py are the real ones): an OP-stack chain's L1 fee
is reserved, recorded as paid and leaves its dust; the Arbitrum model pads every gas
estimate; replacements re-read the L1 parameters; shipped chain settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ctrip_cli.chain import opstack
from ctrip_cli.config import ChainConfig, load_chains
from ctrip_cli.errors import ConfigError
from ctrip_cli.jobs.sweep import fees
from tests.unit.jobs.test_sweep_flow import (
    ETH,
    USDC,
    cfg,
    chain,
    deposit,
    flow,
    keys,
    payment,
    rows,
    sweep,
)

__all__ = ["cfg", "chain", "flow", "keys"]  # fixtures, shared with test_sweep_flow.py

PARAMS = opstack.L1FeeParams(50 * 10**9, 10 * 10**9, 1_368, 810_949)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def op_cfg(cfg: ChainConfig) -> ChainConfig:
    return cfg.model_copy(update={"fee_model": "op-stack"})


def token_deposit(session, keys, now, chain) -> Any:
    p = deposit(
        session,
        keys,
        now,
        amount=5_000_000,
        asset="USDC",
        token_address=USDC,
        decimals=6,
    )
    chain.add_transfer(p.address, 5_000_000, token=USDC)
    return p


def test_op_stack_native_sweep_reserves_the_l1_fee_and_records_what_was_paid(
    session, chain, op_cfg, keys, settings, now, flow
) -> None:
    chain.l1_params = PARAMS
    p = deposit(session, keys, now, amount=ETH)
    chain.add_transfer(p.address, ETH)

    flow(on=op_cfg)

    (row,) = rows(session, "native")
    paid = opstack.l1_fee(PARAMS, bytes.fromhex(row.raw_tx[2:]))
    assert row.state == "confirmed"
    assert row.l1_fee_paid == paid > 0
    assert row.l1_fee_reserved == -(-paid * 15_000 // 10_000)  # at the minimum size
    assert row.fee_paid == 21_000 * row.max_fee_per_gas + paid
    assert chain.balances[p.address.lower()] == row.dust == row.l1_fee_reserved - paid
    assert row.amount + row.fee_paid + row.dust == ETH
    assert payment(session, p.id).status == "settled"


def test_op_stack_token_top_up_brings_the_l1_fee(
    session, chain, op_cfg, keys, settings, now, flow
) -> None:
    chain.l1_params = PARAMS
    chain.auto_mine = False
    token_deposit(session, keys, now, chain)

    results = flow(2, on=op_cfg)

    (topup,) = rows(session, "topup")
    (token,) = rows(session, "token")
    assert token.l1_fee_reserved > 0
    assert (
        topup.amount == token.gas_limit * token.max_fee_per_gas + token.l1_fee_reserved
    )
    assert topup.l1_fee_reserved > 0
    planned = {i.kind: i for r in results for i in r.plan}
    assert int(planned["token"].l1_fee_wei) == token.l1_fee_reserved
    assert int(planned["topup"].l1_fee_wei) == topup.l1_fee_reserved


def test_replacement_re_reads_the_l1_parameters(
    session, chain, op_cfg, keys, settings, now, flow
) -> None:
    chain.l1_params = PARAMS
    chain.auto_mine = False
    p = deposit(session, keys, now, amount=ETH)
    chain.add_transfer(p.address, ETH)
    flow(2, on=op_cfg)
    chain.mempool.clear()  # the node dropped it: the L1 fee rose past what it holds
    chain.l1_params = opstack.L1FeeParams(
        10 * PARAMS.l1_base_fee, 10 * 10**9, 1_368, 810_949
    )

    later = now + timedelta(seconds=settings.sweep.stuck_after_s + 1)
    assert sweep(session, chain, op_cfg, keys, settings, later).replaced == 1

    old, new = rows(session, "native")
    assert new.l1_fee_reserved > old.l1_fee_reserved
    reserve_old = old.gas_limit * old.max_fee_per_gas + old.l1_fee_reserved
    reserve_new = new.gas_limit * new.max_fee_per_gas + new.l1_fee_reserved
    assert new.amount + reserve_new == old.amount + reserve_old == ETH


def test_arbitrum_model_pads_every_estimate(
    session, chain, cfg, keys, settings, now, flow
) -> None:
    arb = cfg.model_copy(update={"fee_model": "arbitrum"})
    chain.auto_mine = False
    p = deposit(session, keys, now, amount=ETH)
    chain.add_transfer(p.address, ETH)
    token_deposit(session, keys, now, chain)

    results = flow(2, on=arb)

    padded = 21_000 + 21_000 * fees.ARBITRUM_GAS_MARGIN_BPS // 10_000
    (native,) = rows(session, "native")
    (topup,) = rows(session, "topup")
    (token,) = rows(session, "token")
    assert (native.gas_limit, topup.gas_limit) == (padded, padded)
    assert token.gas_limit == 50_000 + 50_000 * fees.ARBITRUM_GAS_MARGIN_BPS // 10_000
    native_plan = next(i for r in results for i in r.plan if i.kind == "native")
    assert int(native_plan.dust_bound_wei) > 0


def test_shipped_rollups_and_minimums() -> None:
    chains = load_chains(REPO / "chains.yaml", {})
    assert (chains["base"].chain_id, chains["base"].fee_model) == (8453, "op-stack")
    assert (chains["optimism"].chain_id, chains["optimism"].fee_model) == (
        10,
        "op-stack",
    )
    assert (chains["arbitrum"].chain_id, chains["arbitrum"].fee_model) == (
        42161,
        "arbitrum",
    )
    for name in ("base", "optimism", "arbitrum"):
        assert chains[name].tokens["USDC"].decimals == 6
        assert chains[name].treasury is None
    assert "USDT" not in chains["base"].tokens  # Tether issues none on Base
    assert chains["arbitrum"].tokens["USDT"].address == (
        "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9"
    )
    assert chains["polygon"].min_priority_fee_wei == 25 * 10**9
    assert chains["bsc"].min_gas_price_wei == 5 * 10**7
    assert chains["ethereum"].fee_model == "ethereum"


def test_an_unknown_fee_model_is_a_located_config_error(tmp_path: Path) -> None:
    path = tmp_path / "chains.yaml"
    path.write_text(
        "chains:\n  l2:\n    chain_id: 5\n    rpc_urls: ['http://127.0.0.1:1']\n"
        "    native: {symbol: ETH}\n    fee_model: zksync\n"
        "    min_priority_fee_wei: -1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_chains(path, {})
    problems = "\n".join(err.value.problems or [])
    assert "chains.l2.fee_model" in problems
    assert "chains.l2.min_priority_fee_wei" in problems
