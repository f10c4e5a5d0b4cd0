"""Native coin forwarded by contracts (no top-level transaction, no log) on anvil:
forwarders assembled by hand pay deposit addresses through internal CALLs; scan reads
them from traces (each trace API in turn), confirm and sweep carry them to settled, and
an endpoint without trace methods (the provider emulator) is passed over cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli.chain import traces
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.db.models import Transfer
from ctrip_cli.errors import TracesUnavailableError
from ctrip_cli.jobs import sweep as sweep_job
from scripts.emulator import Emulator
from tests import forwarders as fw
from tests.evm import Anvil, native_balance, send_native
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, ScanWorld, make_world

pytestmark = pytest.mark.evm
TREASURY = "0x1111111111111111111111111111111111111111"
NO_TRACES = frozenset(traces.METHODS)


@pytest.fixture
def world(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> Iterator[ScanWorld]:
    w = make_world(anvil_snapshot, tokens, sqlite_url, tmp_path)
    w.settings.chains["local"] = w.cfg.model_copy(update={"treasury": TREASURY})
    yield w
    w.engine.dispose()


def _use(world: ScanWorld, url: str, **update: Any) -> None:
    cfg = world.cfg.model_copy(update={"rpc_urls": [SecretStr(url)], **update})
    world.settings.chains["local"] = cfg


def _inner(target: str) -> bytes:
    return bytes.fromhex(fw.forward_data(target)[2:])


def _pay_four_ways(world: ScanWorld) -> dict[str, int]:
    """A forward, a split over two payments, a nested forward, and a forward whose
    inner step reverts inside a successful transaction; {payment id: wei expected}."""
    a = world.anvil
    one, two, three = (world.pay("ETH", "0.01") for _ in range(3))
    split_a, split_b = world.pay("ETH", "0.004"), world.pay("ETH", "0.006")
    reverted = world.pay("ETH", "0.01")
    to = {pid: world.payment(pid).address for pid in (one, two, three, split_a)}
    to |= {pid: world.payment(pid).address for pid in (split_b, reverted)}
    forward, inner = fw.deploy(a, "forward"), fw.deploy(a, "forward")
    splitter, keep = fw.deploy(a, "split"), fw.deploy(a, "forward_try")
    failing = fw.deploy(a, "forward_then_revert")
    fw.pay_through(a, forward, fw.forward_data(to[one]), 10**16)
    fw.pay_through(
        a, splitter, fw.split_data(to[split_a], 4 * 10**15, to[split_b]), 10**16
    )
    fw.pay_through(a, forward, fw.forward_data(inner, _inner(to[two])), 10**16)
    # The forward to `reverted` is undone; `keep` swallows the failure and the coin.
    fw.pay_through(a, keep, fw.forward_data(failing, _inner(to[reverted])), 10**16)
    # Top-level and internal in one pass: a plain payment is still recorded once.
    send_native(a, PAYER, to[three], 10**16)
    return {one: 10**16, two: 10**16, three: 10**16, split_a: 4 * 10**15,
            split_b: 6 * 10**15, reverted: 0}  # fmt: skip


def _check_detected(world: ScanWorld, paid: dict[str, int]) -> None:
    for pid, wei in paid.items():
        p = world.payment(pid)
        want = ("detected", wei) if wei else ("pending", 0)
        assert (p.status, int(p.amount_received)) == want, pid
        rows = world.transfers(pid)
        assert len(rows) == (1 if wei else 0), pid


def _sweep(world: ScanWorld) -> sweep_job.SweepResult:
    client = EvmChain.open(world.cfg)
    try:
        with world.session() as s:
            return sweep_job.run(
                s,
                client,
                cfg=world.cfg,
                keys=KeyRing.for_chain(world.settings.mnemonic, world.cfg),
                now=world.clock,
                settings=world.settings.sweep,
            )
    finally:
        client.close()


@pytest.mark.parametrize("skip", [(), ("trace_block",)], ids=["trace_block", "debug"])
def test_forwarded_coin_is_detected_confirmed_and_swept(
    world: ScanWorld, skip: tuple[str, ...]
) -> None:
    start = world.anvil.block_number()
    paid = _pay_four_ways(world)
    world.anvil.mine(world.cfg.confirmations)
    with Emulator(world.anvil.url, "geth", missing_methods=frozenset(skip)) as emu:
        _use(world, emu.url)
        scanned = world.scan()
        seen = emu.snapshot()
        _check_detected(world, paid)
        again = world.scan(from_block=start)  # a rescan records nothing twice
        _check_detected(world, paid)
        confirmed = world.confirm()
        before = native_balance(world.anvil, TREASURY)
        for _ in range(4):
            _sweep(world)
            world.anvil.mine(world.cfg.confirmations)
    assert (scanned.transfers_recorded, again.transfers_recorded) == (5, 0)
    assert confirmed.confirmed == 5
    assert set(seen["limited_methods"]) == set(skip)
    with world.session() as s:
        indexes = sorted(s.scalars(sa.select(Transfer.log_index)))
    assert indexes.count(-1) == 1  # the top-level payment
    assert all(i <= traces.log_index(1) for i in indexes if i != -1)
    settled = [pid for pid, wei in paid.items() if wei]
    assert {world.payment(pid).status for pid in settled} == {"settled"}
    gained = native_balance(world.anvil, TREASURY) - before
    assert 0 < gained < sum(paid.values())  # the deposit addresses paid their gas


def test_an_endpoint_without_traces_is_passed_over_and_remembered(
    world: ScanWorld,
) -> None:
    paid = _pay_four_ways(world)
    with Emulator(world.anvil.url, "geth", missing_methods=NO_TRACES) as emu:
        _use(world, emu.url)
        first = world.scan()
        after_scan = emu.snapshot()["limited_methods"]
        client = EvmChain.open(world.cfg)
        head = world.anvil.block_number()
        client.transfers(head, head, _watched())
        once = emu.snapshot()["limited_methods"]
        client.transfers(head, head, _watched())  # asks no trace method again
        twice = emu.snapshot()["limited_methods"]
        learnt = client.rpc.preferred.limits.unsupported
        client.close()
    assert first.transfers_recorded == 1  # only the top-level payment
    detected = [pid for pid in paid if world.payment(pid).status == "detected"]
    assert [int(world.payment(pid).amount_received) for pid in detected] == [10**16]
    assert set(after_scan) == set(traces.METHODS)
    assert set(learnt) >= set(traces.METHODS)
    assert {m: once[m] - after_scan[m] for m in once} == dict.fromkeys(
        traces.METHODS, 1
    )
    assert twice == once


def test_native_internal_traces_fails_where_there_are_none(world: ScanWorld) -> None:
    world.pay("ETH", "1")
    with Emulator(world.anvil.url, "geth", missing_methods=NO_TRACES) as emu:
        _use(world, emu.url, native_internal="traces")
        with pytest.raises(TracesUnavailableError, match="native_internal: auto"):
            world.scan()


@pytest.mark.parametrize("mode", ["off", "reconcile"])
def test_native_internal_off_and_reconcile_read_no_traces(
    world: ScanWorld, mode: str
) -> None:
    paid = _pay_four_ways(world)
    with Emulator(world.anvil.url, "geth") as emu:
        _use(world, emu.url, native_internal=mode)
        assert world.scan().transfers_recorded == 1
        calls = emu.snapshot()["calls"]
    assert not set(calls) & set(traces.METHODS)
    assert (
        sum(1 for pid, wei in paid.items() if world.payment(pid).status == "detected")
        == 1
    )


def _watched() -> Any:
    from ctrip_cli.chain.client import Watched

    return Watched(native={"0x" + "d1" * 20})


def test_both_trace_apis_key_every_transfer_alike(world: ScanWorld) -> None:
    start = world.anvil.block_number() + 1
    paid = _pay_four_ways(world)
    wanted = {world.payment(pid).address.lower() for pid in paid}
    numbers = range(start, world.anvil.block_number() + 1)
    found = {}
    for skip in ([], ["trace_block"]):
        client = EvmChain.open(world.cfg)
        client.rpc.preferred.limits.unsupported.extend(skip)
        try:
            read = traces.internal_transfers(
                client.rpc,
                numbers,
                wanted,
                block_hashes=client.block_hashes,
                chain="local",
                required=True,
            )
        finally:
            client.close()
        assert read is not None
        found[tuple(skip)] = sorted(read, key=lambda t: (t.tx_hash, t.log_index))
    assert found[()] == found[("trace_block",)]
    assert len(found[()]) == 4  # forward, split (2), nested; not the reverted one
