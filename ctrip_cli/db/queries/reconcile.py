"""Named statements of `reconcile`: which addresses it checks, the ledger entries
that explain their balances (transfers in, sweeps and top-ups), its cursor, and the
differences it records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    Payment,
    ReconcileCursor,
    ReconcileDifference,
    SweepTransaction,
    Transfer,
)
from ctrip_cli.db.queries._sql import _chunks
from ctrip_cli.domain.statuses import PaymentStatus, SweepKind

BALANCE = "balance"  # transfers.source of money reconcile credited
OPEN = "open"


def reconcile_addresses(
    session: Session, chain: str, *, statuses: Collection[str], since: datetime
) -> list[str]:
    """Deposit addresses whose balance the ledger can explain and must check: those
    of payments that may still receive (`statuses`, and expired or settled ones
    since `since`), those whose payments received more than sweeps took (money
    still on the address), and those with an open difference."""
    s = PaymentStatus
    watched = or_(
        Payment.status.in_(list(statuses)),
        (Payment.status == s.EXPIRED) & (Payment.expires_at >= since),
        (Payment.status == s.SETTLED) & (Payment.settled_at >= since),
        # Exact on both dialects: canonical digits compare as equal text.
        Payment.amount_received != Payment.amount_swept,
    )
    stmt = select(Payment.address).where(Payment.chain == chain, watched)
    found = set(session.scalars(stmt))
    found.update(
        session.scalars(
            select(ReconcileDifference.address).where(
                ReconcileDifference.chain == chain,
                ReconcileDifference.resolution == OPEN,
            )
        )
    )
    return sorted(found)


@dataclass(frozen=True, slots=True)
class LedgerTransfer:
    """A recorded transfer into a deposit address."""

    id: int
    payment_id: str
    to_address: str
    token_address: str | None
    block_number: int
    amount: int
    source: str | None
    tx_hash: str


def ledger_transfers(
    session: Session, payment_ids: Collection[str]
) -> list[LedgerTransfer]:
    """Every transfer recorded for `payment_ids`."""
    cols = (
        Transfer.id,
        Transfer.payment_id,
        Transfer.to_address,
        Transfer.token_address,
        Transfer.block_number,
        Transfer.amount,
        Transfer.source,
        Transfer.tx_hash,
    )
    out: list[LedgerTransfer] = []
    for part in _chunks(sorted(payment_ids)):
        stmt = select(*cols).where(Transfer.payment_id.in_(part))
        for tid, pid, to, token, number, amount, source, tx_hash in session.execute(
            stmt
        ):
            out.append(
                LedgerTransfer(
                    int(tid),
                    str(pid),
                    to,
                    token,
                    int(number),
                    int(amount),
                    source,
                    tx_hash,
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class SweepMove:
    """One sweep attempt that moves money from (or, a top-up, to) a deposit address."""

    purpose: str
    kind: str
    from_address: str
    to_address: str
    token_address: str | None
    amount: int
    gas_limit: int
    max_fee_per_gas: int
    state: str
    block_number: int | None
    fee_paid: int | None
    l1_fee_reserved: int | None = None


def sweep_moves(
    session: Session, chain: str, addresses: Collection[str]
) -> list[SweepMove]:
    """Sweep attempts sent from `addresses`, and gas top-ups sent to them."""
    t = SweepTransaction
    cols = (
        t.purpose,
        t.kind,
        t.from_address,
        t.to_address,
        t.token_address,
        t.amount,
        t.gas_limit,
        t.max_fee_per_gas,
        t.state,
        t.block_number,
        t.fee_paid,
        t.l1_fee_reserved,
    )
    seen: dict[tuple[str, int], SweepMove] = {}
    for part in _chunks(sorted(addresses)):
        for where in (
            t.from_address.in_(part),
            (t.kind == SweepKind.TOPUP) & t.to_address.in_(part),
        ):
            stmt = select(t.id, *cols).where(t.chain == chain, where)
            for tid, *row in session.execute(stmt):
                seen[(row[0], tid)] = SweepMove(*row)
    return list(seen.values())


def balance_credits_since(session: Session, chain: str, block: int) -> list[Any]:
    """(to_address, token_address) of balance credits at or above `block`."""
    stmt = select(Transfer.to_address, Transfer.token_address).where(
        Transfer.chain == chain,
        Transfer.block_number >= block,
        Transfer.source == BALANCE,
    )
    return list(session.execute(stmt).all())


def set_transfer_amounts(session: Session, amounts: dict[int, int]) -> None:
    """Set `amount` of transfers by id (a balance credit that a later read explains)."""
    for tid, amount in sorted(amounts.items()):
        session.execute(
            update(Transfer)
            .where(Transfer.id == tid)
            .values(amount=amount)
            .execution_options(synchronize_session=False)
        )


def credit_differences(
    session: Session, chain: str, tx_hashes: Collection[str]
) -> list[ReconcileDifference]:
    """The credited (or superseded) differences behind balance credits."""
    out: list[ReconcileDifference] = []
    for part in _chunks(sorted(tx_hashes)):
        stmt = select(ReconcileDifference).where(
            ReconcileDifference.chain == chain,
            ReconcileDifference.transfer_tx_hash.in_(part),
        )
        out.extend(session.scalars(stmt))
    return out


def open_differences(session: Session, chain: str) -> list[ReconcileDifference]:
    stmt = select(ReconcileDifference).where(
        ReconcileDifference.chain == chain, ReconcileDifference.resolution == OPEN
    )
    return list(session.scalars(stmt.order_by(ReconcileDifference.id)))


def open_differences_all(session: Session, *, limit: int) -> list[ReconcileDifference]:
    """Open differences of every chain, oldest first."""
    stmt = select(ReconcileDifference).where(ReconcileDifference.resolution == OPEN)
    return list(session.scalars(stmt.order_by(ReconcileDifference.id).limit(limit)))


def vanished_credits(session: Session, chain: str) -> list[ReconcileDifference]:
    """Credited differences whose balance credit is gone (a reorg removed it)."""
    kept = select(Transfer.tx_hash).where(
        Transfer.chain == chain, Transfer.source == BALANCE
    )
    stmt = select(ReconcileDifference).where(
        ReconcileDifference.chain == chain,
        ReconcileDifference.resolution.in_(("credited", "superseded")),
        ReconcileDifference.transfer_tx_hash.not_in(kept),
    )
    return list(session.scalars(stmt))


def add_difference(session: Session, row: ReconcileDifference) -> None:
    session.add(row)
    session.flush()


def get_reconcile_cursor(session: Session, chain: str) -> ReconcileCursor | None:
    return session.get(ReconcileCursor, chain)


def set_reconcile_cursor(
    session: Session, chain: str, number: int, block_hash: str, at: datetime
) -> None:
    row = session.get(ReconcileCursor, chain)
    if row is None:
        session.add(
            ReconcileCursor(
                chain=chain, block_number=number, block_hash=block_hash, at=at
            )
        )
    else:
        row.block_number, row.block_hash, row.at = number, block_hash, at
    session.flush()


def open_difference_totals(session: Session) -> list[tuple[str, str, str, int, int]]:
    """(chain, asset, kind, count, base units) of the open differences."""
    stmt = select(
        ReconcileDifference.chain,
        ReconcileDifference.asset,
        ReconcileDifference.kind,
        ReconcileDifference.amount,
    ).where(ReconcileDifference.resolution == OPEN)
    totals: dict[tuple[str, str, str], list[int]] = {}
    for chain, asset, kind, amount in session.execute(stmt):
        entry = totals.setdefault((chain, asset, kind), [0, 0])
        entry[0] += 1
        entry[1] += int(amount)
    return [(c, a, k, n, total) for (c, a, k), (n, total) in sorted(totals.items())]


def reconcile_cursors(session: Session) -> dict[str, ReconcileCursor]:
    return {r.chain: r for r in session.scalars(select(ReconcileCursor))}


def differences(
    session: Session, chain: str, *, resolutions: Sequence[str] | None = None
) -> list[ReconcileDifference]:
    stmt = select(ReconcileDifference).where(ReconcileDifference.chain == chain)
    if resolutions is not None:
        stmt = stmt.where(ReconcileDifference.resolution.in_(list(resolutions)))
    return list(session.scalars(stmt.order_by(ReconcileDifference.id)))
