"""The ledger's explained range at a block (domain.ledger): transfers, mined sweeps
and their fees, gas top-ups, sweeps in flight, and what a balance credit is worth
once transfers read later explain its money."""

from __future__ import annotations

from dataclasses import dataclass

from ctrip_cli.domain import ledger

A = "0x" + "aa" * 20
TOKEN = "0x" + "cc" * 20
PAYER = "0x" + "ee" * 20


@dataclass(frozen=True)
class T:
    to_address: str
    token_address: str | None
    block_number: int
    amount: int


@dataclass(frozen=True)
class S:
    purpose: str
    kind: str
    state: str
    amount: int
    block_number: int | None = None
    fee_paid: int | None = None
    from_address: str = A
    to_address: str = PAYER
    token_address: str | None = None
    gas_limit: int = 21_000
    max_fee_per_gas: int = 10
    l1_fee_reserved: int | None = None


NATIVE = ledger.key(A, None)


def test_transfers_count_at_or_below_the_block() -> None:
    got = ledger.explain([T(A, None, 5, 100), T(A, None, 6, 50)], [], 5)
    assert (got[NATIVE].low, got[NATIVE].high) == (100, 100)


def test_a_mined_native_sweep_takes_its_value_and_fee() -> None:
    sweep = S("sweep:1", "native", "confirmed", 900, block_number=7, fee_paid=100)
    before = ledger.explain([T(A, None, 5, 1_000)], [sweep], 6)[NATIVE]
    after = ledger.explain([T(A, None, 5, 1_000)], [sweep], 7)[NATIVE]
    assert (before.low, before.high, after.low, after.high) == (1_000, 1_000, 0, 0)


def test_a_sweep_in_flight_widens_the_range_by_its_worst_attempt() -> None:
    first = S("sweep:1", "native", "pending", 700)
    bumped = S("sweep:1", "native", "pending", 650)  # more gas, less value
    got = ledger.explain([T(A, None, 5, 1_000)], [first, bumped], 9)[NATIVE]
    assert got.high == 1_000
    assert got.low == 1_000 - max(700 + 210_000, 650 + 210_000)
    assert ledger.compare(got, 1_000) is None
    assert ledger.compare(got, 0) is None


def test_a_token_sweep_pays_gas_from_a_top_up_and_a_reverted_one_moves_nothing() -> (
    None
):
    token = ledger.key(A, TOKEN)
    topup = S(
        "gas:1", "topup", "confirmed", 500, 6, 21, from_address=PAYER, to_address=A
    )
    ok = S("sweep:1", "token", "confirmed", 80, 7, 300, token_address=TOKEN)
    reverted = S("sweep:2", "token", "failed", 20, 8, 100, token_address=TOKEN)
    got = ledger.explain([T(A, TOKEN, 5, 100)], [topup, ok, reverted], 9)
    assert (got[NATIVE].low, got[token].low) == (500 - 300 - 100, 20)


def test_a_top_up_in_flight_may_have_arrived() -> None:
    topup = S("gas:1", "topup", "signed", 500, from_address=PAYER, to_address=A)
    got = ledger.explain([], [topup], 9)[NATIVE]
    assert (got.low, got.high) == (0, 500)


def test_a_sweep_mined_after_the_block_has_not_moved_anything_yet() -> None:
    sweep = S("sweep:1", "native", "mined", 900, block_number=12, fee_paid=100)
    got = ledger.explain([T(A, None, 5, 1_000)], [sweep], 10)[NATIVE]
    assert (got.low, got.high) == (1_000, 1_000)


def test_compare_names_the_crossed_bound() -> None:
    e = ledger.Explained(received=1_000, out_in_flight=100)
    assert ledger.compare(e, 1_250) == ledger.Finding("inflow", 1_000, 1_250, 250)
    assert ledger.compare(e, 800) == ledger.Finding("shortfall", 900, 800, 100)
    assert ledger.compare(e, 950) is None


def test_credits_give_way_to_transfers_read_later_oldest_first() -> None:
    # 300 found at #10 (nothing recorded then), 200 more at #20 (300 recorded).
    c1 = ledger.Credit(1, 10, 300, 0)
    c2 = ledger.Credit(2, 20, 200, 300)
    assert ledger.superseded([c1, c2], []) == {1: 300, 2: 200}
    # A rescan records 400 at #8: it explains all of c1 and 100 of c2.
    late = [T(A, None, 8, 400)]
    assert ledger.superseded([c1, c2], late) == {1: 0, 2: 100}
    # A transfer after the credit's block is other money.
    assert ledger.superseded([c1], [T(A, None, 11, 400)]) == {1: 300}
    # Recomputed, never applied twice.
    assert ledger.superseded([c2, c1], late) == {1: 0, 2: 100}
