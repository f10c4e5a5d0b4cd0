"""What the ledger says a deposit address holds at a block, and how a balance read
there compares: pure functions over recorded transfers and sweep attempts.

Per (address, asset) at block B the ledger explains

    received (transfers at or below B, balance credits included)
  + gas top-ups to the address mined at or below B             (native coin)
  - sweeps mined at or below B: the value moved and the fee paid from the address

Sweeps in flight (signed, sent, or mined but not yet confirmed by the sweep pass, whose
receipt a reorg may still drop) may or may not be mined at or below B, so they widen what is explained into a range [low, high]: the balance may
lack up to what they take, or (a top-up) hold what they bring. A balance above the
range is an inflow nobody recorded; one below it is a shortfall: money moved by
something ctrip did not sign.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ctrip_cli.domain.statuses import SweepKind, SweepState

INFLOW, SHORTFALL = "inflow", "shortfall"
Key = tuple[str, str | None]  # (lowercase address, lowercase token or None)
# Final: confirmed deep enough by the sweep pass. A `mined` receipt may still be in a
# block a reorg drops (the sweep pass notices only on its next run), so it counts as in
# flight: the balance may or may not show it.
_OUTCOMES = (SweepState.CONFIRMED, SweepState.FAILED)
_SUCCEEDED = (SweepState.CONFIRMED,)
_MAYBE_SENT = (SweepState.SIGNED, SweepState.PENDING, SweepState.MINED)


class TransferIn(Protocol):
    @property
    def to_address(self) -> str: ...
    @property
    def token_address(self) -> str | None: ...
    @property
    def block_number(self) -> int: ...
    @property
    def amount(self) -> int: ...


class SweepAttempt(Protocol):
    @property
    def purpose(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def from_address(self) -> str: ...
    @property
    def to_address(self) -> str: ...
    @property
    def token_address(self) -> str | None: ...
    @property
    def amount(self) -> int: ...
    @property
    def gas_limit(self) -> int: ...
    @property
    def max_fee_per_gas(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def block_number(self) -> int | None: ...
    @property
    def fee_paid(self) -> int | None: ...
    @property
    def l1_fee_reserved(self) -> int | None: ...


def key(address: str, token: str | None) -> Key:
    return address.lower(), None if token is None else token.lower()


@dataclass(slots=True)
class Explained:
    """What the ledger explains for one (address, asset) at a block."""

    received: int = 0  # transfers in at or below the block
    net_sweeps: int = 0  # top-ups in less what mined sweeps took out
    out_in_flight: int = 0  # the most that sweeps in flight may have taken
    in_in_flight: int = 0  # the most that top-ups in flight may have brought

    @property
    def low(self) -> int:
        return self.received + self.net_sweeps - self.out_in_flight

    @property
    def high(self) -> int:
        return self.received + self.net_sweeps + self.in_in_flight


@dataclass(frozen=True, slots=True)
class Finding:
    """A balance outside what the ledger explains."""

    kind: str  # INFLOW or SHORTFALL
    expected: int  # the bound of the explained range that the balance crossed
    actual: int
    amount: int  # how far outside


def explain(
    transfers: Iterable[TransferIn],
    sweeps: Iterable[SweepAttempt],
    block: int,
) -> dict[Key, Explained]:
    """The explained range of every (address, asset) the entries touch, at `block`."""
    out: dict[Key, Explained] = defaultdict(Explained)
    for t in transfers:
        if t.block_number <= block:
            out[key(t.to_address, t.token_address)].received += t.amount
    purposes: dict[str, list[SweepAttempt]] = defaultdict(list)
    for s in sweeps:
        purposes[s.purpose].append(s)
    for attempts in purposes.values():
        _sweep(out, attempts, block)
    return dict(out)


def _sweep(
    out: dict[Key, Explained], attempts: Sequence[SweepAttempt], block: int
) -> None:
    """One purpose: its mined attempt if it has one, else the worst of its attempts
    that may have been sent."""
    mined = [a for a in attempts if a.state in _OUTCOMES and a.block_number is not None]
    if mined:
        a = mined[0]
        if a.block_number is not None and a.block_number <= block:
            for k, delta in _effects(
                a, fee=a.fee_paid or 0, moved=a.state in _SUCCEEDED
            ):
                out[k].net_sweeps += delta
        return
    if any(_mined_after(a, block) for a in attempts):
        return  # mined after the block (or, reorged, not at all): nothing moved by it
    for k, delta in _worst_in_flight(attempts).items():
        if delta > 0:
            out[k].in_in_flight += delta
        else:
            out[k].out_in_flight -= delta


def _mined_after(a: SweepAttempt, block: int) -> bool:
    return a.state == SweepState.MINED and (a.block_number or 0) > block


def _worst_in_flight(attempts: Sequence[SweepAttempt]) -> dict[Key, int]:
    """Per key, the change of the attempt in flight that would move the most, in
    whichever direction."""
    worst: dict[Key, int] = {}
    for a in attempts:
        if a.state not in _MAYBE_SENT:
            continue
        for k, delta in _effects(a, fee=_most_fee(a), moved=True):
            if abs(delta) > abs(worst.get(k, 0)):
                worst[k] = delta
    return worst


def _most_fee(a: SweepAttempt) -> int:
    """The most an attempt in flight may take in fees: its gas at the max fee, and on a
    rollup twice the L1 data fee reserved (L1 prices may rise past the reserve before
    inclusion); never less than what a recorded receipt says it paid."""
    bound = a.gas_limit * a.max_fee_per_gas + 2 * (a.l1_fee_reserved or 0)
    return max(bound, a.fee_paid or 0)


def _effects(a: SweepAttempt, *, fee: int, moved: bool) -> list[tuple[Key, int]]:
    """(key, signed change) of one attempt on the deposit address it touches."""
    if a.kind == SweepKind.TOPUP:  # the gas payer's coin arrives at the address
        return [(key(a.to_address, None), a.amount if moved else 0)]
    native = key(a.from_address, None)
    if a.kind == SweepKind.NATIVE:
        return [(native, -(fee + (a.amount if moved else 0)))]
    token = key(a.from_address, a.token_address)
    return [(native, -fee), (token, -a.amount if moved else 0)]


def compare(explained: Explained, actual: int) -> Finding | None:
    """The finding for a balance of `actual`, or None when the ledger explains it."""
    if actual > explained.high:
        return Finding(INFLOW, explained.high, actual, actual - explained.high)
    if actual < explained.low:
        return Finding(SHORTFALL, explained.low, actual, explained.low - actual)
    return None


@dataclass(frozen=True, slots=True)
class Credit:
    """A balance credit: `original` credited at `block` when the ledger had
    `ledger_received` recorded as received at or below it."""

    id: int
    block: int
    original: int
    ledger_received: int


def superseded(
    credits: Sequence[Credit], events: Sequence[TransferIn]
) -> dict[int, int]:
    """What each balance credit of one (address, asset) is worth now: its original
    amount less what transfers recorded since (at or below its block) explain.

    A credit was what the balance held beyond the ledger's `ledger_received`; the
    ledger now explains `received(B)` = transfers read from the chain at or below B
    plus the earlier credits' current worth. The excess over `ledger_received` is
    money the credit already counted, so the credit shrinks by it (never below 0,
    never above its original). Recomputed from the rows each time: idempotent, and
    the same in whichever order scans and reconciles committed.
    """
    worth: dict[int, int] = {}
    ordered = sorted(credits, key=lambda c: (c.block, c.id))
    for c in ordered:
        read = sum(t.amount for t in events if t.block_number <= c.block)
        earlier = sum(
            worth[o.id] for o in ordered if o.id in worth and o.block <= c.block
        )
        explained_since = read + earlier - c.ledger_received
        worth[c.id] = min(max(c.original - explained_since, 0), c.original)
    return worth
