"""Named statements about sweep transactions and the payments they take money of."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    and_,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    Payment,
    SweepPayment,
    SweepTransaction,
)
from ctrip_cli.db.queries._sql import _chunks
from ctrip_cli.domain.statuses import (
    LIVE_SWEEP_STATES,
    PaymentStatus,
    SweepKind,
    SweepState,
)

SWEEP_LIVE_STATES = tuple(str(s) for s in LIVE_SWEEP_STATES)


def sweep_candidates(session: Session, chain: str) -> list[Payment]:
    """Payments of `chain` whose money may still owe the treasury a sweep: confirmed
    ones, and settled ones that received more than confirmed sweeps took."""
    stmt = (
        select(Payment)
        .where(
            Payment.chain == chain,
            or_(
                Payment.status == PaymentStatus.CONFIRMED,
                and_(
                    Payment.status == PaymentStatus.SETTLED,
                    # Exact on both dialects: canonical digits compare as equal text.
                    Payment.amount_received != Payment.amount_swept,
                ),
            ),
        )
        .order_by(
            Payment.address, Payment.token_address, Payment.created_at, Payment.id
        )
    )
    return list(session.scalars(stmt))


def reserved_amounts(session: Session, payment_ids: Sequence[str]) -> dict[str, int]:
    """Base units of each payment that sweeps not yet confirmed hold: live ones (in
    flight) and failed ones (an operator must look before the money moves again)."""
    held = (*SWEEP_LIVE_STATES, str(SweepState.FAILED))
    out: dict[str, int] = {}
    if not payment_ids:
        return out
    stmt = (
        select(SweepPayment.payment_id, SweepPayment.amount)
        .join(SweepTransaction, SweepTransaction.id == SweepPayment.sweep_tx_id)
        .where(
            SweepPayment.payment_id.in_(list(payment_ids)),
            # A purpose's first attempt carries the links; its outcome is that of
            # the purpose's newest attempt (a replacement may have won).
            SweepTransaction.purpose.in_(_purposes_in(held)),
        )
    )
    for pid, amount in session.execute(stmt):
        out[pid] = out.get(pid, 0) + int(amount)
    return out


def _purposes_in(states: Sequence[str]) -> Any:
    """Purposes whose outcome is one of `states`: any live attempt, or (for a final
    state) no confirmed attempt and one in that state."""
    live = [s for s in states if s in SWEEP_LIVE_STATES]
    final = [s for s in states if s not in SWEEP_LIVE_STATES]
    confirmed = select(SweepTransaction.purpose).where(
        SweepTransaction.state == SweepState.CONFIRMED
    )
    return select(SweepTransaction.purpose).where(
        or_(
            SweepTransaction.state.in_(live),
            and_(
                SweepTransaction.state.in_(final),
                SweepTransaction.purpose.not_in(confirmed),
            ),
        )
    )


def busy_addresses(session: Session, chain: str) -> set[tuple[str, str | None]]:
    """(deposit address, token) pairs with a sweep in flight: a new sweep of the same
    money waits until it is mined (its balance still holds the swept amount)."""
    stmt = select(SweepTransaction.from_address, SweepTransaction.token_address).where(
        SweepTransaction.chain == chain,
        SweepTransaction.state.in_(SWEEP_LIVE_STATES),
        SweepTransaction.kind != SweepKind.TOPUP,
    )
    return {(a, t) for a, t in session.execute(stmt)}


def native_dust_sums(
    session: Session, chain: str, addresses: Collection[str]
) -> dict[str, int]:
    """What confirmed native sweeps of each of `addresses` left on it in all: the sum
    of their `dust`, negative where a sweep's fees exceeded what it reserved and took
    later money of the address (addresses without such sweeps are absent)."""
    out: dict[str, int] = {}
    for part in _chunks(sorted(addresses)):
        stmt = select(SweepTransaction.from_address, SweepTransaction.dust).where(
            SweepTransaction.chain == chain,
            SweepTransaction.from_address.in_(part),
            SweepTransaction.kind == SweepKind.NATIVE,
            SweepTransaction.state == SweepState.CONFIRMED,
            SweepTransaction.dust.is_not(None),
        )
        for address, dust in session.execute(stmt):
            out[address] = out.get(address, 0) + int(dust or 0)
    return out


def sweep_links(session: Session, sweep_tx_id: int) -> list[tuple[str, int]]:
    """(payment id, base units) a sweep (identified by its first attempt) takes."""
    stmt = (
        select(SweepPayment.payment_id, SweepPayment.amount)
        .where(SweepPayment.sweep_tx_id == sweep_tx_id)
        .order_by(SweepPayment.payment_id)
    )
    return [(str(pid), int(amount)) for pid, amount in session.execute(stmt)]


def add_swept(session: Session, amounts: Sequence[tuple[str, int]]) -> None:
    """Add each (payment id, base units) to the payment's `amount_swept` (in Python:
    SQLite keeps amounts as text)."""
    for pid, amount in amounts:
        payment = session.get(Payment, pid)
        if payment is not None:
            payment.amount_swept = int(payment.amount_swept or 0) + amount
    session.flush()


def swept_unsettled(session: Session, chain: str) -> list[Payment]:
    """Confirmed payments of `chain` that a confirmed sweep took money of."""
    stmt = select(Payment).where(
        Payment.chain == chain,
        Payment.status == PaymentStatus.CONFIRMED,
        Payment.amount_swept != 0,
    )
    return list(session.scalars(stmt.order_by(Payment.id)))


def live_sweep_attempts(session: Session, chain: str) -> list[SweepTransaction]:
    """Every attempt of every purpose that still has a live attempt, oldest first."""
    live = select(SweepTransaction.purpose).where(
        SweepTransaction.chain == chain, SweepTransaction.state.in_(SWEEP_LIVE_STATES)
    )
    stmt = (
        select(SweepTransaction)
        .where(SweepTransaction.chain == chain, SweepTransaction.purpose.in_(live))
        .order_by(SweepTransaction.id)
    )
    return list(session.scalars(stmt))


def sweep_purpose_states(session: Session, chain: str, purpose: str) -> set[str]:
    """The states of all attempts of one purpose."""
    stmt = select(SweepTransaction.state).where(
        SweepTransaction.chain == chain, SweepTransaction.purpose == purpose
    )
    return set(session.scalars(stmt))


def max_sweep_nonce(session: Session, chain: str, from_address: str) -> int | None:
    """The highest nonce ctrip ever signed for `from_address` on `chain`."""
    stmt = select(func.max(SweepTransaction.nonce)).where(
        SweepTransaction.chain == chain, SweepTransaction.from_address == from_address
    )
    value = session.execute(stmt).scalar()
    return None if value is None else int(value)


def add_sweep_tx(session: Session, row: SweepTransaction) -> SweepTransaction:
    session.add(row)
    session.flush()
    return row


def get_sweep_tx(session: Session, tx_id: int) -> SweepTransaction | None:
    return session.get(SweepTransaction, tx_id)


def link_sweep_payments(
    session: Session, sweep_tx_id: int, amounts: Sequence[tuple[str, int]]
) -> None:
    """Link (payment id, base units) to a sweep; the primary key links each once."""
    session.execute(
        insert(SweepPayment),
        [
            {"payment_id": pid, "sweep_tx_id": sweep_tx_id, "amount": amount}
            for pid, amount in amounts
        ],
    )


def count_sweep_txs_by_state(
    session: Session, chain: str | None = None
) -> dict[str, int]:
    stmt = select(SweepTransaction.state, func.count()).group_by(SweepTransaction.state)
    if chain is not None:
        stmt = stmt.where(SweepTransaction.chain == chain)
    return {state: int(n) for state, n in session.execute(stmt).all()}
