"""Hostile tests of `sweep` on an OP-stack chain, driven only through the CLI against a
real `anvil --network optimism` (L1Block fee slots set by the test), optionally behind
a proxy that behaves like op-geth's transaction pool or refuses chosen calls.

Each test asserts what the README promises: a sweep refused at submission for its L1
fee is replaced once stuck; an L1 fee above the reserve, paid from later money, is
recorded and made up for by the next sweep; a replacement keeps to the fee share; an
L1 fee read the pass cannot trust fails it; a YAML boolean is no fee floor.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evm import balance_of, send_native
from tests.hostile.l2_proxy import Proxy
from tests.hostile.l2_world import (
    BLOB_BASE_FEE,
    FUNDER,
    L1_BASE_FEE,
    TREASURY,
    CliWorld,
    set_l1,
    wei,
)

pytestmark = [pytest.mark.evm, pytest.mark.e2e]

TREASURY_START = 10_000 * 10**18  # anvil's prefunded balance


@pytest.fixture
def world(tmp_path: Path) -> Iterator[CliWorld]:
    w = CliWorld(tmp_path, env_extra={"CTRIP_SWEEP_STUCK_AFTER_S": "1"})
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def pooled(world: CliWorld) -> Iterator[tuple[CliWorld, Proxy]]:
    """The world behind a proxy that, like op-geth's pool, refuses at submission a
    transaction whose sender cannot pay value + gas × max fee + L1 data fee."""
    proxy = Proxy(world.node.url)
    proxy.l1_pool_check = True
    world.url = proxy.url
    world.write_yaml()
    try:
        yield world, proxy
    finally:
        proxy.stop()


def rows(w: CliWorld) -> list[dict[str, Any]]:
    with sqlite3.connect(w.db) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM sweep_transactions")]


def passes(w: CliWorld, n: int, *, wait_s: float = 1.1) -> list[Any]:
    """n sweep passes, each after the stuck threshold, mining between them."""
    outs = []
    for _ in range(n):
        time.sleep(wait_s)
        rc, out, err = w.sweep()
        assert rc in (0, 1), err
        outs.append(out)
        w.node.mine(3)
        for cmd in ("scan", "confirm"):
            assert w.ctrip(cmd, "--chain", "local").returncode == 0
    return outs


def spike(w: CliWorld, times: int) -> None:
    set_l1(w.node, l1_base_fee=L1_BASE_FEE * times, blob_base_fee=BLOB_BASE_FEE * times)


# -- L1 fees that move --


def test_l1_spike_does_not_spend_late_money_of_the_payment(world: CliWorld) -> None:
    world.env_extra = {}  # the default stuck threshold: no replacement meanwhile
    p = world.create("ETH", "0.01")
    world.pay_native(p["address"], wei("0.01"))
    world.scan_confirm()
    world.node.set_automine(False)
    world.sweep()  # signed and sent with the L1 fee reserve of these prices
    spike(world, 10)  # ... which rise 10x before inclusion
    world.node.mine(1)
    send_native(world.node, FUNDER, p["address"], wei("0.005"), wait=False)
    world.node.mine(1)  # the late payment lets the old sweep pay its L1 fee
    world.node.set_automine(True)
    outs = passes(world, 6, wait_s=0)

    (first, *later) = sorted(rows(world), key=lambda r: r["id"])
    # The first sweep paid more L1 fee than it reserved ...
    assert int(first["l1_fee_paid"]) > int(first["l1_fee_reserved"])
    # ... and the late 0.005 ETH must still reach the treasury (less its own fees),
    # or be reported with its reason; not "a lagging RPC endpoint" forever.
    errors = [e for o in outs for e in o["errors"]]
    assert not any("lagging RPC endpoint" in e for e in errors), errors[-1]
    assert later
    assert later[-1]["state"] == "confirmed"
    # Every wei accounted: the first sweep's overdraft is its negative dust, made up
    # for by the next sweep's, and what the address holds is their sum.
    assert int(first["dust"]) == int(first["l1_fee_reserved"]) - int(
        first["l1_fee_paid"]
    )
    done = [r for r in (first, *later) if r["state"] == "confirmed"]
    dust = sum(int(r["dust"]) for r in done)
    sent = sum(int(r["amount"]) for r in done)
    fees = sum(int(r["fee_paid"]) for r in done)
    assert 0 <= dust == world.balance(p["address"])
    assert sent + fees + dust == wei("0.015")
    assert world.balance(TREASURY) - TREASURY_START == sent
    assert any("exceeded its reserve" in e for e in errors)


def test_replacement_after_an_l1_spike_respects_max_fee_share(
    world: CliWorld,
) -> None:
    p = world.create("ETH", "0.0005")  # planned fee ~9 % of it, under the 10 % cap
    world.pay_native(p["address"], wei("0.0005"))
    world.scan_confirm()
    world.node.set_automine(False)
    world.sweep()
    spike(world, 100)
    world.node.mine(1)
    world.node.set_automine(True)
    outs = passes(world, 4)

    assert all(o["skipped_uneconomic"] == 1 for o in outs), outs
    for r in rows(world):
        assert r["replaces_id"] is None  # nothing signed to pay the spiked fee
        if r["state"] == "confirmed":
            spent = int(r["fee_paid"]) + int(r["dust"])
            assert spent * 10_000 <= 1_000 * wei("0.0005"), (spent, r["amount"])


def test_signed_native_sweep_refused_for_its_l1_fee_is_replaced(
    pooled: tuple[CliWorld, Proxy],
) -> None:
    w, proxy = pooled
    p = w.create("ETH", "0.01")
    w.pay_native(p["address"], wei("0.01"))
    w.scan_confirm()
    rc, _out, _err = w.sweep(env={"CTRIP_TEST_CRASH_AT": "after_sign"})
    assert rc == -9  # SIGKILLed between the signing commit and the broadcast
    spike(w, 3)
    w.node.mine(1)
    passes(w, 6)

    assert proxy.rejected  # the pool did refuse the stored bytes
    assert w.payment(p["id"])["status"] == "settled", [
        (r["state"], r["last_error"]) for r in rows(w)
    ]


def test_held_token_transfer_refused_for_its_l1_fee_gets_more_gas(
    pooled: tuple[CliWorld, Proxy],
) -> None:
    w, _proxy = pooled
    send_native(w.node, FUNDER, w.payer(), wei("1"))
    t = w.create("USDC", "5")
    w.pay_usdc(t["address"], 5_000_000)
    w.scan_confirm()
    w.sweep()  # top-up sent, token transfer signed and held
    spike(w, 3)
    w.node.mine(1)
    passes(w, 6)

    sweeps = w.j("status", "--chain", "local")["chains"]["local"]["sweeps"]
    assert balance_of(w.node, w.usdc, TREASURY) == 5_000_000 or sweeps["stuck"] > 0, [
        (r["kind"], r["state"], r["last_error"]) for r in rows(w)
    ]


def test_refused_isfjord_call_does_not_misrecord_the_l1_fee(
    world: CliWorld,
) -> None:
    """An endpoint refusing GasPriceOracle.isFjord() with anything but a revert
    cannot tell the pass which L1 fee formula the chain uses: the pass fails clearly
    and records nothing, and a later pass records the fee right."""
    proxy = Proxy(world.node.url)
    world.url = proxy.url
    world.write_yaml()
    try:
        p = world.create("ETH", "0.2")
        world.pay_native(p["address"], wei("0.2"))
        world.scan_confirm()
        world.sweep()
        world.node.mine(3)
        proxy.oracle_mode = "missing"  # -32601 for eth_call to 0x42…0F
        rc, _out, err = world.sweep()
        assert rc == 1
        assert "eth_call" in err
        (row,) = rows(world)
        assert row["state"] != "confirmed"
        assert row["dust"] is None
        proxy.oracle_mode = "pass"
        world.sweep()
    finally:
        proxy.stop()
    (row,) = rows(world)
    assert row["state"] == "confirmed"
    assert int(row["dust"]) == world.balance(p["address"])


def test_boolean_fee_floor_is_refused(world: CliWorld) -> None:
    world.write_yaml(min_priority_fee_wei="true")
    proc = world.ctrip("sweep", "--chain", "local", "--dry-run", json_out=False)
    assert proc.returncode == 2
    assert "min_priority_fee_wei" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- accounting and bad answers --


def test_late_money_while_a_sweep_is_in_flight_keeps_the_money_invariant(
    world: CliWorld,
) -> None:
    p = world.create("ETH", "0.1")
    a = p["address"]
    world.pay_native(a, wei("0.1"))
    world.scan_confirm()
    world.node.set_automine(False)
    world.sweep()
    send_native(world.node, FUNDER, a, wei("0.04"), wait=False)
    world.node.mine(1)
    world.node.set_automine(True)
    passes(world, 4, wait_s=0)
    send_native(world.node, FUNDER, a, wei("0.0005"))  # below min_late_sweep_bps
    outs = passes(world, 2, wait_s=0)

    done = [r for r in rows(world) if r["state"] == "confirmed"]
    assert len(done) == 2
    dust = sum(int(r["dust"]) for r in done)
    fees = sum(int(r["fee_paid"]) for r in done)
    sent = sum(int(r["amount"]) for r in done)
    assert all(0 < int(r["dust"]) <= int(r["l1_fee_reserved"]) for r in done)
    assert outs[-1]["skipped_dust"] == 1
    assert world.balance(a) == dust + wei("0.0005")
    assert world.balance(TREASURY) - TREASURY_START == sent
    assert sent == wei("0.1405") - fees - dust - wei("0.0005")


@pytest.mark.parametrize(
    "mode", ["missing", "garbage", "empty", "null", "number", "long"]
)
def test_a_bad_l1block_answer_stops_the_pass_clearly(
    world: CliWorld, mode: str
) -> None:
    proxy = Proxy(world.node.url)
    proxy.storage_mode = mode
    world.url = proxy.url
    world.write_yaml()
    try:
        p = world.create("ETH", "0.01")
        world.pay_native(p["address"], wei("0.01"))
        world.scan_confirm()
        for extra in (("--dry-run",), ()):
            rc, _out, err = world.sweep(*extra)
            assert rc == 1
            assert "eth_getStorageAt" in err
            assert "Traceback" not in err
    finally:
        proxy.stop()
    assert rows(world) == []
