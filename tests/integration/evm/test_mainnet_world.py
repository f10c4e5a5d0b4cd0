"""The mainnet-shaped world and the scan floor, on a small world through the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.bench import mainnet_world as mw
from scripts.bench import scan_floor
from scripts.emulator import Emulator, preset
from tests.evm import Anvil

pytestmark = pytest.mark.evm

PAID = (
    "0x7a11e0c5a9d7f4a3b2e1f0c9d8b7a6f5e4d3c2b1",
    "0x1b22e0c5a9d7f4a3b2e1f0c9d8b7a6f5e4d3c2b1",
    "0x2c33e0c5a9d7f4a3b2e1f0c9d8b7a6f5e4d3c2b1",
)


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Anvil, mw.World]]:
    node = Anvil(extra_args=["--gas-limit", "100000000"])
    payments = [
        mw.Payment(block=1, to=PAID[0], asset="ETH", amount=7),
        mw.Payment(block=3, to=PAID[1], asset="USDT", amount=5_000_000),
        mw.Payment(block=4, to=PAID[2], asset="DAI", amount=10**18),
    ]
    yield node, mw.build(node, blocks=6, txs_per_block=40, payments=payments, seed=1)
    node.stop()


def test_swap_emits_six_logs_and_blocks_are_full(world: tuple[Anvil, mw.World]) -> None:
    anvil, w = world
    assert w.blocks == 6
    receipts = anvil.rpc("eth_getBlockReceipts", hex(w.first))
    assert len(receipts) == 40
    swaps = [r for r in receipts if r["to"] == w.dex.lower()]
    assert swaps
    assert {len(r["logs"]) for r in swaps} == {6}
    assert all(r["status"] == "0x1" for r in receipts)
    assert [p["block_number"] - w.first for p in w.payments] == [1, 3, 4]


def test_swap_runtime_log_count_is_bounded() -> None:
    assert mw.swap_runtime(4) != mw.swap_runtime(6)
    with pytest.raises(ValueError, match="4 to 6 logs"):
        mw.swap_runtime(7)


def test_receipts_outweigh_full_blocks(world: tuple[Anvil, mw.World]) -> None:
    anvil, w = world
    sizes = mw.measure(anvil.url, w.first, w.last)
    assert sizes["receipts_bytes_per_block"] > 2 * sizes["full_blocks_bytes_per_block"]
    assert sizes["logs_per_block"] > 100


@pytest.mark.parametrize("method", scan_floor.METHODS)
def test_floor_finds_the_payments_within_geth_limits(
    world: tuple[Anvil, mw.World], method: scan_floor.Method
) -> None:
    anvil, w = world
    one = mw.measure(anvil.url, w.first, w.first, sample=1)
    key = "receipts" if method == "receipts" else "full_blocks"
    per_block = one[f"{key}_bytes_per_block"]
    limits = preset("geth").replace(max_batch_response_bytes=int(per_block * 2.5))
    with Emulator(anvil.url, limits) as emu:
        run = scan_floor.run(
            emu.url,
            w.first,
            w.last,
            method=method,
            tokens=list(w.tokens.values()),
            watched_native={PAID[0]},
            watched_tokens={PAID[1], PAID[2]},
            limits=limits,
        )
        assert not emu.limited  # sized to the cap: never refused
        assert run.calls == emu.total_calls
    assert run.native == [(w.payments[0]["tx"], PAID[0], 7)]
    assert sorted(t[2] for t in run.tokens) == sorted(PAID[1:])
    assert 1 <= run.batch_calls <= 2
    report = run.report()
    assert report["bytes_per_block"] > 0
    assert report["calls_per_block"] > 1


def test_floor_says_receipts_are_unavailable_without_the_method(
    world: tuple[Anvil, mw.World],
) -> None:
    anvil, w = world
    run = scan_floor.run(
        anvil.url,
        w.first,
        w.last,
        method="receipts",
        tokens=[],
        watched_native=set(),
        watched_tokens=set(),
        limits=preset("public"),
    )
    assert run.report() == {
        "method": "receipts",
        "unavailable": "eth_getBlockReceipts is not offered",
    }
