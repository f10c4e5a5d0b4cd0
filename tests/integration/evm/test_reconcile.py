"""`reconcile` on anvil: coin forwarded by contracts reaches `settled` through an
endpoint with traces (the scan finds it) and through one without any trace method
(reconcile finds it in the balances, through Multicall3 or plain batched reads);
a token payment without a Transfer log is found; funds moved out of a deposit
address by a transaction ctrip did not sign are a shortfall; a reconcile killed
mid-pass and rerun credits nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli.chain import balances, traces
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.config import TokenConfig
from ctrip_cli.db.models import ReconcileDifference, Transfer
from ctrip_cli.jobs import reconcile as reconcile_job
from ctrip_cli.jobs import status as status_job
from scripts.emulator import Emulator
from tests.conftest import REPO
from tests.evm import (
    ANVIL_ACCOUNTS,
    Anvil,
    deploy_contract,
    native_balance,
    send_native,
    send_tx,
)
from tests.integration.evm.scan_world import ScanWorld
from tests.integration.evm.test_forwarded_native import (
    TREASURY,
    _pay_four_ways,
    _sweep,
)
from tests.integration.evm.test_forwarded_native import world as world  # shared

pytestmark = pytest.mark.evm
NO_TRACES = frozenset(traces.METHODS)
FUNDER = ANVIL_ACCOUNTS[0]


@pytest.fixture
def multicall(world: ScanWorld) -> str:
    """Multicall3's ABI at its canonical address (the stand-in's runtime code)."""
    deployed = deploy_contract(world.anvil, "MulticallStandIn")
    code = world.anvil.rpc("eth_getCode", deployed, "latest")
    world.anvil.rpc("anvil_setCode", balances.MULTICALL3, code)
    return balances.MULTICALL3


def _use(world: ScanWorld, url: str, **update: Any) -> None:
    cfg = world.cfg.model_copy(update={"rpc_urls": [SecretStr(url)], **update})
    world.settings.chains["local"] = cfg


def _reconcile(world: ScanWorld) -> reconcile_job.ReconcileResult:
    client = EvmChain.open(world.cfg)
    try:
        with world.session() as s:
            block = reconcile_job.pick_block(s, client, cfg=world.cfg, at_block=None)
            return reconcile_job.run(
                s,
                client,
                cfg=world.cfg,
                now=world.clock,
                settings=world.settings.scan,
                block=block,
            )
    finally:
        client.close()


def _round(world: ScanWorld) -> reconcile_job.ReconcileResult:
    world.anvil.mine(world.cfg.confirmations)
    world.scan()
    found = _reconcile(world)
    world.confirm()
    return found


def _fund_gas_payer(world: ScanWorld) -> None:
    from ctrip_cli.chain.signer import KeyRing

    mnemonic = world.settings.mnemonic
    assert mnemonic is not None
    payer = KeyRing(mnemonic).address(world.settings.sweep.gas_payer_path)
    send_native(world.anvil, FUNDER, payer, 10**18)


def _settle(world: ScanWorld, ids: list[str]) -> list[reconcile_job.ReconcileResult]:
    """Sweep, scan, reconcile and confirm until `ids` are settled; every reconcile
    meanwhile (sweeps in flight, mined, recorded) finds no shortfall."""
    seen = []
    for _ in range(6):
        _sweep(world)
        seen.append(_round(world))
        if {world.payment(pid).status for pid in ids} == {"settled"}:
            break
    return seen


@pytest.mark.parametrize("endpoint", ["traces", "no-traces"])
def test_forwarded_coin_is_settled_with_and_without_traces(
    world: ScanWorld, multicall: str, endpoint: str
) -> None:
    paid = _pay_four_ways(world)
    missing = NO_TRACES if endpoint == "no-traces" else frozenset()
    with Emulator(world.anvil.url, "geth", missing_methods=missing) as emu:
        _use(world, emu.url)
        first = _round(world)
        before = native_balance(world.anvil, TREASURY)
        ids = [pid for pid, wei in paid.items() if wei]
        later = _settle(world, ids)
        calls = emu.snapshot()["calls"]
    assert first.method == "multicall3"
    assert calls.get("eth_call", 0) >= 1
    assert first.inflows_credited == (4 if endpoint == "no-traces" else 0)
    assert {world.payment(pid).status for pid in ids} == {"settled"}
    for pid in ids:
        assert int(world.payment(pid).amount_received) == paid[pid], pid
    gained = native_balance(world.anvil, TREASURY) - before
    assert 0 < gained < sum(paid.values())  # the deposit addresses paid their gas
    assert [r.shortfalls for r in [first, *later]] == [0] * (len(later) + 1)
    assert sum(r.inflows_credited for r in later) == 0
    assert later[-1].open_differences == 0
    with world.session() as s:
        sources = sorted({t.source or "chain" for t in s.scalars(sa.select(Transfer))})
    assert sources == (["balance", "chain"] if endpoint == "no-traces" else ["chain"])


def test_a_token_without_transfer_logs_is_found_and_swept(
    world: ScanWorld, multicall: str
) -> None:
    token = deploy_contract(
        world.anvil,
        "SilentDropToken",
        ("string", "string", "uint8"),
        ("Silent Drop", "SDT", 6),
    )
    tokens = {**world.cfg.tokens, "SDT": TokenConfig(address=token, decimals=6)}
    world.settings.chains["local"] = world.cfg.model_copy(update={"tokens": tokens})
    pid = world.pay("SDT", "2.5")
    address = world.payment(pid).address
    _mint_and_drop(world.anvil, token, address, 2_500_000)
    _fund_gas_payer(world)

    first = _round(world)
    _settle(world, [pid])
    after = _reconcile(world)

    assert first.inflows_credited == 1
    assert first.differences[0].asset == "SDT"
    assert world.payment(pid).status == "settled"
    assert (after.shortfalls, after.inflows_credited, after.open_differences) == (
        0,
        0,
        0,
    )


def _mint_and_drop(anvil: Anvil, token: str, to: str, amount: int) -> None:
    from eth_abi import encode
    from eth_utils.crypto import keccak

    mint = keccak(text="mint(address,uint256)")[:4] + encode(
        ["address", "uint256"], [FUNDER, amount]
    )
    drop = keccak(text="drop(address[],uint256)")[:4] + encode(
        ["address[]", "uint256"], [[to], amount]
    )
    for data in (mint, drop):
        send_tx(anvil, {"from": FUNDER, "to": token, "data": "0x" + data.hex()})


def test_without_multicall3_balances_are_read_one_by_one(world: ScanWorld) -> None:
    paid = _pay_four_ways(world)
    with Emulator(world.anvil.url, "geth", missing_methods=NO_TRACES) as emu:
        _use(world, emu.url)
        found = _round(world)
        calls = emu.snapshot()["calls"]
    assert found.method == "eth_getBalance+eth_call"
    assert found.inflows_credited == 4
    assert calls["eth_getBalance"] == found.balances_read
    credited = {d.payment_id for d in found.differences}
    assert len(credited) == 4
    for pid in credited:
        assert pid is not None
        assert int(world.payment(pid).amount_received) == paid[pid]


def test_funds_moved_by_a_transaction_ctrip_did_not_sign_are_a_shortfall(
    world: ScanWorld, multicall: str
) -> None:
    pid = world.pay("ETH", "0.5")
    address = world.payment(pid).address
    send_native(world.anvil, FUNDER, address, 5 * 10**17)
    world.anvil.rpc("anvil_impersonateAccount", address)
    moved = send_tx(world.anvil, {"from": address, "to": FUNDER, "value": hex(10**17)})
    world.anvil.rpc("anvil_stopImpersonatingAccount", address)
    rc = world.anvil.rpc("eth_getTransactionReceipt", moved)
    gone = 10**17 + int(rc["gasUsed"], 16) * int(rc["effectiveGasPrice"], 16)

    found = _round(world)
    with world.session() as s:
        snapshot = status_job.run(
            s,
            {},
            chains=world.settings.chains,
            now=world.clock,
            settings=world.settings.status,
        )
        row = s.scalars(sa.select(ReconcileDifference)).one()

    assert found.shortfalls == 1
    assert (row.kind, row.resolution, int(row.amount)) == ("shortfall", "open", gone)
    assert (int(row.expected), int(row.actual)) == (5 * 10**17, 5 * 10**17 - gone)
    assert any("hold less than the ledger explains" in p for p in snapshot.problems)
    assert snapshot.chains["local"].reconcile is not None
    assert snapshot.chains["local"].reconcile.open == {"shortfall": 1}


def _run_cli(
    world: ScanWorld, crash_at: str | None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PYTHONPATH": str(REPO),  # this tree's ctrip
        "CTRIP_DATABASE_URL": world.settings.database_url.get_secret_value(),
        "CTRIP_CHAINS_FILE": str(world.settings.chains_file),
    }
    if crash_at:
        env["CTRIP_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "ctrip_cli", "reconcile", "--chain", "local", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("crash_at", ["after_read", "after_commit"])
def test_a_killed_reconcile_rerun_credits_nothing_twice(
    world: ScanWorld, multicall: str, crash_at: str
) -> None:
    world.settings.chains["local"] = world.cfg.model_copy(
        update={"native_internal": "reconcile"}
    )
    world.settings.chains_file.write_text(  # the CLI reads the file
        world.settings.chains_file.read_text().replace(
            "confirmations: 3", "confirmations: 3\n    native_internal: reconcile"
        )
    )
    paid = _pay_four_ways(world)
    world.anvil.mine(world.cfg.confirmations)
    world.scan()

    killed = _run_cli(world, crash_at)
    rerun = _run_cli(world, None)
    world.anvil.mine(2)
    world.scan()
    again = _run_cli(world, None)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert rerun.returncode == 0, rerun.stderr
    assert again.returncode == 0, again.stderr
    credited = json.loads(rerun.stdout)["inflows_credited"]
    assert credited == (4 if crash_at == "after_read" else 0)
    assert json.loads(again.stdout)["inflows_credited"] == 0
    for pid, wei in paid.items():
        assert int(world.payment(pid).amount_received) == wei, pid
    with world.session() as s:
        credits = s.scalar(
            sa.select(sa.func.count())
            .select_from(ReconcileDifference)
            .where(ReconcileDifference.resolution == "credited")
        )
    assert credits == 4
