"""SIGKILL `ctrip sweep` between signing and broadcast and after broadcast, then rerun:
exactly one on-chain transaction per purpose, and every payment settles.

The crash comes from the CLI's test-only hook `CTRIP_TEST_CRASH_AT` (see cli/sweep.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.evm import balance_of, native_balance
from tests.integration.evm.test_sweep import (
    TREASURY,
    SweepWorld,
    deposit_nonce,
    make_confirmed,
    world_fixture,
)

world = world_fixture  # the fixture, shared with test_sweep.py

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


@pytest.mark.parametrize(
    "crashes", [("after_sign", "after_broadcast"), ("after_broadcast",)]
)
def test_killed_sweeps_never_send_twice(
    world: SweepWorld, crashes: tuple[str, ...]
) -> None:
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
    assert native_balance(world.anvil, eth.address) == 0
    assert balance_of(world.anvil, world.tokens.usdt, TREASURY) == usdt.amount
