"""Named statements about sweep transactions and the payments they take money of."""

from __future__ import annotations

from collections.abc import Sequence

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

SWEEP_LIVE_STATES = ("held", "signed", "pending", "mined")


def sweep_candidates(session: Session, chain: str) -> list[Payment]:
    """Confirmed (and late expired, funded) payments of `chain` not yet linked to a sweep."""
    linked = select(SweepPayment.payment_id)
    stmt = (
        select(Payment)
        .where(
            Payment.chain == chain,
            or_(
                Payment.status == "confirmed",
                and_(Payment.status == "expired", Payment.late.is_(True)),
            ),
            Payment.id.not_in(linked),
        )
        .order_by(
            Payment.address, Payment.token_address, Payment.created_at, Payment.id
        )
    )
    return list(session.scalars(stmt))


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
    session: Session, sweep_tx_id: int, payment_ids: Sequence[str]
) -> None:
    """Link payments to a sweep; the primary key makes a second link impossible."""
    session.execute(
        insert(SweepPayment),
        [{"payment_id": pid, "sweep_tx_id": sweep_tx_id} for pid in payment_ids],
    )


def swept_payments(session: Session, sweep_tx_id: int) -> list[Payment]:
    """The payments a sweep (identified by its first attempt) settles."""
    stmt = (
        select(Payment)
        .join(SweepPayment, SweepPayment.payment_id == Payment.id)
        .where(SweepPayment.sweep_tx_id == sweep_tx_id)
        .order_by(Payment.id)
    )
    return list(session.scalars(stmt))


def count_sweep_txs_by_state(
    session: Session, chain: str | None = None
) -> dict[str, int]:
    stmt = select(SweepTransaction.state, func.count()).group_by(SweepTransaction.state)
    if chain is not None:
        stmt = stmt.where(SweepTransaction.chain == chain)
    return {state: int(n) for state, n in session.execute(stmt).all()}
