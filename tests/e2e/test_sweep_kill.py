"""SIGKILL `ctrip sweep` between signing and broadcast and after broadcast, then rerun:
exactly one on-chain transaction per purpose, and every payment settles; on an L1
chain and on an OP-stack chain that charges an L1 data fee.

The crash comes from the CLI's test-only hook `CTRIP_TEST_CRASH_AT` (see cli/sweep.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests.evm import Anvil, balance_of, native_balance
from tests.evm_fixtures import TestTokens
from tests.integration.evm.test_sweep import (
    TREASURY,
    SweepWorld,
    deposit_nonce,
    make_confirmed,
    world_fixture,
)
from tests.integration.evm.test_sweep_l2 import (
    WorldFactory,
    charged,
    make_world,
    op_anvil,
    op_snapshot,
    op_tokens,
)

world = world_fixture  # the fixture, shared with test_sweep.py
__all__ = ["make_world", "op_anvil", "op_snapshot", "op_tokens"]  # fixtures, shared

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.evm,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def run_sweep(
    world: SweepWorld, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "CTRIP_DATABASE_URL": world.settings.database_url.get_secret_value(),
        "CTRIP_CHAINS_FILE": str(world.settings.chains_file),
        "CTRIP_MNEMONIC": world.settings.mnemonic.get_secret_value(),  # type: ignore[union-attr]
    }
    if crash_at:
        env["CTRIP_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "ctrip_cli", "sweep", "--chain", "local", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CRASHES = [("after_sign", "after_broadcast"), ("after_broadcast",)]


@pytest.mark.parametrize("crashes", CRASHES)
def test_killed_sweeps_never_send_twice(
    world: SweepWorld, crashes: tuple[str, ...]
) -> None:
    _killed_then_settled(world, crashes)


@pytest.mark.parametrize("crashes", CRASHES)
def test_killed_sweeps_on_an_op_stack_chain_never_send_twice(
    op_snapshot: Anvil,
    op_tokens: TestTokens,
    make_world: WorldFactory,
    crashes: tuple[str, ...],
) -> None:
    op_world = make_world(op_snapshot, op_tokens, fee_model="op-stack")
    rows = _killed_then_settled(op_world, crashes)
    for row in rows:  # the L1 fee recorded is what the chain charged
        lost, gas = charged(op_world, row)
        assert row.l1_fee_paid == lost - gas > 0
    native = next(r for r in rows if r.kind == "native")
    assert native_balance(op_world.anvil, native.from_address) == native.dust


def _killed_then_settled(world: SweepWorld, crashes: tuple[str, ...]) -> list[Any]:
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1.25")
    usdt = make_confirmed(world, "USDT", "40")
    payer = world.payer()

    for crash_at in crashes:
        killed = run_sweep(world, crash_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    for _ in range(8):
        done = run_sweep(world)
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout)
        if {world.payment(eth.id).status, world.payment(usdt.id).status} == {"settled"}:
            break
        world.anvil.mine(world.cfg.confirmations)

    assert world.statuses([eth.id, usdt.id]) == ["settled", "settled"]
    rows = world.sweep_rows()
    assert sorted(r.kind for r in rows) == [
        "native",
        "token",
        "topup",
    ]  # nothing re-signed
    # Exactly one on-chain transaction per purpose.
    assert deposit_nonce(world, eth.address) == 1
    assert deposit_nonce(world, usdt.address) == 1
    assert deposit_nonce(world, payer) == 1
    native = next(r for r in rows if r.kind == "native")
    assert native_balance(world.anvil, TREASURY) == native.amount
    assert native_balance(world.anvil, eth.address) == native.dust
    if world.cfg.fee_model == "ethereum":
        assert native.dust == 0
    assert balance_of(world.anvil, world.tokens.usdt, TREASURY) == usdt.amount
    return rows
