"""`ctrip sweep` through the CLI on anvil: JSON shape, exit codes, dry run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ctrip_cli.db import locks
from ctrip_cli.db.models import JobRun, SweepTransaction
from tests.evm import (
    ANVIL_ACCOUNTS,
    balance_of,
    mint,
    native_balance,
    send_native,
    token_transfer,
)
from tests.integration.evm.test_sweep import (
    FUNDER,
    TREASURY,
    SweepWorld,
    chains_yaml,
    make_confirmed,
    world_fixture,
)

world = world_fixture  # the fixture, shared with test_sweep.py

pytestmark = [
    pytest.mark.evm,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

Ctrip = Callable[..., Any]
CUSTOMER = ANVIL_ACCOUNTS[2]


def _env(world: SweepWorld, **extra: str) -> dict[str, str]:
    return {"CTRIP_CHAINS_FILE": str(world.settings.chains_file), **extra}


def test_sweep_json_reports_one_object(world: SweepWorld, ctrip: Ctrip) -> None:
    make_confirmed(world, "ETH", "1")

    result = ctrip("sweep", "--chain", "local", "--json", env=_env(world))

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {k: out[k] for k in ("job", "chain", "skipped", "planned", "signed")} == {
        "job": "sweep",
        "chain": "local",
        "skipped": None,
        "planned": 1,
        "signed": 1,
    }
    for key in ("broadcast", "confirmed", "settled", "replaced", "skipped_uneconomic"):
        assert isinstance(out[key], int)
    with world.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1


def test_dry_run_prints_the_plan_and_records_no_run(
    world: SweepWorld, ctrip: Ctrip
) -> None:
    p = make_confirmed(world, "ETH", "1")

    result = ctrip("sweep", "--chain", "local", "--dry-run", env=_env(world))

    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout
    assert p.address in result.stdout
    with world.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(SweepTransaction)) == 0


def test_empty_gas_payer_exits_1_naming_it(world: SweepWorld, ctrip: Ctrip) -> None:
    make_confirmed(world, "USDC", "3")

    result = ctrip("sweep", "--chain", "local", "--json", env=_env(world))

    assert result.exit_code == 1
    assert "InsufficientFundsError" in result.stderr
    assert world.payer() in result.stderr
    failure = json.loads(result.stdout)  # --json: one object, a failure too
    assert failure["error"]["type"] == "InsufficientFundsError"
    assert world.sweep_rows() == []


def test_unset_treasury_exits_2(
    world: SweepWorld, ctrip: Ctrip, tmp_path: Path
) -> None:
    chains = tmp_path / "no-treasury.yaml"
    chains.write_text(chains_yaml(world.anvil, world.tokens, treasury=None))

    result = ctrip("sweep", "--chain", "local", env={"CTRIP_CHAINS_FILE": str(chains)})

    assert result.exit_code == 2
    assert "chains.local.treasury" in result.stderr


def test_missing_mnemonic_exits_2(world: SweepWorld, ctrip: Ctrip) -> None:
    result = ctrip("sweep", "--chain", "local", env=_env(world, CTRIP_MNEMONIC=""))

    assert result.exit_code == 2
    assert "CTRIP_MNEMONIC" in result.stderr


def test_scan_confirm_sweep_through_the_cli_to_settled(
    world: SweepWorld, ctrip: Ctrip
) -> None:
    world.fund_payer()
    env = _env(world)

    def create(asset: str, amount: str) -> dict[str, Any]:
        made = ctrip(
            "payments",
            "create",
            "--chain",
            "local",
            "--asset",
            asset,
            "--amount",
            amount,
            "--json",
            env=env,
        )
        assert made.exit_code == 0, made.output
        return dict(json.loads(made.stdout))

    eth, usdt = create("ETH", "0.5"), create("USDT", "19.99")
    send_native(world.anvil, FUNDER, eth["address"], 5 * 10**17)
    mint(world.anvil, world.tokens.usdt, CUSTOMER, 19_990_000)
    token_transfer(
        world.anvil, world.tokens.usdt, CUSTOMER, usdt["address"], 19_990_000
    )

    for _ in range(8):
        for command in ("scan", "confirm", "sweep"):
            result = ctrip(command, "--chain", "local", "--json", env=env)
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["job"] == command
        if world.statuses([eth["id"], usdt["id"]]) == ["settled", "settled"]:
            break
        world.anvil.mine(world.cfg.confirmations)

    assert world.statuses([eth["id"], usdt["id"]]) == ["settled", "settled"]
    native = next(r for r in world.sweep_rows() if r.kind == "native")
    assert (
        native_balance(world.anvil, TREASURY)
        == native.amount
        == 5 * 10**17 - native.fee_paid
    )
    assert balance_of(world.anvil, world.tokens.usdt, TREASURY) == 19_990_000
    shown = ctrip("payments", "show", usdt["id"], "--json", env=env)
    history = [h["to"] for h in json.loads(shown.stdout)["history"]]
    assert history == ["pending", "detected", "confirmed", "settled"]


def test_sweep_is_skipped_while_another_pass_holds_the_lock(
    world: SweepWorld, ctrip: Ctrip
) -> None:
    make_confirmed(world, "ETH", "1")

    with locks.try_job_lock(world.engine, "sweep", "local") as held:
        assert held
        result = ctrip("sweep", "--chain", "local", "--json", env=_env(world))

    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert (out["skipped"], out["signed"]) == ("lock held", 0)
    assert world.sweep_rows() == []
